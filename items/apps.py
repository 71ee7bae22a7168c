from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ItemsConfig(AppConfig):
    name = "items"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from items import signals  # connects the cache invalidation receivers

        post_migrate.connect(
            signals.invalidate_after_migrate, sender=self, dispatch_uid="items.after_migrate"
        )
