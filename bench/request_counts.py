"""SQL queries and Redis round trips one request makes, counted in-process (not timed).

SQL through Django's CaptureQueriesContext on the default database. Redis round trips
where the commands are sent: redis-py's `send_packed_command`, which every command and
every pipeline (its commands go out in one call) send through once, and the kept
connection's own round trip on a plain socket (backend/cache/kept_connection.py
`_round_trip`). Each send is answered before the caller goes on, so one send is one
round trip.
"""

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.connection import AbstractConnection


@dataclass(frozen=True)
class Counts:
    sql: float
    redis: float


class Counter:
    def __init__(self, queries: CaptureQueriesContext):
        self._queries = queries
        self.redis = 0

    @property
    def sql(self) -> int:
        return len(self._queries.captured_queries)


@contextmanager
def counting() -> Iterator[Counter]:
    """Count the SQL queries and Redis round trips made inside the block."""
    from backend.cache.kept_connection import KeptConnection  # (bench/ imports the service late)

    send = AbstractConnection.send_packed_command
    round_trip = KeptConnection._round_trip
    with CaptureQueriesContext(connection) as queries:
        counter = Counter(queries)

        def counted_send(redis_connection, command, check_health=True):
            counter.redis += 1
            return send(redis_connection, command, check_health)

        def counted_round_trip(kept, sock, request, replies):
            counter.redis += 1
            return round_trip(kept, sock, request, replies)

        with (
            mock.patch.object(AbstractConnection, "send_packed_command", counted_send),
            mock.patch.object(KeptConnection, "_round_trip", counted_round_trip),
        ):
            yield counter


def per_request(send: Callable[[], object], times: int = 5) -> Counts:
    """The mean counts of `times` calls of `send`, after one that is not counted (so
    connections are open and the code path has run once)."""
    send()
    with counting() as counter:
        for _ in range(times):
            send()
    return Counts(sql=counter.sql / times, redis=counter.redis / times)


def wsgi_request(
    application, method: str, path: str, *, body: bytes = b"", headers: dict | None = None
) -> tuple[str, dict[str, str], bytes]:
    """Call the WSGI application as a server would; the status line, headers and body.

    `path` may carry a query string; `headers` are WSGI environ names (HTTP_ACCEPT...).
    """
    path_info, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "*/*",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **({"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body))} if body else {}),
        **(headers or {}),
    }
    started = []
    answer = application(
        environ, lambda status, response_headers: started.append((status, dict(response_headers)))
    )
    content = b"".join(answer)
    answer.close()
    status, response_headers = started[0]
    return status, response_headers, content
