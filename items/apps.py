from django.apps import AppConfig


class ItemsConfig(AppConfig):
    name = "items"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from items import signals  # noqa: F401  (connects the cache invalidation receivers)
