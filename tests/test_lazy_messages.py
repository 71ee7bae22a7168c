"""Messages are made only for requests that use them, and the admin's still reach the user."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.base import BaseStorage
from django.utils.functional import empty

from items.models import Item


def test_an_api_read_makes_no_message_storage_and_sets_no_cookie(api_client, item):
    response = api_client.get(f"/api/items/{item.pk}/")

    assert response.status_code == 200
    assert response.wsgi_request._messages._wrapped is empty
    assert "messages" not in response.cookies


@pytest.fixture
def admin_client_logged_in(client, db):
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com"))
    return client


def test_the_admin_shows_its_message_after_a_save(admin_client_logged_in):
    form = {"name": "Lamp", "description": "", "price": "9.50", "quantity": "3"}

    saved = admin_client_logged_in.post("/admin/items/item/add/", form)
    assert saved.status_code == 302, saved.content
    shown = admin_client_logged_in.get(saved["Location"])
    shown_again = admin_client_logged_in.get(saved["Location"])

    assert Item.objects.filter(name="Lamp").exists()
    assert isinstance(shown.wsgi_request._messages, BaseStorage)
    assert "was added successfully" in shown.content.decode()
    assert "was added successfully" not in shown_again.content.decode()  # shown once, then gone
