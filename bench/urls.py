"""The service's URLs plus the framework floor: the cheapest Django view there is."""

from django.http import JsonResponse
from django.urls import path

from backend.urls import handler400, handler403, handler404, handler500  # noqa: F401
from backend.urls import urlpatterns as service_urlpatterns


def floor(request, item_id: int):
    return JsonResponse({"id": item_id, "name": "floor"})


urlpatterns = [path("bench/floor/<int:item_id>/", floor), *service_urlpatterns]
