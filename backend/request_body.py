"""Request bodies read only when the application asks, within a deadline.

A thread of gunicorn's gthread worker that reads a body blocks until the client sends
it. A client that stops sending mid-body would hold the thread for as long as it keeps
the connection open, and a few such clients would hold them all. Here every body read
happens inside a deadline (`API_BODY_TIMEOUT_SECONDS` from when the application receives
the request, its headers read): a read still waiting when it passes is cut off, and the
request is answered 408.
"""

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from http import HTTPStatus

from django.core.exceptions import BadRequest, RequestDataTooBig
from rest_framework.exceptions import APIException


class RequestBodyTimeout(APIException, BadRequest):
    """The client did not send its whole body in time.

    DRF's views answer it 408 (problem+json); Django's own views (the admin) know no
    408 and answer `BadRequest` with 400.
    """

    status_code = HTTPStatus.REQUEST_TIMEOUT
    default_detail = "The request body did not arrive in time."
    default_code = "request_timeout"


class ReadWatchdog:
    """One thread per process that ends socket reads still blocked past their deadline.

    A socket timeout cannot bound a whole body: gunicorn reads a body in a loop of
    `recv()` calls, and a client sending a byte just before each timeout keeps the
    loop going. Shutting the socket's read side at the deadline wakes a blocked
    `recv()` at once (it returns end-of-file), however the loop is written; the write
    side stays open for the answer.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._deadlines = []  # heap of (deadline, order, socket)
        self._watched = set()  # the order numbers still watched
        self._order = itertools.count()
        self._owner_pid = None

    @contextlib.contextmanager
    def watching(self, sock: socket.socket, deadline: float):
        """Shut `sock`'s read side if the block is still running at `deadline`."""
        with self._condition:
            self._start_in_this_process()
            order = next(self._order)
            heapq.heappush(self._deadlines, (deadline, order, sock))
            self._watched.add(order)
            self._condition.notify()
        try:
            yield
        finally:
            with self._condition:
                self._watched.discard(order)

    def _start_in_this_process(self):
        # gunicorn forks its workers: a thread started in one process does not run in another.
        if self._owner_pid != os.getpid():
            self._owner_pid = os.getpid()
            self._deadlines.clear()
            self._watched.clear()
            threading.Thread(target=self._run, name="body-read-watchdog", daemon=True).start()

    def _run(self):
        with self._condition:
            while True:
                while self._deadlines and self._deadlines[0][1] not in self._watched:
                    heapq.heappop(self._deadlines)  # finished in time
                if not self._deadlines:
                    self._condition.wait()
                    continue
                deadline, order, sock = self._deadlines[0]
                if time.monotonic() < deadline:
                    self._condition.wait(deadline - time.monotonic())
                    continue
                heapq.heappop(self._deadlines)
                self._watched.discard(order)
                _stop_reading(sock)


def _stop_reading(sock: socket.socket):
    # Safe only while a connection carries one request at a time: gunicorn's HTTP/2,
    # which multiplexes requests over one socket, is off (its default).
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RD)


watchdog = ReadWatchdog()


class DeadlineInput:
    """`wsgi.input` for Django: reads that fail with 408 once `deadline` has passed.

    `limit` is the largest body the application accepts. A chunked body states no
    length (`delimited=False`): reading more than `limit` bytes of it raises
    `RequestDataTooBig` (413), as Django does for a Content-Length over the limit.
    """

    def __init__(self, stream, sock, deadline: float, *, limit: int, delimited: bool = True):
        self.stream = stream
        self.sock = sock
        self.deadline = deadline
        self.limit = limit
        self.delimited = delimited
        self.received = 0
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        data = self._within_deadline(self.stream.read, size)
        self._count(data, asked=size)
        if not self.delimited and not self.ended and self.received >= self.limit:
            if self._within_deadline(self.stream.read, 1):
                raise RequestDataTooBig(
                    "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."
                )
            self.ended = True
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._within_deadline(self.stream.readline, size)
        self._count(data, asked=size)
        return data

    def discard_arrived(self):
        """Discard, without waiting, what has arrived of a body the application left.

        The connection can then serve another request. If the rest of the body has
        not arrived (or is over the limit), reading stops: the server closes the
        connection rather than wait for a client that may never send it.
        """
        if self.ended or self.sock is None:
            return
        prior_timeout = self.sock.gettimeout()
        discarded = 0
        try:
            self.sock.settimeout(0)  # a read with nothing arrived raises at once
            while not self.ended and discarded <= self.limit:
                piece = self.stream.read(8192)
                discarded += len(piece)
                self.ended = not piece
        # Nothing more has arrived (BlockingIOError), or it is malformed: either way, done.
        except Exception:  # nosec B110
            pass
        finally:
            self.sock.settimeout(prior_timeout)
        if not self.ended:
            _stop_reading(self.sock)

    def _count(self, data: bytes, *, asked: int):
        self.received += len(data)
        if not data and asked != 0:
            self.ended = True

    def _within_deadline(self, read, size: int) -> bytes:
        if self.expired():
            raise RequestBodyTimeout()
        try:
            if self.sock is None:
                data = read(size)
            else:
                with watchdog.watching(self.sock, self.deadline):
                    data = read(size)
        except Exception as error:
            if self.expired():
                raise RequestBodyTimeout() from error
            raise
        if self.expired():
            raise RequestBodyTimeout()  # cut short by the watchdog
        return data

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline
