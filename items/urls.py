from rest_framework.routers import DefaultRouter

from items.views import ItemViewSet

router = DefaultRouter()
router.register("items", ItemViewSet, basename="item")

# An item's route first (Django tries patterns in order): item reads are most of the
# traffic, and DefaultRouter puts its API root and the item list before it.
urlpatterns = sorted(router.urls, key=lambda pattern: pattern.name != "item-detail")
