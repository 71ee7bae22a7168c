"""Peer (c): django-cachalot caching the ORM queries of the API's own item read."""

from backend.settings import *  # noqa: F403
from backend.settings import CACHES, INSTALLED_APPS
from bench.peer_caches.settings import pickling_cache

# The project's read cache off: the item read's SELECT is what cachalot caches.
CACHE_ENABLED = False

INSTALLED_APPS = [*INSTALLED_APPS, "cachalot"]
CACHES = {**CACHES, "cachalot": pickling_cache("cachalot")}
CACHALOT_CACHE = "cachalot"
CACHALOT_TIMEOUT = 300  # seconds, the project's CACHE_TTL (cachalot's default: no expiry)
