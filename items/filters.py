"""Query parameters of the item list: filters, search and ordering.

Every parameter is validated: a value the API cannot use is a 400 naming the parameter,
never silently ignored and never a database error. A parameter the API does not know is
ignored, so that clients may add their own (a cache-busting `_=…`, say).
"""

import re
from datetime import UTC
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import django_filters
from django import forms
from django.core.exceptions import ValidationError as FormValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework import filters
from rest_framework.exceptions import ValidationError

from items.models import MAX_PRICE, Item

PRICE_BOUND_LIMIT = MAX_PRICE + 1
PRICE_STEP = Decimal("0.01")  # Item.price's decimal places

IN_STOCK_CHOICES = [("true", "true"), ("false", "false")]

EMPTY_VALUE_MESSAGE = "Give a value, or leave the parameter out."


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC before it reaches the database.

    PostgreSQL refuses UTC offsets beyond 15 hours that Python accepts, and an offset
    can push year 1 or 9999 out of range; both are a 400, not a database error.
    """

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError as error:
            raise FormValidationError("The time is out of range.", code="invalid") from error


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class PriceBoundField(forms.DecimalField):
    """Any finite number, as the nearest bound Item.price can be compared with exactly.

    The number is brought into a range just wider than Item.price's, then rounded to
    its cents away from the range it bounds (`rounding`: up for a lower bound, down
    for an upper one). Either way it selects the same items: every bound beyond the
    range selects what its edge does, and prices have no digits past the cents. A
    number with hundreds of digits, or with an exponent such as `1e-20000`, would
    otherwise overflow PostgreSQL's numeric.
    """

    def __init__(self, *, rounding: str, **kwargs):
        super().__init__(**kwargs)
        self.rounding = rounding

    def to_python(self, value):
        bound = super().to_python(value)
        if bound is None or not bound.is_finite():
            return bound  # validate() reports NaN and Infinity
        bound = max(-PRICE_BOUND_LIMIT, min(bound, PRICE_BOUND_LIMIT))
        return bound.quantize(PRICE_STEP, rounding=self.rounding)


class PriceBoundFilter(django_filters.NumberFilter):
    field_class = PriceBoundField


class ItemFilter(django_filters.FilterSet):
    min_price = PriceBoundFilter(
        field_name="price",
        lookup_expr="gte",
        rounding=ROUND_CEILING,
        label="Only items whose price is at least this.",
    )
    max_price = PriceBoundFilter(
        field_name="price",
        lookup_expr="lte",
        rounding=ROUND_FLOOR,
        label="Only items whose price is at most this.",
    )
    # A choice rather than a boolean: django-filter reads an unknown boolean as "no filter".
    in_stock = django_filters.ChoiceFilter(
        choices=IN_STOCK_CHOICES,
        method="filter_in_stock",
        label="`true`: quantity above 0; `false`: quantity 0.",
    )
    updated_since = UTCDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        label="Only items updated at or after this ISO 8601 time (UTC unless an offset is given).",
    )

    class Meta:
        model = Item
        fields = ["min_price", "max_price", "in_stock", "updated_since"]

    def is_valid(self) -> bool:
        """Also refuse a parameter given with no value, which would otherwise filter nothing."""
        valid = super().is_valid()
        for name in self.filters:
            if self.data.get(name) == "":
                self.form.add_error(name, EMPTY_VALUE_MESSAGE)
        return valid and not self.form.errors

    def filter_in_stock(self, queryset, name, value):
        if value == "true":
            return queryset.filter(quantity__gt=0)
        return queryset.filter(quantity=0)


class ItemSearchFilter(filters.SearchFilter):
    """`?search=`: every whitespace-separated term in the name or the description."""

    search_description = "Terms that must each appear in the name or the description."

    def get_search_terms(self, request) -> list[str]:
        """The terms; 400 for a `search` given with none (empty, blanks or commas only)."""
        try:
            terms = super().get_search_terms(request)
        except ValidationError as error:  # e.g. a NUL character, which PostgreSQL refuses
            raise ValidationError({self.search_param: error.detail}) from error
        if not terms and self.search_param in request.query_params:
            raise ValidationError({self.search_param: [EMPTY_VALUE_MESSAGE]})
        return terms

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        parameters[0]["schema"]["pattern"] = r"[^\s,]"  # at least one term
        return parameters


class StableOrderingFilter(filters.OrderingFilter):
    """`?ordering=`: known fields only (400 otherwise), then `id` as the tie-breaker.

    The tie-breaker follows the direction of the first field, so `-price` orders by
    `(-price, -id)`, which the `(price, id)` index serves scanned backwards, and pages
    never repeat or skip an item that shares a value with its neighbour.
    """

    ordering_description = (
        "Comma-separated fields to order by, `-` before a field for descending. Default: id."
    )

    def get_ordering(self, request, queryset, view) -> list[str]:
        param = request.query_params.get(self.ordering_param)
        if param is None:
            return self.get_default_ordering(view)
        if not re.fullmatch(self.pattern(view), param):
            fields = ", ".join(view.ordering_fields)
            message = f"Cannot order by {param!r}: list fields from {fields}, each may take a '-'."
            raise ValidationError({self.ordering_param: [message]})
        ordering = param.split(",")
        if {"id", "-id"} & set(ordering):
            return ordering
        return [*ordering, "-id" if ordering[0].startswith("-") else "id"]

    @staticmethod
    def pattern(view) -> str:
        field = f"-?({'|'.join(view.ordering_fields)})"
        return f"^{field}(,{field})*$"

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        parameters[0]["schema"]["pattern"] = self.pattern(view)
        return parameters
