"""Property-based run of schemathesis against the service's own OpenAPI schema.

Bounded and repeatable: a fixed number of derandomized examples per operation, sent
through the WSGI application to the real PostgreSQL and Redis, with a token so writes
are exercised. Every response must be free of 5xx and conform to the schema.
"""

import warnings

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig

from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 50

# schemathesis's defaults plus 412: a stale If-Match is answered 412 before the body is
# looked at (RFC 9110, 13.2.1), whether the rest of the request is valid or not.
ACCEPTED_WHEN_VALID = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
REJECTED_WHEN_INVALID = [
    *("400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429", "5xx")
]

config = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED_WHEN_VALID},
            "negative_data_rejection": {"expected-statuses": REJECTED_WHEN_INVALID},
        }
    }
)
with warnings.catch_warnings():
    # Built as the tests are collected, before the session collects the static files:
    # whitenoise's notice that STATIC_ROOT does not exist yet. These requests serve none.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    application = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=config)
bounded = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Keep the test's transaction open across requests, as Django's test client does.

    The WSGI handler closes the database connection when a request ends, and with it
    the transaction the test runs in.
    """
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def token_header(db) -> dict[str, str]:
    token = Token.objects.create(user=UserFactory())
    return {"Authorization": f"Token {token.key}"}


@schema.parametrize()
@bounded
def test_every_operation_conforms_to_the_schema(case, token_header):
    case.call_and_validate(headers=token_header)


@schema.include(path_regex=r"\{id\}").parametrize()
@bounded
def test_every_operation_on_an_existing_item_conforms_to_the_schema(case, token_header):
    case.path_parameters["id"] = str(ItemFactory().pk)

    case.call_and_validate(headers=token_header)
