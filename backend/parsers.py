import io

from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "Request body is too large."
    default_code = "request_too_large"


class BoundedJSONParser(JSONParser):
    """JSON parser that refuses bodies over `API_MAX_BODY_BYTES` with 413.

    DRF reads the raw WSGI stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE never
    applies to API bodies; this parser reads at most one byte past the limit,
    whether or not the client sent a Content-Length.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(f"Request body is larger than {limit} bytes.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
