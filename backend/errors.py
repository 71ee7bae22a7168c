"""The one error shape of the API: RFC 9457 problem details.

Every error under /api/ is a JSON object (shown on an HTML page to a browser
asking the browsable API for text/html) with `type`, `title`, `status`, a
machine-readable `code`, a human `detail`, the `request_id` of the request (as in
its `X-Request-ID` header and log lines) and, for invalid input, `errors` keyed by
field name. DRF's exceptions go through `api_exception_handler`; Django's own
400, 403, 404 and 500 pages become the same shape for /api/ paths.
"""

import logging
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from backend.observability.request_id import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
# What a client is told to wait after a 503 for an unreachable database.
DATABASE_RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)


class RequestTooLarge(exceptions.APIException):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "request_too_large"


class PreconditionFailed(exceptions.APIException):
    status_code = HTTPStatus.PRECONDITION_FAILED
    default_detail = "The resource has changed since the given ETag; fetch it again."
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = HTTPStatus.PRECONDITION_REQUIRED
    default_detail = "This request needs an If-Match header with the current ETag."
    default_code = "precondition_required"


def problem(status: int, *, code: str, detail: str, errors=None) -> dict:
    """Return the body of an error response."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def api_exception_handler(exc, context):
    """DRF exception handler: DRF's status and headers, our body."""
    if isinstance(exc, OperationalError):
        return database_unavailable(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # request.body over API_MAX_BODY_BYTES
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLarge(f"Request body is larger than {limit} bytes.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # Unexpected: Django logs it and `server_error` answers 500.
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = problem(
            response.status_code, code="invalid", detail="Invalid input.", errors=errors
        )
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = problem(response.status_code, code=code, detail=str(detail))
    renderer = getattr(context["request"], "accepted_renderer", None)
    if renderer is None or renderer.format == "json":
        response.content_type = PROBLEM_CONTENT_TYPE
    return response


# As DRF's JSONRenderer writes JSON, so a problem reads the same whichever path answered it.
DRF_JSON = {"separators": (",", ":"), "ensure_ascii": False}


def problem_response(status: int, *, code: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem(status, code=code, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params=DRF_JSON,
    )


def database_unavailable(error: OperationalError) -> JsonResponse:
    """503 for a database that cannot be reached or gave up on the statement.

    Connection failures, timeouts, deadlocks and serialization failures are all
    `OperationalError`: none is the client's fault, and a retry may well succeed.
    Nothing was written: the request's transaction, if any, rolled back.
    """
    set_rollback()  # as DRF's own handler does, should the request run in a transaction
    # The message names the cause; a traceback per request would flood the logs in an outage.
    logger.warning("Database unavailable: %s", str(error).strip())
    response = problem_response(
        503, code="database_unavailable", detail="The database is unavailable; try again shortly."
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


@csrf_exempt  # a 404 in the problem shape, whatever the method, never an HTML 403
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Any path under /api/ that no route matches; it names the path with a slash that does.

    A redirect (APPEND_SLASH) would turn a POST into a GET in many clients.
    """
    detail = "No API route matches this path."
    with_slash = f"{request.path}/"
    if not request.path.endswith("/") and _is_api_route(with_slash):
        detail += f" API paths end with a slash: {with_slash}"
    return problem_response(404, code="not_found", detail=detail)


def _is_api_route(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False


def bad_request(request, exception):
    """A request Django refused, such as one whose Host is not in ALLOWED_HOSTS.

    Like the other handlers, it reads only `request.path`: `get_host()` and
    `build_absolute_uri()` would raise the refused Host's error again.
    """
    if is_api_path(request):
        return problem_response(
            400, code="bad_request", detail="The request is malformed or not allowed."
        )
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api_path(request):
        denied = exceptions.PermissionDenied
        return problem_response(403, code=denied.default_code, detail=str(denied.default_detail))
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if is_api_path(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api_path(request):
        return problem_response(500, code="server_error", detail="An unexpected error occurred.")
    return defaults.server_error(request)


def is_api_path(request) -> bool:
    return request.path.startswith("/api/")


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every API error returns them."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Machine-readable error code.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    request_id = serializers.CharField(
        help_text="The request's id, as in its X-Request-ID response header and the logs."
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Present on 400: messages keyed by field name.",
    )


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular schema that documents each operation's error responses."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        problem_ref = self.resolve_serializer(ProblemSerializer, "response").ref
        if method == "GET" and "{" in path:
            operation["responses"].setdefault(
                str(HTTPStatus.NOT_MODIFIED.value),
                {
                    "description": "Not Modified: `If-None-Match` or `If-Modified-Since` matched",
                    "headers": {"ETag": {"schema": {"type": "string"}}},
                },
            )
        for status in self._error_statuses(path, method):
            operation["responses"].setdefault(
                str(status),
                {
                    "description": HTTPStatus(status).phrase,
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}},
                },
            )
        return operation

    def _error_statuses(self, path: str, method: str) -> list[int]:
        statuses = [
            HTTPStatus.INTERNAL_SERVER_ERROR,
            HTTPStatus.SERVICE_UNAVAILABLE,  # the database cannot be reached
            HTTPStatus.TOO_MANY_REQUESTS,
        ]
        if "{" in path or self.view.action == "list":
            statuses.append(HTTPStatus.NOT_FOUND)  # unknown id, or a page past the end
        if self.view.action == "list":
            statuses.append(HTTPStatus.BAD_REQUEST)  # an invalid filter or ordering
        if "{" in path and method in ("PUT", "PATCH", "DELETE"):
            statuses += [HTTPStatus.PRECONDITION_FAILED, HTTPStatus.PRECONDITION_REQUIRED]
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses += [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN]
        if method in ("POST", "PUT", "PATCH"):
            statuses += [
                HTTPStatus.BAD_REQUEST,
                HTTPStatus.REQUEST_TIMEOUT,  # the body did not arrive in time
                HTTPStatus.LENGTH_REQUIRED,  # a chunked body the server cannot delimit
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            ]
        return sorted(set(statuses))
