"""Fields accept exactly the JSON types the OpenAPI schema documents (found by schemathesis)."""

from http import HTTPStatus
from urllib.parse import quote

import pytest

from items.models import Item

pytestmark = pytest.mark.django_db

LIST_URL = "/api/items/"
VALID = {"name": "Lamp", "description": "", "price": "19.99", "quantity": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 12),
        ("description", 0),
        ("price", 19.99),
        ("price", 1),
        ("price", ""),
        ("price", "-5"),
        ("price", "1e2"),
        ("price", " 1.50"),
        ("price", "1."),
        ("price", "\u0663"),  # an Arabic-Indic digit, which Decimal would accept
        ("quantity", "3"),
        ("quantity", 3.0),
        ("quantity", True),
        ("name", "nul\x00byte"),
        ("description", "nul\x00byte"),
        ("name", " " * 10 + "x" * 195),  # 205 as sent, though 195 once trimmed
    ],
)
def test_a_value_of_another_json_type_or_form_is_400(auth_client, field, value):
    response = auth_client.post(LIST_URL, {**VALID, field: value}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert list(response.json()["errors"]) == [field]
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    ("price", "stored"), [("0", "0.00"), ("7.5", "7.50"), ("99999999.99", None)]
)
def test_a_price_string_within_the_pattern_is_accepted(auth_client, price, stored):
    response = auth_client.post(LIST_URL, {**VALID, "price": price}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["price"] == (stored or price)


def test_the_schema_states_the_price_pattern_it_enforces(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert schema["components"]["schemas"]["ItemRequest"]["properties"]["price"] == {
        "type": "string",
        "format": "decimal",
        "pattern": r"^[0-9]{1,8}(\.[0-9]{1,2})?$",
        "example": "19.99",
    }


def test_a_name_of_200_characters_with_surrounding_spaces_trimmed_is_accepted(auth_client):
    response = auth_client.post(LIST_URL, {**VALID, "name": " " + "x" * 198 + " "}, format="json")

    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["name"] == "x" * 198


def test_an_empty_description_is_accepted(auth_client):
    response = auth_client.post(LIST_URL, {**VALID, "description": ""}, format="json")

    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("page", ["", "abc", "0", "last", "\u0661", "+1", " 1"])
def test_an_invalid_page_is_404(api_client, page):
    response = api_client.get(LIST_URL, {"page": page})

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("zero", ["\u0660", "\uff10"], ids=["arabic-indic", "fullwidth"])
def test_an_item_id_in_other_digits_than_ascii_is_404(api_client, item, zero):
    """Python's int() reads "\u0661" as 1: the item's id in such digits must not find it."""
    other_digits = str(item.pk).translate({ord("0") + n: ord(zero) + n for n in range(10)})

    response = api_client.get(f"{LIST_URL}{quote(other_digits)}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "not_found"
