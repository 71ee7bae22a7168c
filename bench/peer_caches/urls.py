"""The service's URLs plus the peers' item reads (bench/peers.py)."""

from django.urls import path

from backend.urls import handler400, handler403, handler404, handler500  # noqa: F401
from backend.urls import urlpatterns as service_urlpatterns
from bench.peer_caches.cache_aside import CacheAsideItemViewSet
from bench.peer_caches.drf_extensions import ExtensionsItemViewSet

RETRIEVE = {"get": "retrieve"}

urlpatterns = [
    path("bench/peers/cache-aside/items/<int:pk>/", CacheAsideItemViewSet.as_view(RETRIEVE)),
    path("bench/peers/drf-extensions/items/<int:pk>/", ExtensionsItemViewSet.as_view(RETRIEVE)),
    *service_urlpatterns,
]
