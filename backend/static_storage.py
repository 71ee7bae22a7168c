"""Static file storage whose URLs follow the request's path prefix (SCRIPT_NAME)."""

from django.urls import get_script_prefix
from whitenoise.storage import CompressedStaticFilesStorage


class PrefixedStaticFilesStorage(CompressedStaticFilesStorage):
    """whitenoise's compressed storage, with URLs under the request's script prefix.

    Django prefixes a relative STATIC_URL once, when the setting is first read: at
    startup, before any request, so with "/". Behind API Gateway's named stage every
    request has the prefix `/<stage>` (backend/lambda_handler.py), and the admin's and
    Swagger UI's assets must carry it too. Where the prefix is "/" (gunicorn on
    Fargate) the URLs are unchanged.
    """

    def url(self, name, *args, **kwargs):
        url = super().url(name, *args, **kwargs)
        prefix = get_script_prefix().rstrip("/")
        if prefix and url.startswith("/") and not url.startswith(f"{prefix}/"):
            return prefix + url
        return url
