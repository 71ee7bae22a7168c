"""The Lambda tier's second handler: migrations for a deploy, named commands for operators,
and the secrets the functions are given by ARN (backend/aws_secrets.py)."""

import os

import boto3
import pytest
from botocore.stub import Stubber
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from backend.aws_secrets import load_secrets_given_by_arn
from tests.factories import UserFactory
from tests.lambda_events import load_handler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def manage():
    return load_handler().manage


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_deploy_runs_the_migrations(manage, request_type, monkeypatch):
    migrated = []
    monkeypatch.setattr(
        "backend.lambda_handler.call_command", lambda *args, **kwargs: migrated.append(args)
    )

    answer = manage({"RequestType": request_type, "ResourceProperties": {}}, None)

    assert answer == {"PhysicalResourceId": "items-migrations"}
    assert migrated == [("migrate",)]


def test_a_deploy_migrates_the_real_database(manage):
    answer = manage({"RequestType": "Update", "ResourceProperties": {}}, None)

    assert answer == {"PhysicalResourceId": "items-migrations"}
    listed = manage({"command": ["showmigrations", "items"]}, None)["output"]
    assert "[X] 0001_initial" in listed
    assert "[ ]" not in listed


def test_deleting_the_stack_leaves_the_database_alone(manage, monkeypatch):
    monkeypatch.setattr(
        "backend.lambda_handler.call_command", lambda *args, **kwargs: pytest.fail("ran")
    )

    assert manage({"RequestType": "Delete", "PhysicalResourceId": "items-migrations"}, None) == {
        "PhysicalResourceId": "items-migrations"
    }


def test_an_operator_creates_the_first_admin_and_a_token(manage, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    created = manage(
        {
            "command": [
                "createsuperuser",
                "--noinput",
                "--username",
                "admin",
                "--email",
                "admin@example.com",
            ],
            "environment": {"DJANGO_SUPERUSER_PASSWORD": "a-long-first-password-17"},
        },
        None,
    )
    token = manage({"command": ["drf_create_token", "admin"]}, None)

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("a-long-first-password-17")
    assert "Superuser created successfully" in created["output"]
    assert Token.objects.get(user=admin).key in token["output"]
    assert "DJANGO_SUPERUSER_PASSWORD" not in os.environ


@pytest.mark.parametrize(
    "event",
    [
        {"command": ["shell", "-c", "print(1)"]},
        {"command": ["flush", "--noinput"]},
        {"command": ["migrate", "items", "zero"]},
        {"command": ["createsuperuser"], "environment": {"DATABASE_URL": "sqlite://"}},
        {
            "command": ["createsuperuser", "--noinput"],
            "environment": {
                "DJANGO_SUPERUSER_PASSWORD": "p-1234567890",
                "DJANGO_SUPERUSER_EMAIL": 5,
            },
        },
    ],
    ids=["shell", "flush", "migrate to zero", "other variables", "a value not a string"],
)
def test_nothing_else_can_be_run_or_set(manage, event):
    UserFactory()

    with pytest.raises(ValueError, match=r"not one of|takes no arguments|may be set"):
        manage(event, None)

    assert get_user_model().objects.count() == 1
    assert "DJANGO_SUPERUSER_PASSWORD" not in os.environ


def secrets_manager(responses: dict[str, str]):
    client = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    stubber = Stubber(client)
    for arn, value in responses.items():
        stubber.add_response(
            "get_secret_value", {"ARN": arn, "SecretString": value}, {"SecretId": arn}
        )
    stubber.activate()
    return client, stubber


def test_each_secret_given_by_arn_is_read_once_into_its_variable():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    client, stubber = secrets_manager({arn: '{"host": "db", "username": "items"}'})
    environ = {"DB_SECRET_ARN": arn, "OTHER_ARN": "arn:aws:sns:eu-west-1:1:x"}

    loaded = load_secrets_given_by_arn(environ, client)

    assert loaded == ["DB_SECRET"]
    assert environ["DB_SECRET"] == '{"host": "db", "username": "items"}'
    stubber.assert_no_pending_responses()


def test_a_variable_already_set_wins_and_nothing_is_asked():
    client, stubber = secrets_manager({})
    environ = {"DJANGO_SECRET_KEY_ARN": "arn:aws:...:key", "DJANGO_SECRET_KEY": "local"}

    assert load_secrets_given_by_arn(environ, client) == []
    stubber.assert_no_pending_responses()
    assert environ["DJANGO_SECRET_KEY"] == "local"
