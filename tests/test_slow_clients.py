"""Clients that stop sending their request body do not stall the service.

A real gunicorn (the image's start command, 1 worker x 4 threads) faces more such
clients than it has threads, chunked and with a Content-Length, on routes that read
a body and on routes that do not.
"""

import contextlib
import io
import json
import re
import select
import socket
import time
from dataclasses import dataclass

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.authtoken.models import Token

from items.models import Item
from tests.test_container import (  # noqa: F401 -- app_root: the fixture, for getfixturevalue
    PRIVATE_IP_HOST,
    PUBLIC_HOST,
    app_root,
    serving,
)

BODY_TIMEOUT_SECONDS = 2.0
THREADS = 4
# How long an answer that waits on no slow client may take on a shared, busy machine.
PROMPTLY = 1.5


@pytest.fixture(scope="module")
def server(request, django_db_setup, production_environment, tmp_path_factory):
    """The image's start command with 4 threads and a 2 s body timeout."""
    with serving(
        request.getfixturevalue("app_root"),
        production_environment,
        tmp_path_factory.mktemp("server"),
        GUNICORN_THREADS=str(THREADS),
        API_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT_SECONDS),
        LOG_LEVEL="INFO",
    ) as running:
        yield running


@dataclass
class SlowClient:
    """A connection that sent its request head and part of the body, then went quiet."""

    sock: socket.socket
    sent_at: float
    received: bytes = b""

    def answer(self, *, within: float) -> tuple[int | None, float]:
        """The status the server answered (None if it only closed) and when, in seconds
        after the request was sent, it closed the connection; the answer in `received`."""
        self.sock.settimeout(within)
        received = b""
        try:
            while chunk := self.sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"the server still held the connection after {within} s: {received!r}")
        except ConnectionResetError:
            pass  # closed with unread request bytes: the answer may be lost, the thread is free
        finally:
            self.sock.close()
            self.received = received
        status = re.match(rb"HTTP/1\.1 (\d{3}) ", received)
        return (int(status[1]) if status else None), time.monotonic() - self.sent_at


def slow_client(server, head: str, partial_body: bytes) -> SlowClient:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + partial_body)
    return SlowClient(sock, time.monotonic())


def stalled_healthz_chunked(server) -> SlowClient:
    head = f"GET /healthz HTTP/1.1\nHost: {PRIVATE_IP_HOST}\nTransfer-Encoding: chunked\n"
    return slow_client(server, head, b"10\r\nonly part of a")


def stalled_list_with_length(server) -> SlowClient:
    head = (
        f"GET /api/items/ HTTP/1.1\nHost: {PUBLIC_HOST}\nX-Forwarded-Proto: https\n"
        "Content-Type: application/json\nContent-Length: 100\n"
    )
    return slow_client(server, head, b'{"only": "part')


def stalled_patch(
    server, item_id: int, token: str, *, chunked: bool, connection: str = "keep-alive"
) -> SlowClient:
    framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: 100"
    head = (
        f"PATCH /api/items/{item_id}/ HTTP/1.1\nHost: {PUBLIC_HOST}\nX-Forwarded-Proto: https\n"
        f"Authorization: Token {token}\nContent-Type: application/json\n{framing}\n"
        f"Connection: {connection}\n"
    )
    partial = b'20\r\n{"quantity": 9' if chunked else b'{"quantity": 9'
    return slow_client(server, head, partial)


def timed_request(server, method: str, path: str, headers: dict) -> tuple[int, float]:
    started = time.monotonic()
    reply = server.request(method, path, headers=headers)
    return reply.status, time.monotonic() - started


def healthz(server) -> tuple[int, float]:
    return timed_request(server, "GET", "/healthz", {"Host": PRIVATE_IP_HOST})


def item_read(server, item_id: int) -> tuple[int, float]:
    headers = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https"}
    return timed_request(server, "GET", f"/api/items/{item_id}/", headers)


def test_stalled_bodies_a_route_does_not_read_are_let_go_at_once(server, stored_item):
    """The attack that stalled the service: more stalled bodies than threads, on
    /healthz (chunked) and on the item list (Content-Length), which read no body."""
    clients = [stalled_healthz_chunked(server) for _ in range(THREADS)]
    clients += [stalled_list_with_length(server) for _ in range(THREADS)]

    answers = [client.answer(within=PROMPTLY) for client in clients]

    assert [status for status, _ in answers] == [200] * (2 * THREADS)
    assert healthz(server)[0] == 200
    assert item_read(server, stored_item.pk)[0] == 200


