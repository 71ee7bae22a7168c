"""The service's WSGI application with bench/urls.py as the URL map (make bench only).

Same settings, middleware and gunicorn configuration as production; the one
difference is the extra floor route. `BENCH_WITHOUT_MIDDLEWARE` (comma-separated
dotted paths) leaves middleware out, for bench/instructions.py's cost of each layer.
"""

import os

from django.conf import settings

from backend.wsgi import application  # sets Django up; rebuilt below without some layers

settings.ROOT_URLCONF = "bench.urls"

if without := os.environ.get("BENCH_WITHOUT_MIDDLEWARE"):
    from django.core.wsgi import get_wsgi_application

    from backend.wsgi import with_bodies_on_demand

    left_out = without.split(",")
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name not in left_out]
    application = with_bodies_on_demand(get_wsgi_application())
