"""Settings for the example Django project: production-like (DEBUG off), no database."""

from __future__ import annotations

import os

# The package name differs with how the project is imported (examples.django_project
# from the repository root, django_project with --app-dir examples).
PACKAGE = __name__.rpartition(".")[0]

# An example, not a secret: real projects read it from the environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "prefork-example-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Kept on purpose: the views that accept POSTs opt out with csrf_exempt, as an API would.
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = f"{PACKAGE}.urls"
WSGI_APPLICATION = f"{PACKAGE}.wsgi.application"
ASGI_APPLICATION = f"{PACKAGE}.asgi.application"

# No models, so no database: nothing to migrate before serving.
DATABASES: dict[str, dict[str, str]] = {}

# Uploads above 2.5 MiB (Django's default) spill to a temporary file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
USE_TZ = True
# Django exports TIME_ZONE to the process (TZ + tzset); its default, America/Chicago,
# would shift the timestamps of every prefork log line this worker writes.
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
