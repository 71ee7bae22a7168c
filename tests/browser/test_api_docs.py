"""Swagger UI and Redoc, served from this service's own assets, working in Chromium."""

import json

import pytest
from playwright.sync_api import Locator, Page, expect
from rest_framework.authtoken.models import Token

from items.models import Item
from items.serializers import ItemSerializer
from tests.factories import ItemFactory

pytestmark = pytest.mark.browser

ITEM_OPERATIONS = {
    "items_list": ("GET", "/api/items/"),
    "items_create": ("POST", "/api/items/"),
    "items_retrieve": ("GET", "/api/items/{id}/"),
    "items_update": ("PUT", "/api/items/{id}/"),
    "items_partial_update": ("PATCH", "/api/items/{id}/"),
    "items_destroy": ("DELETE", "/api/items/{id}/"),
}


def open_swagger_ui(page: Page) -> Page:
    page.goto("/api/docs/")
    page.locator(".opblock").first.wait_for()
    return page


def try_out(page: Page, operation_id: str, body: dict | None = None) -> Locator:
    """Run an operation with "Try it out" and return the block showing the live response."""
    operation = page.locator(f"#operations-items-{operation_id}")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    if body is not None:
        operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.get_by_role("button", name="Execute").click()
    response = operation.locator(".live-responses-table .response")
    response.wait_for()
    return response


def response_body(response: Locator) -> dict:
    return json.loads(response.locator(".response-col_description pre").first.inner_text())


def test_swagger_ui_renders_every_item_operation(page, readme_screenshot):
    open_swagger_ui(page)

    rendered = page.locator(".opblock").evaluate_all(
        """blocks => blocks.map(block => [
            block.id,
            block.querySelector('.opblock-summary-method').textContent,
            block.querySelector('.opblock-summary-path').dataset.path,
        ])"""
    )
    assert {operation: (method, path) for operation, method, path in rendered} == {
        f"operations-items-{operation}": method_and_path
        for operation, method_and_path in ITEM_OPERATIONS.items()
    }
    readme_screenshot("swagger-ui")


def test_try_it_out_on_the_list_returns_the_items_in_the_page(page):
    item = ItemFactory()
    open_swagger_ui(page)

    response = try_out(page, "items_list")

    expect(response.locator(".response-col_status")).to_have_text("200")
    assert response_body(response) == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [ItemSerializer(item).data],
    }


def test_write_succeeds_with_the_token_entered_in_the_authorize_dialog(page, admin_user):
    token = Token.objects.create(user=admin_user)
    open_swagger_ui(page)

    page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
    token_form = page.locator(".auth-container").filter(has_text="tokenAuth")
    # Both schemes' inputs share one id, so the label cannot tell them apart.
    token_form.get_by_role("textbox").fill(f"Token {token.key}")
    token_form.get_by_role("button", name="Apply credentials").click()
    expect(token_form.get_by_role("button", name="Remove authorization")).to_be_visible()
    page.get_by_role("button", name="Close").first.click()
    response = try_out(
        page,
        "items_create",
        {"name": "Lamp", "description": "Desk lamp", "price": "19.99", "quantity": 3},
    )

    expect(response.locator(".response-col_status")).to_have_text("201")
    created = Item.objects.get()
    assert response_body(response) == ItemSerializer(created).data
    assert (created.name, str(created.price), created.quantity) == ("Lamp", "19.99", 3)


def test_write_without_the_token_is_refused_in_the_page(page):
    open_swagger_ui(page)

    response = try_out(page, "items_create", {"name": "Lamp", "price": "19.99"})

    expect(response.locator(".response-col_status")).to_have_text("401")
    assert not Item.objects.exists()


def test_redoc_renders_every_item_operation(page):
    page.goto("/api/redoc/")

    expect(page.get_by_role("heading", name="Items API")).to_be_visible()
    sections = page.locator("[data-section-id^='operation/']")
    expect(sections).to_have_count(len(ITEM_OPERATIONS))
    rendered = sections.evaluate_all("els => els.map(el => el.dataset.sectionId)")
    assert sorted(rendered) == sorted(f"operation/{operation}" for operation in ITEM_OPERATIONS)


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        (
            "/admin/login/",
            {"admin/css/base.css", "admin/css/login.css"},
        ),
        (
            "/api/docs/",
            {
                "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
                "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
            },
        ),
        ("/api/redoc/", {"drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"}),
    ],
)
def test_pages_load_their_static_assets_from_the_live_server(page, traffic, path, assets):
    page.goto(path, wait_until="networkidle")

    loaded = {
        asset.removeprefix("/static/")
        for asset, status in traffic.static_responses.items()
        if status == 200
    }
    assert assets <= loaded
