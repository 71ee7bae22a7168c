"""Query parameters of the item list: filters, search and ordering.

Every parameter is validated: a value the API cannot use is a 400 naming the parameter,
never silently ignored and never a database error.
"""

import django_filters
from rest_framework import filters
from rest_framework.exceptions import ValidationError

from items.models import Item

IN_STOCK_CHOICES = [("true", "true"), ("false", "false")]


class ItemFilter(django_filters.FilterSet):
    # Bounded like Item.price, so a huge or over-precise number is a 400, not a SQL error.
    min_price = django_filters.NumberFilter(
        field_name="price",
        lookup_expr="gte",
        max_digits=10,
        decimal_places=2,
        label="Only items whose price is at least this.",
    )
    max_price = django_filters.NumberFilter(
        field_name="price",
        lookup_expr="lte",
        max_digits=10,
        decimal_places=2,
        label="Only items whose price is at most this.",
    )
    # A choice rather than a boolean: django-filter reads an unknown boolean as "no filter".
    in_stock = django_filters.ChoiceFilter(
        choices=IN_STOCK_CHOICES,
        method="filter_in_stock",
        label="`true`: quantity above 0; `false`: quantity 0.",
    )
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        label="Only items updated at or after this ISO 8601 time (UTC unless an offset is given).",
    )

    class Meta:
        model = Item
        fields = ["min_price", "max_price", "in_stock", "updated_since"]

    def filter_in_stock(self, queryset, name, value):
        if value == "true":
            return queryset.filter(quantity__gt=0)
        return queryset.filter(quantity=0)


class ItemSearchFilter(filters.SearchFilter):
    """`?search=`: every whitespace-separated term in the name or the description."""

    search_description = "Terms that must each appear in the name or the description."

    def get_search_terms(self, request) -> list[str]:
        try:
            return super().get_search_terms(request)
        except ValidationError as error:  # e.g. a NUL character, which PostgreSQL refuses
            raise ValidationError({self.search_param: error.detail}) from error


class StableOrderingFilter(filters.OrderingFilter):
    """`?ordering=`: known fields only (400 otherwise), then `id` as the tie-breaker.

    The tie-breaker follows the direction of the first field, so `-price` orders by
    `(-price, -id)`, which the `(price, id)` index serves scanned backwards, and pages
    never repeat or skip an item that shares a value with its neighbour.
    """

    ordering_description = (
        "Comma-separated fields to order by: name, price, quantity, created_at, updated_at "
        "or id; `-` before a field for descending. Default: id."
    )

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        if len(valid) != len(fields):
            unknown = ", ".join(f"'{field}'" for field in fields if field not in valid)
            raise ValidationError({self.ordering_param: [f"Cannot order by {unknown}."]})
        return valid

    def get_ordering(self, request, queryset, view) -> list[str]:
        ordering = list(super().get_ordering(request, queryset, view))
        if {"id", "-id"} & set(ordering):
            return ordering
        descending = ordering[0].startswith("-") if ordering else False
        return [*ordering, "-id" if descending else "id"]
