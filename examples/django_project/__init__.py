"""A minimal Django project served by prefork, through WSGI or ASGI.

From the repository root (the settings module is found relative to this
package, so either spelling works):

    prefork examples.django_project.wsgi:application --workers 2
    prefork examples.django_project.asgi:application --workers 2
    prefork django_project.wsgi:application --app-dir examples --workers 2
"""
