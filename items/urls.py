from rest_framework.routers import DefaultRouter

from items.views import ItemViewSet

router = DefaultRouter()
router.register("items", ItemViewSet, basename="item")

urlpatterns = router.urls
