from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

MAX_PRICE = Decimal("99999999.99")


class VersionMismatch(Exception):
    """The row's version is not the one the caller expected (a lost update)."""

    def __init__(self, current_version: int):
        super().__init__(f"current version is {current_version}")
        self.current_version = current_version


class ItemQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        """Bulk update that, like `Item.save()`, bumps `version` and `updated_at`."""
        kwargs.setdefault("version", F("version") + 1)
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


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

    def save(self, *args, expected_version: int | None = None, **kwargs) -> None:
        """Insert with version 1, or update with version + 1.

        An update locks the row, so two concurrent saves produce two distinct
        versions; with `expected_version` it raises `VersionMismatch` instead of
        overwriting a version the caller has not seen.
        """
        if self._state.adding:
            self.version = 1
            super().save(*args, **kwargs)
            return
        with transaction.atomic(using=kwargs.get("using")):
            current = (
                Item.objects.select_for_update().values_list("version", flat=True).get(pk=self.pk)
            )
            if expected_version is not None and current != expected_version:
                raise VersionMismatch(current)
            self.version = current + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "version", "updated_at"}
            super().save(*args, **kwargs)
