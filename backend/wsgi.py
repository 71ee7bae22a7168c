"""WSGI entry point: gunicorn serves `backend.wsgi:application`."""

import json
import os
import time
from http import HTTPStatus

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from backend.request_body import DeadlineInput

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")


def with_bodies_on_demand(django_application):
    """Read a request body only when the application asks for it, within a deadline.

    Django reads a body lazily (a DRF parser asks for it after authentication,
    permissions and throttling), so a request whose view does not parse one never
    waits for it. Each read ends, with 408, once `API_BODY_TIMEOUT_SECONDS` have passed
    since the request arrived (`backend.request_body`). A body the application left
    unread is discarded after the response as far as it has arrived; if more is still
    to come, the connection closes instead of waiting for it.

    Django reads nothing from a request without CONTENT_LENGTH (Django ticket #35838),
    so a chunked PATCH would look empty and succeed without changing anything. A
    server that decodes the chunks itself says so with `wsgi.input_terminated`
    (gunicorn does): Django is then told the largest length it accepts, and the body
    refuses to grow past it (413 under /api/). A server that does not (runserver)
    cannot say where the body ends: such a request gets 411.
    """

    def application(environ, start_response):
        chunked = "HTTP_TRANSFER_ENCODING" in environ and not environ.get("CONTENT_LENGTH")
        if chunked and not environ.get("wsgi.input_terminated"):
            return _length_required(start_response)
        if not chunked and environ.get("CONTENT_LENGTH", "0") in ("", "0"):
            return django_application(environ, start_response)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = DeadlineInput(
            environ["wsgi.input"],
            environ.get("gunicorn.socket"),
            time.monotonic() + settings.API_BODY_TIMEOUT_SECONDS,
            limit=limit,
            delimited=not chunked,
        )
        environ["wsgi.input"] = body
        if chunked:
            environ["CONTENT_LENGTH"] = str(limit)  # an upper bound, enforced by `body`
        return DiscardingUnreadBody(django_application(environ, start_response), body)

    return application


class DiscardingUnreadBody:
    """A response that, once sent (`close()`), lets go of the body the application left."""

    def __init__(self, response, body: DeadlineInput):
        self.response = response
        self.body = body

    def __iter__(self):
        return iter(self.response)

    def close(self):
        try:
            if hasattr(self.response, "close"):
                self.response.close()
        finally:
            self.body.discard_arrived()


def _length_required(start_response):
    return problem_answer(
        start_response, 411, "length_required", "Send the body with a Content-Length header."
    )


def problem_answer(start_response, status: int, code: str, detail: str) -> list[bytes]:
    """A problem answered by a WSGI wrapper, before Django sees the request."""
    from backend.errors import DRF_JSON, PROBLEM_CONTENT_TYPE, problem  # once settings are set up

    body = json.dumps(problem(status, code=code, detail=detail), **DRF_JSON).encode()
    headers = [("Content-Type", PROBLEM_CONTENT_TYPE), ("Content-Length", str(len(body)))]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]


application = with_bodies_on_demand(get_wsgi_application())
