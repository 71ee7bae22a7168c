from rest_framework import serializers

from items.models import Item


class ItemSerializer(serializers.ModelSerializer):
    """An item as the API reads and writes it; `price` is a decimal string."""

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


class ItemReplaceSerializer(ItemSerializer):
    """PUT replaces the whole item, so every writable field is required."""

    class Meta(ItemSerializer.Meta):
        extra_kwargs = {
            "description": {"required": True, "allow_blank": True},
            "quantity": {"required": True},
        }
