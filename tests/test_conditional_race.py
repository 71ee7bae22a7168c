"""Two clients racing with the same If-Match against real PostgreSQL: one wins, one gets 412."""

import threading
import time
from http import HTTPStatus

import pytest
from django.db import connection, connections, transaction
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from items.models import Item
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_FOR_WRITERS_SECONDS = 30  # a bound for a stuck test, not a performance assertion


def _writers_waiting_for_a_row_lock() -> int:
    with connection.cursor() as cursor:
        # Statistics views are snapshotted per transaction; drop the snapshot to see now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_until_both_writers_block() -> None:
    deadline = time.monotonic() + WAIT_FOR_WRITERS_SECONDS
    while _writers_waiting_for_a_row_lock() < 2:
        assert time.monotonic() < deadline, "the two writers never reached the row lock"
        time.sleep(0.05)


def _send(method: str, url: str, token: str, if_match: str, payload, results: list) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    try:
        response = getattr(client, method)(url, payload, format="json", HTTP_IF_MATCH=if_match)
        results.append(response.status_code)
    finally:
        connections.close_all()


@pytest.mark.parametrize(
    ("method", "payloads", "winner"),
    [
        ("patch", [{"quantity": 10}, {"quantity": 20}], HTTPStatus.OK),
        (
            "put",
            [
                {"name": "A", "description": "", "price": "1.00", "quantity": 1},
                {"name": "B", "description": "", "price": "2.00", "quantity": 2},
            ],
            HTTPStatus.OK,
        ),
        ("delete", [None, None], HTTPStatus.NO_CONTENT),
    ],
)
def test_of_two_writers_with_the_same_if_match_exactly_one_wins(method, payloads, winner):
    item = ItemFactory(quantity=0)
    token = Token.objects.create(user=UserFactory()).key
    url, if_match = f"/api/items/{item.pk}/", f'"{item.pk}-1"'
    results: list[int] = []
    writers = [
        threading.Thread(target=_send, args=(method, url, token, if_match, payload, results))
        for payload in payloads
    ]

    # Hold the row so both writers pass the read-time check and queue on the lock;
    # releasing it lets them go one after the other, as a real race would.
    with transaction.atomic():
        Item.objects.select_for_update().get(pk=item.pk)
        for writer in writers:
            writer.start()
        _wait_until_both_writers_block()
    for writer in writers:
        writer.join(timeout=WAIT_FOR_WRITERS_SECONDS)

    assert sorted(results) == sorted([winner, HTTPStatus.PRECONDITION_FAILED])
    if method == "delete":
        assert not Item.objects.exists()
    else:
        assert Item.objects.get().version == 2
