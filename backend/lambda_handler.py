"""AWS Lambda entry point: API Gateway events answered by the same WSGI application as gunicorn.

The function's handler is `backend.lambda_handler.handler`. apig-wsgi turns an HTTP API
event (payload format 2.0, or 1.0) into a WSGI environ and the answer back into the
response document, base64 for compressed and binary bodies. docs/lambda.md says what
the Lambda tier decides about the client address, a named stage, cookies, bodies, logs,
the cache's per-process state and database connections, and why.
"""

import contextlib
import gc
import os
import time
from io import StringIO

from apig_wsgi import make_lambda_handler
from django.core.management import call_command
from django.db import connections

from backend.aws_secrets import load_secrets_given_by_arn

# Before the settings load: they read the secrets from the environment.
load_secrets_given_by_arn()

from backend.cache import drop_cache_connections  # noqa: E402
from backend.health import READINESS_PATH  # noqa: E402
from backend.observability.access import flush_metrics  # noqa: E402
from backend.wsgi import application, problem_answer  # noqa: E402

# After a pause this long, the sandbox opens its Redis and PostgreSQL connections anew:
# well below the idle timeouts that drop a connection without a word (a NAT gateway's
# 350 s). What it costs is in docs/lambda.md.
RECONNECT_AFTER_IDLE_SECONDS = 60


def source_ip(event: dict) -> str | None:
    """The address API Gateway saw the request come from (never a header the client set)."""
    context = event.get("requestContext") or {}
    address = (context.get("http") or context.get("identity") or {}).get("sourceIp")
    return address or None


def stage_segment(event: dict) -> str:
    """`/<stage>` when the request's path starts with its named stage, else an empty string.

    A named stage is the first segment of the path on the API's own domain; `$default`
    has none.
    """
    stage = (event.get("requestContext") or {}).get("stage") or "$default"
    if stage == "$default":
        return ""
    segment = f"/{stage}"
    path = event.get("rawPath") or event.get("path") or ""
    return segment if path == segment or path.startswith(f"{segment}/") else ""


def on_the_api_domain(event: dict) -> bool:
    """Whether the client called `<api-id>.execute-api.<region>.amazonaws.com`.

    Only there is the stage a part of the URL the client sees. Behind a custom domain
    the stage comes from the domain's mapping, whether or not the event's path names it.
    """
    domain = (event.get("requestContext") or {}).get("domainName") or ""
    return ".execute-api." in domain


def from_api_gateway(wsgi_application):
    """Give the WSGI application the event's client address, and route without the stage.

    `X-Forwarded-For` becomes that one address: DRF's throttles read their client from
    it (API_NUM_PROXIES), and API Gateway appends to whatever the client sent. On the
    API's domain the stage becomes SCRIPT_NAME, so the URLs Django builds keep it.
    """

    def application(environ, start_response):
        event = environ["apig_wsgi.full_event"]
        if address := source_ip(event):
            environ["REMOTE_ADDR"] = environ["HTTP_X_FORWARDED_FOR"] = address
        if segment := stage_segment(event):
            environ["PATH_INFO"] = environ["PATH_INFO"][len(segment) :] or "/"
            if on_the_api_domain(event):
                environ["SCRIPT_NAME"] = segment
        if environ["PATH_INFO"] == READINESS_PATH:
            # Readiness reports the data tier to operators inside the network; every
            # request here came through the public API.
            return problem_answer(start_response, 404, "not_found", "Not found.")
        return wsgi_application(environ, start_response)

    return application


# Binary support for payload 1.0 too: whitenoise's compressed files must go out as base64.
_answer = make_lambda_handler(from_api_gateway(application), binary_support=True)


# Wall-clock time of the last answer: the monotonic clock need not count a freeze.
_last_answered: float | None = None


