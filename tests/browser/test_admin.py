"""Django admin in Chromium: the daily flow, the changelist and the change form."""

from decimal import Decimal
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import Locator, Page, expect

from items.models import Item
from items.serializers import ItemSerializer
from tests.factories import ItemFactory

CHANGELIST_URL = "/admin/items/item/"


@pytest.fixture
def catalogue(transactional_db) -> dict[str, Item]:
    """A few items with names worth searching and both stock states."""
    rows = [
        ("Desk lamp", "Adjustable LED lamp", "19.99", 3),
        ("Floor lamp", "Arc lamp with marble base", "49.00", 0),
        ("Office chair", "Mesh back, adjustable arms", "129.00", 12),
        ("Bookshelf", "Five oak shelves", "89.50", 2),
        ("Standing desk", "Electric, two motors", "399.00", 0),
    ]
    return {
        name: ItemFactory(name=name, description=description, price=Decimal(price), quantity=qty)
        for name, description, price, qty in rows
    }


def listed_names(page: Page) -> Locator:
    """The name column of the changelist, for `expect(...).to_have_text([...])`."""
    return page.locator("#result_list tbody .field-name")


def open_change_form(page: Page, name: str) -> None:
    page.goto(CHANGELIST_URL)
    page.locator("#result_list").get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", name="Change item").wait_for()


@pytest.mark.browser
def test_admin_adds_an_item(admin_page):
    admin_page.locator("#items-item").get_by_role("link", name="Items").click()
    admin_page.get_by_role("link", name="Add item").click()
    admin_page.get_by_role("heading", name="Add item").wait_for()  # the form, not the list
    admin_page.get_by_label("Name").fill("Desk lamp")
    admin_page.get_by_label("Description").fill("Adjustable LED lamp")
    admin_page.get_by_label("Price").fill("19.99")
    admin_page.get_by_label("Quantity").fill("3")
    admin_page.get_by_role("button", name="Save", exact=True).click()

    expect(admin_page.locator(".messagelist")).to_have_text(
        "The item “Desk lamp” was added successfully."
    )
    assert list(Item.objects.values("name", "description", "price", "quantity", "version")) == [
        {
            "name": "Desk lamp",
            "description": "Adjustable LED lamp",
            "price": Decimal("19.99"),
            "quantity": 3,
            "version": 1,
        }
    ]
    expect(listed_names(admin_page)).to_have_text(["Desk lamp"])


@pytest.mark.browser
def test_admin_finds_items_by_search_and_stock_filter(admin_page, catalogue):
    admin_page.goto(CHANGELIST_URL)

    admin_page.locator("#searchbar").fill("lamp")
    admin_page.get_by_role("button", name="Search").click()
    expect(listed_names(admin_page)).to_have_text(["Floor lamp", "Desk lamp"])

    admin_page.locator("#changelist-filter").get_by_role("link", name="In stock").click()
    expect(listed_names(admin_page)).to_have_text(["Desk lamp"])
    expect(admin_page.locator("#searchbar")).to_have_value("lamp")


@pytest.mark.browser
def test_price_edited_in_the_admin_is_served_by_the_api_at_once(
    admin_page, catalogue, readme_screenshot
):
    lamp = catalogue["Desk lamp"]
    api_url = f"/api/items/{lamp.pk}/"
    # Read first, so a read cache holds the old price when the admin writes.
    assert admin_page.request.get(api_url).json()["price"] == "19.99"

    open_change_form(admin_page, "Desk lamp")
    admin_page.get_by_label("Price").fill("24.50")
    admin_page.get_by_role("button", name="Save", exact=True).click()
    expect(admin_page.locator(".messagelist")).to_have_text(
        "The item “Desk lamp” was changed successfully."
    )
    readme_screenshot("admin")

    response = admin_page.request.get(api_url)
    assert response.status == HTTPStatus.OK
    body = response.json()
    assert (body["price"], body["version"]) == ("24.50", 2)
    assert body == ItemSerializer(Item.objects.get(pk=lamp.pk)).data


@pytest.mark.browser
def test_admin_deletes_an_item(admin_page, catalogue):
    floor_lamp = catalogue["Floor lamp"]

    open_change_form(admin_page, "Floor lamp")
    admin_page.get_by_role("link", name="Delete").click()
    admin_page.get_by_role("button", name="Yes, I\N{RIGHT SINGLE QUOTATION MARK}m sure").click()

    expect(admin_page.locator(".messagelist")).to_have_text(
        "The item “Floor lamp” was deleted successfully."
    )
    expect(listed_names(admin_page)).to_have_text(
        ["Standing desk", "Bookshelf", "Office chair", "Desk lamp"]
    )
    assert not Item.objects.filter(pk=floor_lamp.pk).exists()
    assert admin_page.request.get(f"/api/items/{floor_lamp.pk}/").status == HTTPStatus.NOT_FOUND


@pytest.mark.browser
def test_changelist_shows_the_item_columns_and_paginates(admin_page):
    ItemFactory.create_batch(51)

    admin_page.goto(CHANGELIST_URL)

    headers = admin_page.locator("#result_list thead th .text").all_text_contents()
    assert [header.strip() for header in headers] == [
        "",
        "ID",
        "Name",
        "Price",
        "Quantity",
        "Version",
        "Updated at",
    ]
    expect(admin_page.locator("#result_list tbody tr")).to_have_count(50)
    expect(admin_page.locator(".paginator")).to_contain_text("51 items")
    admin_page.locator(".paginator").get_by_role("link", name="2").click()
    expect(admin_page.locator("#result_list tbody tr")).to_have_count(1)


@pytest.mark.browser
def test_change_form_shows_system_fields_read_only(admin_page, catalogue):
    open_change_form(admin_page, "Desk lamp")

    form = admin_page.locator("#item_form")
    editable = form.locator("input:not([type=hidden]):not([type=submit]), textarea, select")
    assert editable.evaluate_all("fields => fields.map(field => field.name)") == [
        "name",
        "description",
        "price",
        "quantity",
    ]
    read_only_rows = form.locator(".form-row:has(.readonly)")
    assert [label.strip() for label in read_only_rows.locator("label").all_inner_texts()] == [
        "Version:",
        "Created at:",
        "Updated at:",
    ]
    expect(read_only_rows.first.locator(".readonly")).to_have_text("1")


def changelist_query_count(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST_URL)
    assert response.status_code == HTTPStatus.OK
    return len(queries)


def test_changelist_query_count_does_not_grow_with_its_rows(admin_client):
    """The page costs the same queries for one row as for a full page: none per row."""
    ItemFactory()
    changelist_query_count(admin_client)  # fills per-process caches (content types, session)
    one_row = changelist_query_count(admin_client)

    ItemFactory.create_batch(49)

    assert changelist_query_count(admin_client) == one_row
