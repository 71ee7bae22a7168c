"""Behind API Gateway and a load balancer (infra/): the caller's address and the host name
come from headers the gateway writes, and readiness stays internal (backend/gateway_headers.py).

The server is the image's command (gunicorn, production settings) with the two settings
the CDK app's Fargate tier sets; requests carry what API Gateway and the load balancer send.
"""

import uuid

import pytest

from tests.factories import ItemFactory
from tests.test_container import PROJECT_ROOT, serving

API_DOMAIN = "abc123.execute-api.eu-west-1.amazonaws.com"
BALANCER = "internal-items-123.eu-west-1.elb.amazonaws.com"


def through_the_gateway(caller: str, **headers) -> dict:
    """API Gateway's own headers, then what the load balancer adds behind it."""
    return {
        "Host": BALANCER,
        "X-Items-Client-Ip": caller,
        "X-Items-Forwarded-Host": API_DOMAIN,
        "X-Items-Forwarded-Proto": "https",
        "X-Forwarded-For": f"{caller}, 10.0.3.7",
        "X-Forwarded-Proto": "http",
        **headers,
    }


@pytest.fixture
def server_behind_the_gateway(transactional_db, production_environment, tmp_path, monkeypatch):
    monkeypatch.delenv("API_NUM_PROXIES", raising=False)
    with serving(
        PROJECT_ROOT,
        production_environment,
        tmp_path,
        static_root=tmp_path,
        DJANGO_ALLOWED_HOSTS=API_DOMAIN,
        DJANGO_CSRF_TRUSTED_ORIGINS=f"https://{API_DOMAIN}",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Items-Forwarded-Proto",
        API_CLIENT_IP_HEADER="X-Items-Client-Ip",
        DJANGO_HOST_HEADER="X-Items-Forwarded-Host",
        API_THROTTLE_ANON_RATE="3/min",
        CACHE_KEY_PREFIX=f"test-gateway-{uuid.uuid4().hex}",
    ) as server:
        yield server


def test_the_rate_limit_counts_the_address_the_gateway_saw(server_behind_the_gateway):
    """A client that rotates its own X-Forwarded-For gets no fresh budget."""
    statuses = [
        server_behind_the_gateway.request(
            "GET",
            "/api/items/",
            headers=through_the_gateway(
                "203.0.113.9", **{"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.9, 10.0.3.7"}
            ),
        ).status
        for n in range(5)
    ]
    other_caller = server_behind_the_gateway.request(
        "GET", "/api/items/", headers=through_the_gateway("203.0.113.10")
    )

    assert statuses == [200, 200, 200, 429, 429]
    assert other_caller.status == 200


def test_links_name_the_apis_domain_over_https_not_the_load_balancer(server_behind_the_gateway):
    ItemFactory.create_batch(2)

    page = server_behind_the_gateway.request(
        "GET", "/api/items/?page_size=1", headers=through_the_gateway("203.0.113.11")
    )

    assert page.status == 200
    assert page.json()["next"] == f"https://{API_DOMAIN}/api/items/?page=2&page_size=1"


def test_readiness_is_not_answered_through_the_gateway(server_behind_the_gateway):
    outside = server_behind_the_gateway.request(
        "GET", "/readyz", headers=through_the_gateway("203.0.113.12")
    )
    inside = server_behind_the_gateway.request("GET", "/readyz", headers={"Host": "10.0.3.8"})

    assert (outside.status, outside.json()["code"]) == (404, "not_found")
    assert inside.status == 200


def test_without_the_settings_nothing_is_installed(settings):
    assert "backend.gateway_headers.GatewayHeadersMiddleware" not in settings.MIDDLEWARE
