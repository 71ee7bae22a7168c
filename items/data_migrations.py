"""For data migrations (RunPython) that change items: see docs/caching.md, "Data migrations".

A historical model (`apps.get_model("items", "Item")`) has a plain manager and is not
the model the cache's receivers listen to, so nothing there bumps `version`.
"""

from django.db.models import F
from django.utils import timezone


def update_items(queryset, **fields) -> int:
    """`queryset.update(**fields)`, also bumping `version` and `updated_at`; return the count.

    Without the bump a changed row keeps its ETag: a client revalidating gets 304 and
    keeps the old body, and an If-Match with the old ETag overwrites the change.
    """
    return queryset.update(**fields, version=F("version") + 1, updated_at=timezone.now())
