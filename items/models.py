import contextlib
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connections, models, router, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone

MAX_PRICE = Decimal("99999999.99")


# Bulk writes send no post_save; these carry what they changed, after commit.
# Arguments: `versions`, a list of (item id, committed version) pairs.
items_bulk_changed = Signal()
# A bulk write changed rows it cannot name (a backend that returns no ids for
# `ignore_conflicts`): every cached item must go. Sent after commit, no arguments.
items_changed_unnamed = Signal()


class ItemQuerySet(models.QuerySet):
    """Bulk writes that keep Item's invariants: versions bump, the cache hears of it."""

    def update(self, **kwargs) -> int:
        """Update the matching rows, bumping `version` and `updated_at` like `save()`."""
        with transaction.atomic(using=self.db):
            # Exactly the locked rows: a row that starts matching meanwhile is not
            # touched, so none changes without being announced.
            ids = list(self.select_for_update().values_list("pk", flat=True))
            count, _ = self._update_rows(ids, **kwargs)
        return count

    def bulk_create(
        self, objs, batch_size=None, *, update_conflicts=False, update_fields=None, **kwargs
    ) -> list:
        """Create the rows, so that cached "no such item" entries for their ids go.

        With `update_conflicts` (an upsert) the rows that already existed are
        rewritten without a version bump, so every row written gets one here, as
        `update()` gives it (a new row goes to version 2), and `objs` get theirs.
        With `ignore_conflicts` PostgreSQL returns no ids, so objs without a pk get
        one from the table's sequence first; an obj whose row was skipped as a
        conflict gets None back, as Django leaves it.
        """
        if update_conflicts and "version" in (update_fields or ()):
            raise ValueError("Item.version is kept by the model: leave it out of update_fields.")
        objs = list(objs)
        with transaction.atomic(using=self.db):
            numbered = self._number(objs) if kwargs.get("ignore_conflicts") else []
            created = super().bulk_create(
                objs,
                batch_size,
                update_conflicts=update_conflicts,
                update_fields=update_fields,
                **kwargs,
            )
            ids = [obj.pk for obj in created if obj.pk is not None]
            if update_conflicts:  # the rows it wrote stay locked until the commit
                _, versions = self._update_rows(ids)
            else:
                versions = self._announce_after_commit(ids)
            if len(ids) < len(created):  # rows this backend would not name
                transaction.on_commit(
                    lambda: items_changed_unnamed.send(sender=self.model), using=self.db
                )
        for obj in created:
            obj.version = versions.get(obj.pk, obj.version)
        for obj in numbered:
            if obj.pk not in versions:  # skipped as a conflict: no row has this id
                obj.pk = None
        return created

    def bulk_update(self, objs, fields, *args, **kwargs) -> int:
        """Update the given fields of `objs`, bumping each one's version."""
        objs = list(objs)
        for obj in objs:
            obj.version = F("version") + 1
            obj.updated_at = timezone.now()
        fields = [*fields, "version", "updated_at"]
        with transaction.atomic(using=self.db):
            # Django writes each batch with update(), above, which announces it.
            count = super().bulk_update(objs, fields, *args, **kwargs)
            versions = self._versions([obj.pk for obj in objs])
        for obj in objs:
            obj.version = versions.get(obj.pk, obj.version)
        return count

    def _number(self, objs: list) -> list:
        """Give each obj without a pk the next id of the table's sequence; return them.

        Only on PostgreSQL; elsewhere nothing is numbered and the ids stay unknown.
        """
        unnumbered = [obj for obj in objs if obj.pk is None]
        connection = connections[self.db]
        if not unnumbered or connection.vendor != "postgresql":
            return []
        meta = self.model._meta
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(meta.db_table), meta.pk.column, len(unnumbered)],
            )
            for obj, (pk,) in zip(unnumbered, cursor.fetchall(), strict=True):
                obj.pk = pk
        return unnumbered

    def _versions(self, ids: list[int]) -> dict[int, int]:
        return dict(self.model._base_manager.filter(pk__in=ids).values_list("pk", "version"))

    def _update_rows(self, ids: list[int], **kwargs) -> tuple[int, dict[int, int]]:
        """Update these rows (the caller holds their locks) and announce them after commit.

        Bumps `version` and `updated_at` unless given; returns the count and the versions.
        """
        kwargs.setdefault("version", F("version") + 1)
        kwargs.setdefault("updated_at", timezone.now())
        rows = self.model.objects.db_manager(self.db).filter(pk__in=ids)
        count = models.QuerySet.update(rows, **kwargs)
        return count, self._announce_after_commit(ids)

    def _announce_after_commit(self, ids: list[int]) -> dict[int, int]:
        """Send `items_bulk_changed` once the transaction commits; return the versions.

        The versions are read inside the transaction, after the write, with the
        rows still locked: they are exactly the ones that will commit.
        """
        if not ids:
            return {}
        versions = self._versions(ids)
        transaction.on_commit(
            lambda: items_bulk_changed.send(sender=self.model, versions=list(versions.items())),
            using=self.db,
        )
        return versions


