"""ASGI entry point: `prefork examples.django_project.asgi:application` (repository root)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application  # type: ignore[import-untyped]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"{__package__}.settings")

application = get_asgi_application()
