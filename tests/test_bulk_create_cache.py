"""Every `bulk_create` mode replaces the cached "no such item" of each id it creates.

With `ignore_conflicts` PostgreSQL returns no ids, so `ItemQuerySet.bulk_create` takes
them from the sequence first; ids the sequence hands out can have been read, and
cached as 404, before the rows existed.
"""

from decimal import Decimal
from http import HTTPStatus

import pytest

from items.models import Item, ItemQuerySet
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

MODES = {
    "plain": {},
    "ignore_conflicts": {"ignore_conflicts": True},
    "update_conflicts": {
        "update_conflicts": True,
        "unique_fields": ["id"],
        "update_fields": ["name", "price"],
    },
}


def status(client, item_id):
    response = client.get(f"/api/items/{item_id}/")
    return response.status_code, response["X-Cache"]


def next_ids(count: int) -> list[int]:
    """The ids the sequence hands out next (tests run one at a time on their database)."""
    last = ItemFactory().pk
    return list(range(last + 1, last + 1 + count))


def new_items(ids: list[int], explicit: bool) -> list[Item]:
    return [
        Item(pk=item_id if explicit else None, name=f"bulk {item_id}", price=Decimal("1.00"))
        for item_id in ids
    ]


@pytest.mark.parametrize("batch_size", [None, 1], ids=["one batch", "batches of one"])
@pytest.mark.parametrize("explicit", [True, False], ids=["explicit ids", "sequence ids"])
@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
def test_every_bulk_create_mode_replaces_cached_absences(
    mode, explicit, batch_size, api_client, django_capture_on_commit_callbacks
):
    ids = next_ids(2)
    for item_id in ids:
        assert status(api_client, item_id) == (HTTPStatus.NOT_FOUND, "MISS")
        assert status(api_client, item_id) == (HTTPStatus.NOT_FOUND, "HIT")

    with django_capture_on_commit_callbacks(execute=True):
        created = Item.objects.bulk_create(new_items(ids, explicit), batch_size, **mode)

    assert [obj.pk for obj in created] == ids
    assert [status(api_client, item_id) for item_id in ids] == [(HTTPStatus.OK, "MISS")] * 2


def test_ignore_conflicts_leaves_an_existing_row_and_creates_the_rest(
    api_client, django_capture_on_commit_callbacks
):
    existing = ItemFactory(name="Existing")
    [new_id] = next_ids(1)
    status(api_client, existing.pk)
    status(api_client, new_id)

    with django_capture_on_commit_callbacks(execute=True):
        created = Item.objects.bulk_create(
            [Item(pk=existing.pk, name="Ignored", price=1), Item(name="New", price=1)],
            ignore_conflicts=True,
        )

    assert [obj.pk for obj in created] == [existing.pk, new_id]
    names = {
        item_id: api_client.get(f"/api/items/{item_id}/").json()["name"]
        for item_id in (existing.pk, new_id)
    }
    assert names == {existing.pk: "Existing", new_id: "New"}


def test_without_ids_from_the_backend_every_cached_item_misses(
    api_client, monkeypatch, django_capture_on_commit_callbacks
):
    """A backend without sequences (SQLite) leaves the ids unknown: the whole cache goes."""
    monkeypatch.setattr(ItemQuerySet, "_number", lambda self, objs: [])
    cached = ItemFactory()
    [new_id] = next_ids(1)
    status(api_client, cached.pk)
    status(api_client, new_id)

    with django_capture_on_commit_callbacks(execute=True):
        [created] = Item.objects.bulk_create([Item(name="New", price=1)], ignore_conflicts=True)

    assert created.pk is None  # as Django leaves it when the backend returns no ids
    assert status(api_client, new_id) == (HTTPStatus.OK, "MISS")
    assert status(api_client, cached.pk) == (HTTPStatus.OK, "MISS")
