"""A client's address for the rate limits, on the served application as the image runs it.

By default (`API_NUM_PROXIES` unset) the address is the socket's: a service reached
without a proxy in front must not let a client choose its address with X-Forwarded-For.
"""

import uuid

import pytest

from tests.test_container import PROJECT_ROOT, THROUGH_THE_LOAD_BALANCER, serving


@pytest.fixture
def directly_reached_server(transactional_db, production_environment, tmp_path, monkeypatch):
    """gunicorn with production settings, no API_NUM_PROXIES, and an anonymous rate of 3/min."""
    monkeypatch.delenv("API_NUM_PROXIES", raising=False)
    with serving(
        PROJECT_ROOT,
        production_environment,
        tmp_path,
        static_root=tmp_path,
        API_THROTTLE_ANON_RATE="3/min",
        CACHE_KEY_PREFIX=f"test-client-address-{uuid.uuid4().hex}",
    ) as server:
        yield server


def test_by_default_a_rotating_forwarded_for_header_buys_no_fresh_rate_budget(
    directly_reached_server,
):
    statuses = [
        directly_reached_server.request(
            "GET",
            "/api/items/",
            headers={**THROUGH_THE_LOAD_BALANCER, "X-Forwarded-For": f"198.51.100.{n}"},
        ).status
        for n in range(5)
    ]

    assert statuses == [200, 200, 200, 429, 429]