class Item(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MAX_PRICE)],
    )
    quantity = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="item_name_not_empty"),
            models.CheckConstraint(
                condition=Q(price__gte=0, price__lte=MAX_PRICE), name="item_price_in_range"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="item_quantity_not_negative"),
            models.CheckConstraint(condition=Q(version__gte=1), name="item_version_positive"),
        ]
        # One index per list ordering, with id as the tie-breaker that keeps pages stable.
        indexes = [
            models.Index(fields=[field, "id"], name=f"item_{field}_id_idx")
            for field in ("name", "price", "quantity", "created_at", "updated_at")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        """Insert with version 1, or update with version + 1.

        A loaded item is written in one statement that compares and sets its version
        (`UPDATE ... SET version = read + 1 WHERE id = ... AND version = read`). If another
        write committed since this instance was read, the row is locked and read again and
        this write takes the next version after that one: the last writer wins, and no two
        writes share a version. With `update_fields`, the fields it leaves alone are read
        again too, so the instance shows the row as written.

        An instance built with an explicit pk may update an existing row (Django tries
        an UPDATE first), so it locks that row and is versioned from it.
        Lost-update protection (If-Match) is `items.conditional.write_guard`.
        """
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, "version", "updated_at"}
        if self.pk is None:
            self.version = 1
            super().save(*args, **kwargs)
            return
        if not self._state.adding:
            self._save_compared(*args, **kwargs)
            return
        with transaction.atomic(using=kwargs.get("using")):
            locked = Item.objects.select_for_update().filter(pk=self.pk)
            current = locked.values_list("version", flat=True).first()
            self.version = 1 if current is None else current + 1
            if current is None and update_fields is None:
                # Nothing to lock: a row inserted meanwhile must fail this save, not
                # be overwritten at the same version 1.
                kwargs["force_insert"] = True
            super().save(*args, **kwargs)

    def _save_compared(self, *args, **kwargs) -> None:
        """Save a loaded item as a compare-and-set on the version it was read at (`save`).

        In autocommit that is the one `UPDATE`. Inside an atomic block the save gets a
        savepoint, so an error it raises (DoesNotExist for a row deleted since it was
        read) leaves the caller's transaction usable.
        """
        version_read = self.version
        self._version_read, self.version = version_read, version_read + 1
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        nested = transaction.get_connection(using).in_atomic_block
        try:
            with transaction.atomic(using=using) if nested else contextlib.nullcontext():
                super().save(*args, **kwargs)
        except BaseException:
            self.version = version_read  # the next save compares against what was read
            raise
        finally:
            vars(self).pop("_version_read", None)  # a receiver's nested save may have taken it

    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update):
        """Django's UPDATE of a loaded item, as a compare-and-set on its version (`save`)."""
        version_read = getattr(self, "_version_read", None)
        if version_read is None:
            return super()._do_update(base_qs, using, pk_val, values, update_fields, forced_update)
        compared = base_qs.filter(version=version_read)
        if super()._do_update(compared, using, pk_val, values, update_fields, forced_update):
            return True
        with transaction.atomic(using=using, savepoint=False):
            self._read_locked(using, update_fields)
            # Written again after the lock: the new version, and updated_at stamped now,
            # later than the write this one waited for.
            values = [(field, model, field.pre_save(self, False)) for field, model, _ in values]
            return super()._do_update(base_qs, using, pk_val, values, update_fields, forced_update)

    def _read_locked(self, using: str, update_fields) -> None:
        """Lock the row; take its version + 1 and the fields this save does not write.

        Raises DoesNotExist when the row was deleted since the instance was read: a
        save does not bring it back.
        """
        unwritten = set()
        if update_fields is not None:
            unwritten = {
                field.attname
                for field in self._meta.concrete_fields
                if not field.primary_key
                and field.name not in update_fields
                and field.attname not in update_fields
            }
        try:
            self.refresh_from_db(
                using=using,
                fields=[*unwritten, "version"],
                from_queryset=Item._base_manager.select_for_update(),
            )
        except Item.DoesNotExist:
            raise Item.DoesNotExist("deleted since it was read") from None
        self.version += 1
