"""Item invariants held by the model and the database."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.test.utils import CaptureQueriesContext

from items.models import Item, ItemQuerySet, items_bulk_changed
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


def test_a_new_item_starts_at_version_1():
    assert ItemFactory().version == 1


def test_every_save_bumps_the_version():
    item = ItemFactory()
    item.save()
    item.quantity = 9
    item.save(update_fields=["quantity"])

    item.refresh_from_db()
    assert (item.version, item.quantity) == (3, 9)


def test_a_save_from_a_stale_copy_still_gets_a_fresh_version():
    item = ItemFactory()
    stale = Item.objects.get(pk=item.pk)
    item.save()

    stale.save()

    assert stale.version == 3


@pytest.mark.django_db(transaction=True)
def test_a_save_of_an_item_unchanged_since_it_was_read_is_one_statement():
    """In autocommit, as a request without If-Match saves; in an atomic block it gets a
    savepoint too."""
    item = ItemFactory()

    with CaptureQueriesContext(connection) as queries:
        item.save()

    [update] = [query["sql"] for query in queries.captured_queries]
    assert update.startswith("UPDATE")
    assert '"items_item"."version" = 1' in update
    assert item.version == 2


def test_a_partial_save_from_a_stale_copy_shows_what_the_other_write_changed():
    item = ItemFactory(description="first")
    stale = Item.objects.get(pk=item.pk)
    item.description = "changed since"
    item.save()

    stale.quantity = 9
    stale.save(update_fields=["quantity"])

    assert (stale.description, stale.quantity, stale.version) == ("changed since", 9, 3)
    row = Item.objects.values_list("description", "quantity", "version").get(pk=item.pk)
    assert row == ("changed since", 9, 3)


def test_a_save_that_waited_for_another_write_is_stamped_after_it(monkeypatch):
    """The compare-and-set loses to a write committed after this save took its time:
    updated_at is taken again with the new version, so it never goes backwards."""
    item = ItemFactory()
    stale = Item.objects.get(pk=item.pk)
    update = models.Model._do_update
    other_wrote = []

    def another_write_commits_first(instance, *args):
        if instance is stale and not other_wrote:
            item.save()
            other_wrote.append(item.updated_at)
        return update(instance, *args)

    monkeypatch.setattr(models.Model, "_do_update", another_write_commits_first)
    stale.save()

    row = Item.objects.values_list("version", "updated_at").get(pk=item.pk)
    assert row == (3, stale.updated_at)
    assert stale.updated_at > other_wrote[0]


def test_a_copy_made_by_clearing_the_pk_is_inserted_at_version_1():
    item = ItemFactory()
    item.save()

    item.pk = None
    item.save()

    assert Item.objects.get(pk=item.pk).version == 1


def test_a_new_instance_with_an_existing_pk_versions_from_that_row():
    item = ItemFactory()
    item.save()

    Item(pk=item.pk, quantity=7).save(update_fields=["quantity"])

    item.refresh_from_db()
    assert (item.version, item.quantity) == (3, 7)


def test_a_new_instance_with_an_unused_pk_is_inserted_at_version_1():
    Item(pk=990101, name="Chosen id", price=Decimal("1.00")).save()

    assert Item.objects.get(pk=990101).version == 1


def test_a_new_instance_never_overwrites_a_row_inserted_after_it_looked(monkeypatch):
    other = ItemFactory(name="Inserted by another request")
    # The row commits between this save's version lookup (which finds nothing) and its write.
    monkeypatch.setattr(ItemQuerySet, "first", lambda queryset: None)

    with pytest.raises(IntegrityError), transaction.atomic():
        Item(pk=other.pk, name="Mine", price=Decimal("1.00"), created_at=other.created_at).save()

    assert Item.objects.get(pk=other.pk).name == "Inserted by another request"


def test_a_loaded_item_deleted_since_is_not_saved_back():
    item = ItemFactory()
    Item.objects.filter(pk=item.pk).delete()

    with pytest.raises(Item.DoesNotExist):
        item.save()
    assert item.version == 1  # a next save compares against the version it read
    assert not Item.objects.filter(pk=item.pk).exists()


def test_an_upsert_bumps_the_version_of_the_rows_it_rewrites():
    item = ItemFactory()

    [upserted] = Item.objects.bulk_create(
        [Item(pk=item.pk, name="Upserted", price=Decimal("2.00"))],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["name", "price"],
    )

    item.refresh_from_db()
    assert (item.name, item.version) == ("Upserted", 2)
    assert upserted.version == 2


def test_an_upsert_cannot_write_the_version_itself():
    with pytest.raises(ValueError, match="version"):
        Item.objects.bulk_create(
            [Item(pk=1, name="n", price=1, version=99)],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["name", "version"],
        )


def test_an_upsert_through_a_filtered_queryset_still_bumps_every_row_it_wrote():
    item = ItemFactory(quantity=0)

    Item.objects.filter(quantity__gt=0).bulk_create(
        [Item(pk=item.pk, name="Upserted", price=Decimal("2.00"))],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["name"],
    )

    item.refresh_from_db()
    assert (item.name, item.version) == ("Upserted", 2)


def test_queryset_update_bumps_versions_and_updated_at():
    first, second = ItemFactory.create_batch(2)

    Item.objects.filter(pk=first.pk).update(quantity=100)

    first_after = Item.objects.get(pk=first.pk)
    assert (first_after.version, first_after.quantity) == (2, 100)
    assert first_after.updated_at > first.updated_at
    assert Item.objects.get(pk=second.pk).version == 1


def test_bulk_update_announces_each_item_once_with_its_committed_version(
    django_capture_on_commit_callbacks,
):
    items = ItemFactory.create_batch(3)
    announced = []

    def record(sender, versions, **kwargs):
        announced.extend(versions)

    items_bulk_changed.connect(record)
    try:
        for item in items:
            item.quantity = 7
        with django_capture_on_commit_callbacks(execute=True):
            Item.objects.bulk_update(items, ["quantity"], batch_size=2)
    finally:
        items_bulk_changed.disconnect(record)

    assert sorted(announced) == [(item.pk, 2) for item in items]
    assert [item.version for item in items] == [2, 2, 2]


@pytest.mark.parametrize(
    "values",
    [
        {"price": Decimal("-1")},
        {"quantity": -1},
        {"name": ""},
    ],
)
def test_the_database_rejects_invalid_rows_that_skip_validation(values):
    item = ItemFactory()

    with pytest.raises(IntegrityError):
        Item.objects.filter(pk=item.pk).update(**values)
