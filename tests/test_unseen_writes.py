"""Writes no receiver sees (data migrations, `_base_manager`, SQL) and the cache.

`migrate` makes every cached item a miss on its own; `invalidate_item_cache` does
the same on demand; a data migration bumps versions with `update_items` so that
ETags change too (docs/caching.md, "Writes the receivers do not see").
"""

import logging
import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader

from items.data_migrations import update_items
from items.models import Item
from tests.ports import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def detail(item_id) -> str:
    return f"/api/items/{item_id}/"


def read(client, item_id):
    response = client.get(detail(item_id))
    return response.status_code, response["X-Cache"], response.json().get("name")


def run_python(code) -> None:
    """Run `code(apps, schema_editor)` as a RunPython operation of a migration runs it."""
    state = MigrationLoader(connection).project_state()
    with connection.schema_editor() as schema_editor:
        migrations.RunPython(code).database_forwards("items", schema_editor, state, state)


def rename_through_the_historical_model(apps, schema_editor) -> None:
    historical = apps.get_model("items", "Item")
    assert historical is not Item  # the receivers listen to Item, not to this class
    historical.objects.update(name="Renamed by a migration")


def use_unreachable_redis(settings) -> None:
    settings.CACHES = {
        alias: {**config, "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}
        for alias, config in settings.CACHES.items()
    }


def test_after_migrate_a_data_migrations_change_is_served_not_the_cached_item(
    api_client, item, django_capture_on_commit_callbacks
):
    assert read(api_client, item.pk)[1] == "MISS"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run_python(rename_through_the_historical_model)
    assert callbacks == []  # no receiver heard the write
    assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", item.name)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("migrate", verbosity=0)

    assert read(api_client, item.pk) == (HTTPStatus.OK, "MISS", "Renamed by a migration")


def test_flush_leaves_no_cached_item_behind(api_client, item, django_capture_on_commit_callbacks):
    read(api_client, item.pk)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("flush", interactive=False, verbosity=0)

    assert read(api_client, item.pk)[:2] == (HTTPStatus.NOT_FOUND, "MISS")


def test_update_items_gives_a_data_migrations_change_a_new_etag(
    api_client, auth_client, item, django_capture_on_commit_callbacks
):
    old_etag = api_client.get(detail(item.pk))["ETag"]
    updated_before = item.updated_at

    def reprice(apps, schema_editor):
        update_items(apps.get_model("items", "Item").objects.filter(pk=item.pk), price=5)

    with django_capture_on_commit_callbacks(execute=True):
        run_python(reprice)
        call_command("migrate", verbosity=0)

    revalidated = api_client.get(detail(item.pk), HTTP_IF_NONE_MATCH=old_etag)
    assert revalidated.status_code == HTTPStatus.OK
    assert (revalidated["ETag"], revalidated.json()["price"]) == (f'"{item.pk}-2"', "5.00")
    overwrite = auth_client.patch(
        detail(item.pk), {"price": "1.00"}, format="json", HTTP_IF_MATCH=old_etag
    )
    assert overwrite.status_code == HTTPStatus.PRECONDITION_FAILED
    item.refresh_from_db()
    assert item.updated_at > updated_before


def test_migrate_with_redis_unreachable_succeeds_and_says_what_to_run(
    settings, item, caplog, django_capture_on_commit_callbacks
):
    use_unreachable_redis(settings)

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        call_command("migrate", verbosity=0)

    [warning] = [r for r in caplog.records if r.name == "items.signals"]
    assert warning.levelname == "WARNING"
    assert "manage.py invalidate_item_cache" in warning.getMessage()


def test_migrate_without_redis_warns_that_the_servers_caches_were_not_reached(
    settings, caplog, django_capture_on_commit_callbacks
):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.DEBUG = False

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        call_command("migrate", verbosity=0)

    [warning] = [r for r in caplog.records if r.name == "items.signals"]
    assert "No Redis is configured" in warning.getMessage()


def sql_update(item):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE items_item SET name = 'Changed by SQL' WHERE id = %s", [item.pk])


def base_manager_update(item):
    Item._base_manager.filter(pk=item.pk).update(name="Changed by SQL")


@pytest.mark.parametrize("write", [sql_update, base_manager_update], ids=["sql", "base manager"])
def test_the_command_makes_every_cached_item_a_miss_after_an_unseen_write(
    write, api_client, item, capsys
):
    read(api_client, item.pk)
    write(item)
    assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", item.name)

    call_command("invalidate_item_cache")

    assert "Every cached item is now a miss" in capsys.readouterr().out
    assert read(api_client, item.pk) == (HTTPStatus.OK, "MISS", "Changed by SQL")
    assert read(api_client, item.pk) == (HTTPStatus.OK, "HIT", "Changed by SQL")


def test_the_command_exits_non_zero_and_says_so_when_redis_is_unreachable():
    environment = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    finished = subprocess.run(
        [sys.executable, "manage.py", "invalidate_item_cache"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert "Redis could not be reached" in finished.stderr
    assert "NO cached item was invalidated" in finished.stderr
    assert finished.stdout == ""


def test_the_command_refuses_without_redis(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    with pytest.raises(CommandError, match="No Redis is configured"):
        call_command("invalidate_item_cache")
