"""The service's WSGI application with bench/urls.py as the URL map (make bench only).

Same settings, middleware and gunicorn configuration as production; the one
difference is the extra floor route.
"""

from django.conf import settings

from backend.wsgi import application  # noqa: F401  (sets Django up)

settings.ROOT_URLCONF = "bench.urls"
