"""One request thread's own Redis connection, for the round trip every cache hit makes."""

import socket
import ssl
import struct

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

RECEIVE_BYTES = 65536
_NOT_ENOUGH_DATA = object()


class KeptConnection:
    """A redis-py connection, made with the pool's settings, that one thread keeps.

    `exchange` sends pipelined commands and reads their replies. On a plain TCP or
    Unix socket that is one `send` and one `recv` that waits in the kernel: a socket
    with a Python timeout polls before each of them, two more system calls per hit,
    and two more times the thread lets go of the GIL, which under load another
    thread takes, so the hit waits to get it back. So the socket blocks, and its
    timeout is the kernel's (SO_SNDTIMEO, SO_RCVTIMEO), raised as redis-py's
    TimeoutError. The kernel's bound is per system call: a signal that interrupts
    the wait starts it again (CPython retries), where a Python timeout keeps one
    deadline. A process's signals go to its main thread, which in gunicorn's
    threaded workers serves no request. A TLS socket keeps redis-py's own sends and
    reads: its reads already try before they poll, and a blocking TLS read would
    retry past the kernel's timeout.

    redis-py's connect (handshake, AUTH, connect callbacks) runs first, with
    Python's timeouts; only then does the socket change. Replies are read as
    redis-py reads them: error replies become its exception classes, and push
    messages (RESP3's, which a server may send between replies) are not replies.
    """

    def __init__(self, connection):
        self.connection = connection
        self._socket = None  # the socket the fields below were set up for
        self._reader = None  # None: a TLS socket, read by redis-py
        self._buffer = bytearray(RECEIVE_BYTES)

    def exchange(self, request: bytes, replies: int) -> list:
        """Send `request` (packed commands) and return its `replies` replies.

        Any error disconnects: the connection's state is unknown, the next use reconnects.
        """
        try:
            sock = self._connected_socket()
            if self._reader is None:
                self.connection.send_packed_command([request], check_health=False)
                return [self.connection.read_response() for _ in range(replies)]
            return self._round_trip(sock, request, replies)
        except BaseException:
            self.disconnect()
            raise

    def disconnect(self) -> None:
        self.connection.disconnect()

    @property
    def is_open(self) -> bool:
        """Whether it holds a socket, which the server may have closed since its last use."""
        return self.connection._sock is not None

    def _connected_socket(self):
        connection = self.connection
        if connection._sock is None:  # redis-py keeps the socket there, and offers no accessor
            connection.connect()
        sock = connection._sock
        if sock is not self._socket:
            self._socket = sock
            self._reader = None
            if not isinstance(sock, ssl.SSLSocket):
                _wait_in_the_kernel(sock)
                self._reader = hiredis.Reader(
                    protocolError=InvalidResponse,
                    replyError=connection._parser.parse_error,
                    notEnoughData=_NOT_ENOUGH_DATA,
                )
        return sock

    def _round_trip(self, sock, request: bytes, replies: int) -> list:
        reader, buffer = self._reader, self._buffer
        found = []
        try:
            sock.sendall(request)
            while len(found) < replies:
                reply = reader.gets()
                if isinstance(reply, hiredis.PushNotification):
                    continue
                if reply is not _NOT_ENOUGH_DATA:
                    found.append(reply)
                    continue
                received = sock.recv_into(buffer)
                if not received:
                    raise RedisConnectionError("Connection closed by server.")
                reader.feed(buffer, 0, received)
        except BlockingIOError:  # EAGAIN: the kernel's timeout passed
            raise RedisTimeoutError(f"Timeout in a round trip with {self._address()}") from None
        except OSError as error:
            raise RedisConnectionError(
                f"Error in a round trip with {self._address()}: {error}"
            ) from error
        for reply in found:
            if isinstance(reply, RedisError):  # ResponseError, BusyLoadingError...
                raise reply
        return found

    def _address(self) -> str:
        return self.connection._host_error()


def _wait_in_the_kernel(sock) -> None:
    """Make `sock` block, with its Python timeout as the kernel's for each send and receive."""
    timeout = sock.gettimeout()
    if timeout is not None:
        seconds, fraction = divmod(timeout, 1)
        # At least a microsecond: a zero timeval means no timeout at all.
        limit = struct.pack("ll", int(seconds), max(1, int(fraction * 1_000_000)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    sock.settimeout(None)
