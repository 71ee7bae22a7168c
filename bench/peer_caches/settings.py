"""Production settings plus what the cache-aside and drf-extensions peers need."""

from backend.settings import *  # noqa: F403
from backend.settings import CACHES

ROOT_URLCONF = "bench.peer_caches.urls"


def pickling_cache(name: str) -> dict:
    """The default cache's Redis under a prefix of its own, with django-redis's pickle.

    The project's caches serialize JSON, which cannot hold what drf-extensions stores
    (a response's bytes) and would turn the Decimals and datetimes of the rows
    django-cachalot stores into strings; each peer gets the serializer its
    documentation assumes.
    """
    default = CACHES["default"]
    options = {
        option: value
        for option, value in default.get("OPTIONS", {}).items()
        if option != "SERIALIZER"
    }
    return {**default, "KEY_PREFIX": f"{default['KEY_PREFIX']}-{name}", "OPTIONS": options}


CACHES = {**CACHES, "drf_extensions": pickling_cache("drf-extensions")}
REST_FRAMEWORK_EXTENSIONS = {"DEFAULT_USE_CACHE": "drf_extensions"}