def test_more_stalled_bodies_than_threads_on_a_route_that_reads_them_get_408_in_time(
    server, stored_item, stored_token
):
    quantity = stored_item.quantity
    clients = [
        stalled_patch(server, stored_item.pk, stored_token, chunked=number % 2 == 0)
        for number in range(THREADS + 2)
    ]
    time.sleep(0.3)  # every thread now waits on a body

    other_requests = [healthz(server), item_read(server, stored_item.pk)]
    answers = [client.answer(within=3 * BODY_TIMEOUT_SECONDS) for client in clients]

    # Four were cut off at their deadline; the two queued behind them got a thread
    # then, and were cut off at theirs: none held a thread longer than the timeout.
    assert [status for status, _ in answers] == [408] * (THREADS + 2)
    assert all(b'"code":"request_timeout"' in client.received for client in clients)
    closed_after = sorted(after for _, after in answers)
    assert closed_after[0] >= BODY_TIMEOUT_SECONDS
    assert closed_after[THREADS - 1] < BODY_TIMEOUT_SECONDS + PROMPTLY
    assert closed_after[-1] < 2 * BODY_TIMEOUT_SECONDS + PROMPTLY
    # The other requests waited for a thread, never longer than a body may take.
    assert [status for status, _ in other_requests] == [200, 200]
    assert all(waited < BODY_TIMEOUT_SECONDS + PROMPTLY for _, waited in other_requests)
    stored_item.refresh_from_db()
    assert stored_item.quantity == quantity
    assert Item.objects.count() == 1


def test_a_body_that_arrives_in_time_is_read_after_a_pause(server, stored_item, stored_token):
    client = stalled_patch(server, stored_item.pk, stored_token, chunked=True, connection="close")
    time.sleep(BODY_TIMEOUT_SECONDS / 4)
    client.sock.sendall(b"7}" + b" " * 16 + b"\r\n0\r\n\r\n")  # the rest of the 0x20 bytes

    status, _ = client.answer(within=BODY_TIMEOUT_SECONDS)

    assert status == 200
    stored_item.refresh_from_db()
    assert stored_item.quantity == 97


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline(
    server, stored_item, stored_token
):
    """Each byte comes well within any per-read timeout; the whole body never does."""
    client = stalled_patch(server, stored_item.pk, stored_token, chunked=False)
    give_up_at = client.sent_at + 3 * BODY_TIMEOUT_SECONDS
    with contextlib.suppress(OSError):  # the server may stop reading first
        while time.monotonic() < give_up_at and not answered(client.sock):
            client.sock.sendall(b" ")

    status, closed_after = client.answer(within=BODY_TIMEOUT_SECONDS)

    assert status == 408
    assert BODY_TIMEOUT_SECONDS <= closed_after < BODY_TIMEOUT_SECONDS + PROMPTLY


def answered(sock: socket.socket) -> bool:
    """Whether the server has sent something, after waiting a moment for it."""
    readable, _, _ = select.select([sock], [], [], 0.2)
    return bool(readable)


# --- The answers, through the WSGI application without a server ----------------------


@pytest.fixture
def connections_kept():
    """Keep the test's database connection open across a request, as Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def wsgi_call(method: str, path: str, body: bytes, **headers) -> tuple[str, bytes]:
    """Call backend.wsgi.application with a body whose deadline has already passed."""
    from backend.wsgi import application

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **headers,
    }
    started = []
    content = b"".join(application(environ, lambda status, _headers: started.append(status)))
    return started[0], content


def test_the_api_answers_a_late_body_408_as_a_problem(settings, item, user, connections_kept):
    settings.API_BODY_TIMEOUT_SECONDS = 0
    token = Token.objects.create(user=user).key

    status, content = wsgi_call(
        "PATCH",
        f"/api/items/{item.pk}/",
        b'{"quantity": 5}',
        CONTENT_TYPE="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )

    assert status == "408 Request Timeout"
    assert json.loads(content)["code"] == "request_timeout"
    assert Item.objects.get(pk=item.pk).quantity == item.quantity


def test_the_admin_answers_a_late_form_400(settings, db, connections_kept):
    settings.API_BODY_TIMEOUT_SECONDS = 0
    csrf_secret = "a" * 32  # the CSRF check reads the form, so it must get that far

    status, _ = wsgi_call(
        "POST",
        "/admin/login/",
        b"username=a&password=b",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        HTTP_COOKIE=f"csrftoken={csrf_secret}",
    )

    assert status == "400 Bad Request"
