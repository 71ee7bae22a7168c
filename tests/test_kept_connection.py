"""The kept connection's round trip: its timeouts, its errors, and TLS.

On a plain socket the round trip waits in the kernel, with the configured timeout as
SO_RCVTIMEO and SO_SNDTIMEO; over TLS it keeps redis-py's reads. Both must raise
redis-py's own errors, which the cache engine and its breaker judge: a timeout as a
TimeoutError (not retried), a closed connection as a ConnectionError.
"""

import os
import signal
import socket
import struct
import subprocess
import time

import pytest
import redis
from hiredis import pack_command
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.cache.kept_connection import KeptConnection
from tests.ports import free_port
from tests.test_cache_outage import start_redis, stop_redis

TIMEOUT = 0.2


def ping(kept: KeptConnection) -> list:
    return kept.exchange(pack_command(("PING",)) + pack_command(("ECHO", "kept")), 2)


@pytest.fixture
def kept(own_redis):
    _, port = own_redis
    kept = KeptConnection(redis.Connection(host="127.0.0.1", port=port, socket_timeout=TIMEOUT))
    yield kept
    kept.disconnect()


def frozen(process):
    os.kill(process.pid, signal.SIGSTOP)
    return process


def assert_waits_in_the_kernel(kept: KeptConnection) -> None:
    sock = kept.connection._sock
    assert sock.gettimeout() is None  # no poll before each send and receive
    for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        assert struct.unpack("ll", sock.getsockopt(socket.SOL_SOCKET, option, 16)) == (0, 200_000)


def test_a_plain_socket_waits_in_the_kernel_with_the_configured_timeout(kept):
    assert ping(kept) == [b"PONG", b"kept"]

    assert_waits_in_the_kernel(kept)


def test_a_frozen_server_is_a_timeout_not_a_closed_connection(kept, own_redis):
    ping(kept)
    frozen(own_redis[0])

    started = time.monotonic()
    with pytest.raises(RedisTimeoutError):
        ping(kept)
    waited = time.monotonic() - started

    assert TIMEOUT <= waited < 10 * TIMEOUT  # the timeout, not forever
    assert kept.connection._sock is None  # its state is unknown: the next use reconnects


def test_a_connection_the_server_closed_raises_connection_error_then_reconnects(kept, own_redis):
    ping(kept)
    redis.Redis(port=own_redis[1]).client_kill_filter(_type="normal", skipme=True)

    with pytest.raises(RedisConnectionError):
        ping(kept)
    assert ping(kept) == [b"PONG", b"kept"]


def test_an_error_reply_is_raised_after_every_reply_is_read(kept, own_redis):
    redis.Redis(port=own_redis[1]).hset("a-hash", "field", "value")

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        kept.exchange(pack_command(("INCR", "a-hash")) + pack_command(("PING",)), 2)
    assert ping(kept) == [b"PONG", b"kept"]


def test_a_new_socket_after_a_reconnect_is_set_up_again(kept):
    ping(kept)
    kept._reader.feed(b"+a reply the old socket left unread\r\n")
    kept.disconnect()

    assert ping(kept) == [b"PONG", b"kept"]
    assert_waits_in_the_kernel(kept)


def test_error_replies_raise_redis_pys_own_exception_classes(kept):
    with pytest.raises(NoScriptError):
        kept.exchange(pack_command(("EVALSHA", "0" * 40, "0")), 1)


def test_push_messages_between_replies_are_not_taken_for_replies(kept, own_redis):
    """RESP3 (redis-py's default) lets a server push messages (client tracking's
    invalidations, maintenance notices) onto a connection between its replies."""
    other = redis.Redis(port=own_redis[1])
    other.set("tracked", "old")
    kept.exchange(pack_command(("CLIENT", "TRACKING", "ON")), 1)
    assert kept.exchange(pack_command(("GET", "tracked")), 1) == [b"old"]
    other.set("tracked", "new")  # the server pushes an invalidation to the kept connection

    assert ping(kept) == [b"PONG", b"kept"]
    assert kept.exchange(pack_command(("GET", "tracked")), 1) == [b"new"]


@pytest.fixture
def tls_redis(tmp_path):
    """A Redis serving TLS only, on a spare port, with a self-signed certificate."""
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    client = redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_timeout=1, retry=None
    )
    process = start_redis(
        port,
        *("--port", "0", "--tls-port", str(port)),  # TLS only, on the same port
        *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
        *("--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"),
        client=client,
    )
    yield process, port, cert
    stop_redis(process)


@pytest.fixture
def kept_tls(tls_redis):
    _, port, cert = tls_redis
    connection = redis.SSLConnection(
        host="127.0.0.1", port=port, ssl_ca_certs=str(cert), socket_timeout=TIMEOUT
    )
    kept = KeptConnection(connection)
    yield kept
    kept.disconnect()


def test_over_tls_redis_py_reads_with_its_timeout(kept_tls, tls_redis):
    assert ping(kept_tls) == [b"PONG", b"kept"]
    assert kept_tls.connection._sock.gettimeout() == TIMEOUT

    frozen(tls_redis[0])
    started = time.monotonic()
    with pytest.raises(RedisTimeoutError):
        ping(kept_tls)
    assert time.monotonic() - started < 10 * TIMEOUT


def test_a_read_that_cannot_connect_tries_once(settings, monkeypatch, own_redis):
    """A kept connection the server closed while idle is tried again on a fresh one; one
    that has to connect first is not, so while Redis is down a read costs one connect."""
    from backend.cache import RedisStore
    from tests.test_cache_outage import use_redis

    process, port = own_redis
    use_redis(settings, port)
    store = RedisStore()
    store.read("an-entry", "a-generation")  # the kept connection is open
    process.terminate()
    process.wait(10)
    exchanges = []
    exchange = KeptConnection.exchange
    monkeypatch.setattr(
        KeptConnection, "exchange", lambda kept, *args: [exchanges.append(1), exchange(kept, *args)]
    )

    for tries in (2, 1):  # the open connection, then a fresh one; then only a fresh one
        exchanges.clear()
        with pytest.raises(RedisConnectionError):
            store.read("an-entry", "a-generation")
        assert len(exchanges) == tries
