"""The URL map: the API, its schema and docs, the admin, health checks."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from backend import health
from backend.errors import api_not_found

urlpatterns = [
    # First: Django tries the patterns in order, and item reads are most of the traffic.
    path("api/", include("items.urls")),
    path("", RedirectView.as_view(pattern_name="swagger-ui", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(r"^api/", api_not_found),
    # Served by health.HealthCheckMiddleware before host validation; listed here so
    # the URL map is complete and `reverse()` knows them.
    path(health.LIVENESS_PATH.lstrip("/"), health.liveness, name="healthz"),
    path(health.READINESS_PATH.lstrip("/"), health.readiness, name="readyz"),
]

handler400 = "backend.errors.bad_request"
handler403 = "backend.errors.permission_denied"
handler404 = "backend.errors.page_not_found"
handler500 = "backend.errors.server_error"