def handler(event: dict, context) -> dict:
    """Answer one API Gateway event; write its metrics before the sandbox can be frozen.

    A frozen sandbox runs no background thread, and one that is never thawed again
    has no exit hook: metrics held back for the next interval would be lost.
    """
    global _last_answered
    if _last_answered is not None and time.time() - _last_answered >= RECONNECT_AFTER_IDLE_SECONDS:
        reconnect()
    try:
        answer = _answer(event, context)
    finally:
        flush_metrics()
        _last_answered = time.time()
    return as_a_server_sends_it(answer, request_method(event))


def reconnect() -> None:
    """Close the connections kept across a pause; each next use opens a fresh one.

    The network may have dropped them without a word: a Redis read on one would wait
    for its timeout and count as an outage (every process's cache generation moves on),
    a PostgreSQL query could wait far longer.
    """
    drop_cache_connections()
    connections.close_all()


def as_a_server_sends_it(answer: dict, method: str) -> dict:
    """What gunicorn would do to the answer on the wire: no body for HEAD, clean cookies."""
    if "cookies" in answer:
        # Django's Set-Cookie values start with a space (SimpleCookie's output); a header
        # line forgives it, payload 2.0's `cookies` list is taken as it is.
        answer["cookies"] = [cookie.strip() for cookie in answer["cookies"]]
    if method == "HEAD":
        answer.update(body="", isBase64Encoded=False)
    return answer


def request_method(event: dict) -> str:
    context = event.get("requestContext") or {}
    return (context.get("http") or {}).get("method") or event.get("httpMethod") or ""


# What a deploy or an operator may run through the function whose handler is `manage`
# (infra/): management commands by name, never a shell. Some take no arguments, so that
# nobody can, say, migrate back to `zero` this way.
MANAGEMENT_COMMANDS = frozenset(
    {
        "migrate",
        "showmigrations",
        "createsuperuser",
        "drf_create_token",
        "invalidate_item_cache",
        "axes_reset",
        "axes_reset_ip",
    }
)
WITHOUT_ARGUMENTS = frozenset({"migrate", "invalidate_item_cache", "axes_reset"})
# The only variables an invocation may set: createsuperuser --noinput reads the password here.
COMMAND_ENVIRONMENT_PREFIX = "DJANGO_SUPERUSER_"


def manage(event: dict, context) -> dict:
    """Run the migrations for a deploy, or one of MANAGEMENT_COMMANDS for an operator.

    CloudFormation's custom resource (CDK's provider framework) sends Create, Update and
    Delete: the first two migrate, a delete leaves the database as it is. An operator
    sends `{"command": ["drf_create_token", "admin"]}`, with `"environment"` for
    createsuperuser's DJANGO_SUPERUSER_PASSWORD; the command's output comes back.
    """
    if "RequestType" in event:
        if event["RequestType"] != "Delete":
            call_command("migrate", interactive=False, verbosity=1)
        return {"PhysicalResourceId": "items-migrations"}
    name, *arguments = event["command"]
    if name not in MANAGEMENT_COMMANDS:
        raise ValueError(f"{name!r} is not one of {sorted(MANAGEMENT_COMMANDS)}")
    if arguments and name in WITHOUT_ARGUMENTS:
        raise ValueError(f"{name!r} takes no arguments here")
    environment = event.get("environment") or {}
    if refused := [
        key
        for key, value in environment.items()
        if not key.startswith(COMMAND_ENVIRONMENT_PREFIX) or not isinstance(value, str)
    ]:
        raise ValueError(f"only {COMMAND_ENVIRONMENT_PREFIX}* strings may be set: {refused}")
    output = StringIO()
    with _environment_set(environment):
        call_command(name, *arguments, stdout=output, stderr=output)
    return {"output": output.getvalue()}


@contextlib.contextmanager
def _environment_set(variables: dict[str, str]):
    """Set `variables` for the block; then put back what was there, in a sandbox that lives on."""
    before = {name: os.environ.get(name) for name in variables}
    try:
        os.environ.update(variables)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# What gunicorn's post_worker_init does: the loaded application is left out of every
# full garbage collection from here on.
gc.freeze()
