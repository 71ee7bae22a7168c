"""Production settings built from the environment the Copilot manifest gives a task.

The environment is assembled from copilot/api/manifest.yml itself: its plain variables, the
values its `from_cfn` imports resolve to (an ElastiCache endpoint), and its secrets as ECS
injects them (the Aurora secret as a JSON document, the AUTH token as a plain string).
"""

import json
import os
import subprocess
import sys
from http import HTTPStatus

import pytest

from tests.copilot.workspace import (
    EXPORT_PREFIX_IN_MANIFEST,
    PROJECT_ROOT,
    interpolated_variables,
    workload_manifest,
)

DB_SECRET = {
    "host": "items-test-dbcluster.cluster-c1x2y3z4.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "items",
    "username": "items_admin",
    "password": "Gz7kQ2vN9xR4tY8wL3mB6pH1sD5fJ0cA",
    "engine": "postgres",
    "dbClusterIdentifier": "items-test-dbcluster",
}
REDIS_HOST = "master.items-test-cache.abc123.euw1.cache.amazonaws.com"
REDIS_AUTH_TOKEN = "T0kenWithoutPunctuation0123456789abcdefABCDEF"
DJANGO_SECRET_KEY = "k" * 64
SHELL = {"COPILOT_APPLICATION_NAME": "items"}
LOAD_BALANCER_DNS = "items-Publi-1A2B3C4D5E6F-123456789.eu-west-1.elb.amazonaws.com"

# What each export resolves to once the environment's addons are deployed.
RESOLVED_EXPORTS = {
    "RedisHost": REDIS_HOST,
    "RedisPort": "6379",
    "DBSecret": json.dumps(DB_SECRET),
    "RedisAuthToken": REDIS_AUTH_TOKEN,
    "DjangoSecretKey": DJANGO_SECRET_KEY,
}
PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "DATABASES": settings.DATABASES,
    "CACHES": settings.CACHES,
}, default=str))
"""


def resolve(value) -> str:
    """A manifest value as the task sees it."""
    if isinstance(value, dict):
        return RESOLVED_EXPORTS[value["from_cfn"].removeprefix(EXPORT_PREFIX_IN_MANIFEST)]
    for name in interpolated_variables(value):
        value = value.replace(f"${{{name}}}", SHELL[name])
    return value


def task_environment(environment: str) -> dict[str, str]:
    manifest = workload_manifest("api")
    override = manifest["environments"][environment]
    entries = {
        **manifest["variables"],
        **override.get("variables", {}),
        **manifest["secrets"],
        **override.get("secrets", {}),
    }
    return {name: resolve(value) for name, value in entries.items()}


def load_balanced_task_environment(environment: str) -> dict[str, str]:
    """The task's environment with what Copilot adds to a Load Balanced Web Service's."""
    return {**task_environment(environment), "COPILOT_LB_DNS": LOAD_BALANCER_DNS}


def production_settings(environment: dict[str, str]) -> dict:
    """Import backend.settings in a fresh process that sees only `environment`."""
    result = load_settings(environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def load_settings(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            **environment,
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_the_copilot_environment_builds_postgres_over_tls_and_rediss(environment):
    settings = production_settings(task_environment(environment))

    assert settings["DEBUG"] is False
    assert settings["DATABASES"]["default"] == {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": DB_SECRET["host"],
        "PORT": "5432",
        "NAME": "items",
        "USER": "items_admin",
        "PASSWORD": DB_SECRET["password"],
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "connect_timeout": 5,
            "options": "-c statement_timeout=5000",
            "sslmode": "require",
        },
    }
    cache = settings["CACHES"]["default"]
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == f"rediss://:{REDIS_AUTH_TOKEN}@{REDIS_HOST}:6379/0"
    assert cache["KEY_PREFIX"] == "items-api"


@pytest.mark.parametrize(
    ("environment", "hosts"),
    [("test", [LOAD_BALANCER_DNS]), ("prod", ["api.example.com", LOAD_BALANCER_DNS])],
)
def test_each_environment_allows_exactly_its_own_host_names(environment, hosts):
    """The load balancer's name is the one Copilot gives the task; prod adds its alias."""
    settings = production_settings(load_balanced_task_environment(environment))

    assert settings["ALLOWED_HOSTS"] == hosts


@pytest.mark.django_db
def test_another_load_balancers_name_is_refused(client, settings):
    settings.ALLOWED_HOSTS = production_settings(load_balanced_task_environment("test"))[
        "ALLOWED_HOSTS"
    ]
    other = "attacker-1234567890.eu-west-1.elb.amazonaws.com"

    own = client.get("/api/items/", HTTP_HOST=LOAD_BALANCER_DNS)
    refused = client.get("/api/items/", HTTP_HOST=other)

    assert (own.status_code, refused.status_code) == (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)


def test_without_the_database_secret_production_refuses_to_start_naming_the_variables():
    """A task missing DB_SECRET stops instead of serving a SQLite file of its own."""
    environment = task_environment("prod")
    del environment["DB_SECRET"]

    result = load_settings(environment)

    assert result.returncode != 0
    assert "ImproperlyConfigured: No database is configured: set DATABASE_URL" in result.stderr
    assert "or DB_SECRET" in result.stderr


def test_the_migration_job_environment_reaches_the_same_database_without_a_statement_limit():
    job = workload_manifest("migrate")
    environment = {
        name: resolve(value) for name, value in {**job["variables"], **job["secrets"]}.items()
    }

    database = production_settings(environment)["DATABASES"]["default"]

    assert (database["HOST"], database["NAME"], database["USER"]) == (
        DB_SECRET["host"],
        "items",
        "items_admin",
    )
    assert database["OPTIONS"]["options"] == "-c statement_timeout=0"
    assert database["OPTIONS"]["sslmode"] == "require"
