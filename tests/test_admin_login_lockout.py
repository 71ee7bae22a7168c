"""Failed admin logins lock the client's address out (django-axes), counted in PostgreSQL."""

from http import HTTPStatus

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command

from tests.factories import UserFactory
from tests.test_configuration import run_settings

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/?next=/admin/"
PASSWORD = "correct-horse-battery-staple"
LIMIT = settings.AXES_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Each login hashes a password; the production hasher would make these tests slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_user():
    user = UserFactory(is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def behind_the_load_balancer(settings):
    """The Copilot manifest's topology: one proxy, whose X-Forwarded-For entry is trusted."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}


def log_in(client, username: str, password: str, **headers):
    return client.post(LOGIN_URL, {"username": username, "password": password}, **headers)


def is_logged_in(client) -> bool:
    return client.get("/admin/").status_code == HTTPStatus.OK


def test_the_limit_and_cool_off_defaults_suit_a_human_who_mistypes():
    assert (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds()) == (5, 900)


@pytest.mark.parametrize(
    "variables",
    [{"ADMIN_LOGIN_FAILURE_LIMIT": "0"}, {"ADMIN_LOGIN_COOLOFF_MINUTES": "0"}],
    ids=["no-failures", "no-cool-off"],
)
def test_a_limit_or_cool_off_of_zero_stops_the_process_at_start(variables):
    result = run_settings(
        DJANGO_SECRET_KEY="x", DATABASE_URL="postgres://app@db.internal/items", **variables
    )

    assert result.returncode != 0
    assert "ADMIN_LOGIN_FAILURE_LIMIT and ADMIN_LOGIN_COOLOFF_MINUTES must be above 0" in (
        result.stderr
    )


def test_failed_logins_up_to_the_limit_lock_the_address_out_even_for_the_right_password(
    client, staff_user
):
    failures = [log_in(client, staff_user.username, "wrong").status_code for _ in range(LIMIT)]
    locked = log_in(client, staff_user.username, PASSWORD)

    assert failures == [HTTPStatus.OK] * (LIMIT - 1) + [HTTPStatus.TOO_MANY_REQUESTS]
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert locked["Content-Type"] == "application/problem+json"
    assert locked["Retry-After"] == "900"
    body = locked.json()
    assert (body["status"], body["code"], body["detail"]) == (
        429,
        "login_locked_out",
        "Too many failed logins from this address; try again in 15 minutes.",
    )
    assert not is_logged_in(client)


def test_below_the_limit_the_right_password_still_logs_in(client, staff_user):
    for _ in range(LIMIT - 1):
        log_in(client, staff_user.username, "wrong")

    answer = log_in(client, staff_user.username, PASSWORD)

    assert answer.status_code == HTTPStatus.FOUND
    assert is_logged_in(client)


def test_the_count_lives_in_the_database_every_task_shares(client, staff_user):
    for _ in range(LIMIT):
        log_in(client, staff_user.username, "wrong")

    attempt = AccessAttempt.objects.get()
    assert (attempt.ip_address, attempt.username, attempt.failures_since_start) == (
        "127.0.0.1",
        staff_user.username,
        LIMIT,
    )
    assert "wrong" not in attempt.post_data  # the password is not kept


def test_api_token_authentication_is_unaffected_by_a_locked_address(
    client, staff_user, auth_client
):
    for _ in range(LIMIT):
        log_in(client, staff_user.username, "wrong")

    created = auth_client.post("/api/items/", {"name": "Lamp", "price": "1.00"}, format="json")

    assert created.status_code == HTTPStatus.CREATED


def test_a_forwarded_for_header_of_the_clients_own_does_not_reset_its_count(
    client, staff_user, behind_the_load_balancer
):
    def via_alb(made_up: str, client_address: str = "198.51.100.7") -> dict:
        return {"HTTP_X_FORWARDED_FOR": f"{made_up}, {client_address}"}

    statuses = [
        log_in(client, staff_user.username, "wrong", **via_alb(f"203.0.113.{n}")).status_code
        for n in range(LIMIT + 1)
    ]
    another_client = log_in(
        client, staff_user.username, PASSWORD, **via_alb("203.0.113.99", "198.51.100.8")
    )

    assert statuses[-2:] == [HTTPStatus.TOO_MANY_REQUESTS] * 2
    assert another_client.status_code == HTTPStatus.FOUND


def test_directly_reached_a_rotating_forwarded_for_header_does_not_reset_the_count(
    client, staff_user
):
    statuses = [
        log_in(client, "admin", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(LIMIT)
    ]

    assert statuses[-1] == HTTPStatus.TOO_MANY_REQUESTS


def test_axes_reset_unlocks_an_address_as_docs_operations_says(client, staff_user):
    for _ in range(LIMIT):
        log_in(client, staff_user.username, "wrong")

    call_command("axes_reset_ip", "127.0.0.1")

    assert log_in(client, staff_user.username, PASSWORD).status_code == HTTPStatus.FOUND
    assert is_logged_in(client)
