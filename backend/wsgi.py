"""WSGI entry point: gunicorn serves `backend.wsgi:application`."""

import io
import json
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")


def with_chunked_bodies(django_application):
    """Give Django the body of a request sent without Content-Length (chunked).

    Django reads nothing from a request without CONTENT_LENGTH (Django ticket
    #35838), so a chunked PATCH would look empty and succeed without changing
    anything. A server that decodes the chunks itself says so with
    `wsgi.input_terminated` (gunicorn does): the body is read up to one byte past
    DATA_UPLOAD_MAX_MEMORY_SIZE and handed on with its length, so Django's size
    check refuses an oversized one (413 under /api/). A server that does not
    (runserver) cannot say where the body ends: such a request gets 411.
    """

    def application(environ, start_response):
        if "HTTP_TRANSFER_ENCODING" not in environ or environ.get("CONTENT_LENGTH"):
            return django_application(environ, start_response)
        if not environ.get("wsgi.input_terminated"):
            return _length_required(start_response)
        body = environ["wsgi.input"].read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return django_application(environ, start_response)

    return application


def _length_required(start_response):
    from backend.errors import PROBLEM_CONTENT_TYPE, problem  # once settings are set up

    body = json.dumps(
        problem(411, code="length_required", detail="Send the body with a Content-Length header.")
    ).encode()
    headers = [("Content-Type", PROBLEM_CONTENT_TYPE), ("Content-Length", str(len(body)))]
    start_response("411 Length Required", headers)
    return [body]


application = with_chunked_bodies(get_wsgi_application())
