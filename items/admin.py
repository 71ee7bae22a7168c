from django.contrib import admin

from items.models import Item


class InStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "in_stock"

    def lookups(self, request, model_admin):
        return [("yes", "In stock"), ("no", "Out of stock")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(quantity__gt=0)
        if self.value() == "no":
            return queryset.filter(quantity=0)
        return queryset


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "quantity", "version", "updated_at"]
    list_display_links = ["id", "name"]
    search_fields = ["name", "description"]
    list_filter = [InStockFilter, "updated_at", "created_at"]
    readonly_fields = ["version", "created_at", "updated_at"]
    fields = ["name", "description", "price", "quantity", *readonly_fields]
    list_per_page = 50
    ordering = ["-updated_at", "-id"]
    date_hierarchy = "updated_at"
