import re

from django.core.validators import RegexValidator
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from items.models import Item

# Up to 8 whole digits and 2 decimals: 0.00 to 99999999.99, the range Item.price allows.
PRICE_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"

# The text patterns state in the schema what validation already enforces: PostgreSQL text
# holds no NUL character, and a name is trimmed, so it needs one visible character. Each
# is unambiguous, so matching stays linear in the length of the text. An empty description
# is accepted before validators run; `+` keeps the schema's "pattern or empty" exclusive.
TEXT_PATTERN = r"^[^\x00]+$"
TEXT_MESSAGE = "Text cannot contain the NUL character."
NAME_PATTERN = r"^\s*[^\s\x00][^\x00]*$"
NAME_MESSAGE = "Give a name with a visible character and no NUL character."


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": PRICE_PATTERN, "example": "19.99"}
)
class PriceField(serializers.DecimalField):
    """Money as the API documents it: a JSON string such as "19.99", never a float.

    A JSON number may already have lost its exact value in the client's float parsing,
    and the accepted input is exactly what the schema's pattern describes.
    """

    default_error_messages = {
        "invalid": 'Give a string from "0.00" to "99999999.99", with at most 2 decimals.'
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(PRICE_PATTERN, data):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONStringField(serializers.CharField):
    """A text field that takes only JSON strings; DRF alone would turn 12 into "12".

    `max_length` counts the string as sent, as the schema's maxLength does, not what is
    left after trimming.
    """

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class JSONIntegerField(serializers.IntegerField):
    """An integer field that takes only JSON integers; DRF alone would take "12" and 12.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ItemSerializer(serializers.ModelSerializer):
    """An item as the API reads and writes it; `price` is a decimal string.

    Each field accepts exactly the JSON type the OpenAPI schema gives it.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: JSONStringField,
        models.TextField: JSONStringField,
        models.PositiveIntegerField: JSONIntegerField,
    }
    price = PriceField(max_digits=10, decimal_places=2)

    class Meta:
        model = Item
        fields = [
            "id",
            "name",
            "description",
            "price",
            "quantity",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {
            "name": {"validators": [RegexValidator(NAME_PATTERN, NAME_MESSAGE)]},
            "description": {"validators": [RegexValidator(TEXT_PATTERN, TEXT_MESSAGE)]},
        }

    def update(self, instance: Item, validated_data: dict) -> Item:
        """Write the validated fields; a PATCH writes only those.

        The view read the item earlier; writing every field would put back another
        client's change to the rest, made since. `Item.save()` reads those fields
        again when the row changed since, so the response shows exactly the version
        written.
        """
        if not self.partial:
            return super().update(instance, validated_data)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        instance.save(update_fields=list(validated_data))
        return instance


class ItemReplaceSerializer(ItemSerializer):
    """PUT replaces the whole item, so every writable field is required."""

    class Meta(ItemSerializer.Meta):
        extra_kwargs = {
            **ItemSerializer.Meta.extra_kwargs,
            "description": {
                **ItemSerializer.Meta.extra_kwargs["description"],
                "required": True,
                "allow_blank": True,
            },
            "quantity": {"required": True},
        }
