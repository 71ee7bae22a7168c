"""Django's messages, with the storage made only for a request that uses it."""

from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.utils.functional import SimpleLazyObject, empty


class LazyMessageMiddleware(MessageMiddleware):
    """MessageMiddleware whose storage is made when a view first adds or reads a message.

    Only the admin uses messages. Making the storage for every request (Django imports
    the storage class by name and builds its cookie and session backends) cost an API
    cache hit 5 % of its instructions (`make bench-instructions`). A request that never
    touched its messages needs no update either: the storage would find nothing to save.
    """

    def process_request(self, request):
        request._messages = SimpleLazyObject(lambda: default_storage(request))

    def process_response(self, request, response):
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response
        return super().process_response(request, response)
