"""Any string in any query parameter of the item list is answered, never with a 5xx.

hypothesis throws numbers at their extremes, exponents, NaN and infinities, signs,
digits of other scripts, date-times out of range, huge and empty strings at every
filter, ordering and pagination parameter, against the real PostgreSQL.
"""

from http import HTTPStatus

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/items/"
PARAMETERS = [
    "min_price",
    "max_price",
    "in_stock",
    "updated_since",
    "search",
    "ordering",
    "page",
    "page_size",
]

# Text a URL can carry: no lone surrogates, which a client cannot encode as UTF-8.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
other_script_digits = st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=12)
signs = st.sampled_from(["", "+", "-", "--", "+-", "\u2212"])  # the last: a minus sign


@st.composite
def numbers(draw) -> str:
    mantissa = draw(
        st.one_of(
            st.integers().map(str),
            st.decimals(allow_nan=False, allow_infinity=False).map(str),
            st.floats().map(repr),
            other_script_digits,
            st.sampled_from(["0", "0.0", ".5", "5.", "1_000", "0x10", "1,5", " 7 "]),
        )
    )
    exponent = draw(
        st.one_of(
            st.just(""),
            st.integers(-(10**20), 10**20).map(lambda e: f"e{e}"),
            st.sampled_from(["e", "E+", "e-0", "e99999999999999999999999"]),
        )
    )
    return draw(signs) + mantissa + exponent


special_numbers = st.sampled_from(
    [
        "NaN",
        "-nan",
        "sNaN",
        "nan123",
        "Infinity",
        "-Infinity",
        "inf",
        "-inf",
        "1e-20000",
        "-1e-20000",
        "1e-999999999999999999",
        "1e999999999999999999",
        "9" * 5000,
        "0." + "0" * 5000 + "1",
        "1" + "0" * 400,
    ]
)


@st.composite
def date_times(draw) -> str:
    digits = st.one_of(st.integers(0, 10**6).map(str), other_script_digits)
    date = "-".join(draw(digits) for _ in range(3))
    time = ":".join(draw(digits) for _ in range(draw(st.integers(0, 3))))
    offset = draw(st.one_of(st.just(""), st.just("Z"), st.builds("{}{}".format, signs, digits)))
    return f"{date}T{time}{offset}" if time else date


values = st.one_of(
    numbers(),
    special_numbers,
    date_times(),
    st.datetimes().map(lambda moment: moment.isoformat()),
    any_text,
    st.sampled_from(["", " ", "\x00", ",", "-", "true", "false", "price,-id", "-" * 3000]),
    st.integers(1, 5000).map(lambda length: "1" * length),
)


def assert_answered(response, parameter: str):
    """2xx; or 400 naming the parameter; or, for `page`, the 404 DRF gives an invalid page."""
    status = response.status_code
    if status == HTTPStatus.BAD_REQUEST:
        assert parameter in response.json()["errors"], response.content
    elif status == HTTPStatus.NOT_FOUND:
        assert parameter == "page", response.content
    else:
        assert HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES, response.content


@pytest.fixture
def items(db):
    return ItemFactory.create_batch(3)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parameter=st.sampled_from(PARAMETERS), value=values)
@example(parameter="min_price", value="1e-20000")
@example(parameter="max_price", value="-1e-20000")
@example(parameter="page_size", value="9" * 5000)
@example(parameter="page", value="9" * 5000)
def test_any_value_of_any_list_parameter_is_answered_without_a_server_error(
    api_client, items, parameter, value
):
    with transaction.atomic():  # a database error fails this example, not those after it
        response = api_client.get(LIST_URL, {parameter: value})

    assert_answered(response, parameter)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(low=st.one_of(numbers(), special_numbers), high=st.one_of(numbers(), special_numbers))
def test_any_pair_of_price_bounds_is_answered_without_a_server_error(api_client, items, low, high):
    with transaction.atomic():
        response = api_client.get(LIST_URL, {"min_price": low, "max_price": high})

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST), response.content
