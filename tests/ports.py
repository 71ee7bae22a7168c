"""Ports for the servers tests start themselves (or point at, to find nothing listening)."""

import socket


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
