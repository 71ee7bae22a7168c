"""The Copilot manifests: valid for their type, and consistent with the code they deploy."""

import os
import re
import runpy
from http import HTTPStatus
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from backend.health import LIVENESS_PATH
from tests.copilot.schemas import FARGATE_MEMORY_BY_CPU, SCHEMA_BY_TYPE
from tests.copilot.workspace import (
    COPILOT_DIR,
    ENVIRONMENTS,
    PREDEFINED_MANIFEST_VARIABLES,
    PROJECT_ROOT,
    WORKLOADS,
    environment_manifest,
    interpolated_variables,
    load_yaml,
    manifest_paths,
    workload_manifest,
)

# What production settings cannot do without (backend/settings.py, backend/connections.py):
# the signing key, the host names, the database secret with TLS, and the cache endpoint
# with its token. Everything else has a production-safe default.
PRODUCTION_REQUIRED = {
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DB_SECRET",
    "DB_SSLMODE",
    "REDIS_HOST",
    "REDIS_AUTH_TOKEN",
}
MIGRATION_REQUIRED = {"DJANGO_SECRET_KEY", "DB_SECRET", "DB_SSLMODE"}
CODE_READING_THE_ENVIRONMENT = [
    *sorted((PROJECT_ROOT / "backend").glob("**/*.py")),
    PROJECT_ROOT / "gunicorn.conf.py",
]
# env.str("NAME"...), env.int(...), os.environ.get("NAME"...), gunicorn.conf.py's _int("NAME"...);
# not a WSGI `environ.get(...)`, which reads the request.
ENVIRONMENT_READ = re.compile(
    r"(?:\benv\.\w+|\bos\.environ\.get|\b_int|\bthrottle_rate)\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"
)
# Variables the code reads that the service's manifest leaves unset, on purpose.
LEFT_UNSET_IN_THE_SERVICE = {
    "DATABASE_URL": "DB_SECRET describes the database on AWS",
    "REDIS_URL": "REDIS_HOST, REDIS_PORT and REDIS_AUTH_TOKEN describe the cache on AWS",
    "DB_SSLROOTCERT": "only for DB_SSLMODE=verify-full, which needs the RDS CA bundle in the image",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "the load balancer's X-Forwarded-Proto, the default",
    "API_CLIENT_IP_HEADER": "behind the load balancer alone, X-Forwarded-For (API_NUM_PROXIES)",
    "DJANGO_HOST_HEADER": "behind the load balancer alone, Host is the name the client asked for",
    "DB_HOST": "the secret's host, Aurora's writer; only a proxy in front of it needs another",
    "PORT": "the Dockerfile sets it, to the manifest's image.port (checked above)",
    "DJANGO_STATIC_ROOT": "the Dockerfile sets it to where collectstatic ran",
    "DJANGO_READ_DOT_ENV_FILE": "off unless manage.py turns it on; the image holds no .env",
    "DJANGO_ALLOW_NO_DATABASE": "only the image build's collectstatic runs without a database",
    "COPILOT_ENVIRONMENT_NAME": "Copilot injects it into every task",
    "COPILOT_LB_DNS": "Copilot injects it into a Load Balanced Web Service's tasks",
    "METRICS_ENVIRONMENT": "defaults to COPILOT_ENVIRONMENT_NAME",
    "DJANGO_SECURE_HSTS_PRELOAD": "a commitment for the whole domain, for its owner to make",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "only cross-origin form posts need it, once there is a domain",
    "FORWARDED_ALLOW_IPS": "any peer may be trusted: only the load balancer reaches a task",
    "GUNICORN_GRACEFUL_TIMEOUT": "gunicorn.conf.py sets it against the load balancer's timings",
    "GUNICORN_KEEPALIVE": "gunicorn.conf.py sets it against the load balancer's idle timeout",
    "GUNICORN_MAX_REQUESTS": "gunicorn.conf.py's worker recycling suits any size",
    "GUNICORN_MAX_REQUESTS_JITTER": "gunicorn.conf.py's worker recycling suits any size",
}


def variables_read_by_the_code() -> set[str]:
    return {
        name
        for path in CODE_READING_THE_ENVIRONMENT
        for name in ENVIRONMENT_READ.findall(path.read_text())
    }


PRIVATE_IP = "10.0.37.142"
LOAD_BALANCER_DNS = "items-Publi-1A2B3C4D5E6F-123456789.eu-west-1.elb.amazonaws.com"


def environment_names(manifest: dict) -> set[str]:
    """Every variable or secret a workload gets, in any environment."""
    names = set()
    for block in [manifest, *manifest.get("environments", {}).values()]:
        names |= set(block.get("variables") or {}) | set(block.get("secrets") or {})
    return names


def per_environment(manifest: dict, environment: str) -> dict:
    """The manifest as Copilot resolves it for one environment: maps merge, values replace."""
    return deep_merge(manifest, manifest.get("environments", {}).get(environment, {}))


def allowed_hosts(variables: dict) -> list[str]:
    """DJANGO_ALLOWED_HOSTS as the settings split it; COPILOT_LB_DNS comes on top."""
    return [host for host in variables.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host]


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = deep_merge(base[key], value)
        else:
            merged[key] = value
    return merged


@pytest.mark.parametrize("path", manifest_paths(), ids=lambda p: str(p.relative_to(COPILOT_DIR)))
def test_every_manifest_has_only_fields_and_types_copilot_accepts_for_its_type(path):
    manifest = load_yaml(path)
    validator = Draft202012Validator(SCHEMA_BY_TYPE[manifest["type"]])

    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]

    assert errors == []


def test_manifests_are_read_as_yaml_1_2_so_the_job_trigger_stays_on():
    text = (COPILOT_DIR / "migrate" / "manifest.yml").read_text()

    assert workload_manifest("migrate")["on"] == {"schedule": "none"}
    # The YAML 1.1 reading a PyYAML-based check would silently validate instead:
    assert True in yaml.safe_load(text)


def test_the_workspace_names_the_application():
    workspace = load_yaml(COPILOT_DIR / ".workspace")

    assert re.fullmatch(r"[a-z][a-z0-9-]{0,28}", workspace["application"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_is_named_after_its_folder_with_container_insights_on(environment):
    manifest = environment_manifest(environment)

    assert (manifest["name"], manifest["type"]) == (environment, "Environment")
    assert manifest["observability"]["container_insights"] is True


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_task_size_is_one_fargate_runs(workload, environment):
    resolved = per_environment(workload_manifest(workload), environment)

    assert resolved["memory"] in FARGATE_MEMORY_BY_CPU[resolved["cpu"]]


def test_workload_names_match_their_folders():
    assert [workload_manifest(name)["name"] for name in WORKLOADS] == list(WORKLOADS)


def test_prod_runs_more_and_larger_tasks_than_test():
    api = workload_manifest("api")
    test, prod = api["environments"]["test"], api["environments"]["prod"]

    assert prod["cpu"] > test["cpu"]
    assert prod["memory"] > test["memory"]
    assert int(prod["count"]["range"].split("-")[0]) > int(test["count"]["range"].split("-")[0])


def test_the_service_runs_in_private_subnets_with_exec_and_rolling_deploys():
    api = workload_manifest("api")

    assert api["network"]["vpc"]["placement"] == "private"
    assert api["exec"] is True
    assert api["deployment"]["rolling"] == "default"


def test_the_container_port_is_gunicorns_bind_and_the_dockerfiles_expose(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    gunicorn = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    exposed = re.findall(r"^EXPOSE\s+(\d+)", (PROJECT_ROOT / "Dockerfile").read_text(), re.M)

    port = workload_manifest("api")["image"]["port"]

    assert gunicorn["bind"] == f"0.0.0.0:{port}"
    assert exposed == [str(port)]


def test_the_container_health_check_runs_the_images_own_probe_of_the_liveness_path():
    command = workload_manifest("api")["image"]["healthcheck"]["command"]
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    probe = PROJECT_ROOT / "bin" / Path(command[1]).name

    assert command == ["CMD", "/app/bin/healthcheck"]
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M)
    assert os.access(probe, os.X_OK)
    assert LIVENESS_PATH in probe.read_text()


def test_the_health_check_probes_the_liveness_path():
    assert workload_manifest("api")["http"]["healthcheck"]["path"] == LIVENESS_PATH


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_health_check_path_answers_200_to_a_private_ip_host(client, settings, environment):
    api = per_environment(workload_manifest("api"), environment)
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*allowed_hosts(api["variables"]), LOAD_BALANCER_DNS]
    settings.SECURE_SSL_REDIRECT = api["variables"]["DJANGO_SECURE_SSL_REDIRECT"] == "true"

    health = client.get(api["http"]["healthcheck"]["path"], HTTP_HOST=PRIVATE_IP)
    # The same Host anywhere else is refused: only the health path is exempt.
    elsewhere = client.get("/api/docs/", HTTP_HOST=PRIVATE_IP)

    assert health.status_code == HTTPStatus.OK
    assert elsewhere.status_code == HTTPStatus.BAD_REQUEST


def test_the_grace_period_and_deregistration_delay_outlast_gunicorns_graceful_timeout():
    gunicorn = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    http = workload_manifest("api")["http"]

    assert int(http["deregistration_delay"].rstrip("s")) > gunicorn["graceful_timeout"]


def test_the_migration_job_reaches_the_services_cache_under_the_services_prefix():
    """migrate makes every cached item a miss; on another cache or prefix it would miss them."""
    job, service = workload_manifest("migrate"), workload_manifest("api")
    shared = ["REDIS_HOST", "REDIS_PORT", "REDIS_TLS", "CACHE_KEY_PREFIX"]

    assert {name: job["variables"][name] for name in shared} == {
        name: service["variables"][name] for name in shared
    }
    assert job["secrets"]["REDIS_AUTH_TOKEN"] == service["secrets"]["REDIS_AUTH_TOKEN"]
    [cache_client] = [
        group
        for group in service["network"]["vpc"]["security_groups"]
        if group["from_cfn"].endswith("-CacheClientSecurityGroup")
    ]
    assert cache_client in job["network"]["vpc"]["security_groups"]


def test_the_service_provides_every_variable_production_settings_require():
    assert environment_names(workload_manifest("api")) >= PRODUCTION_REQUIRED


def test_the_migration_job_provides_what_migrate_needs_and_runs_migrate():
    job = workload_manifest("migrate")

    assert environment_names(job) >= MIGRATION_REQUIRED
    assert job["command"] == ["python", "manage.py", "migrate", "--noinput"]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_variable_and_secret_a_manifest_sets_is_read_by_the_code(workload):
    unread = environment_names(workload_manifest(workload)) - variables_read_by_the_code()

    assert unread == set()


def test_the_service_sets_every_variable_the_code_reads_except_those_left_unset_on_purpose():
    provided = environment_names(workload_manifest("api"))

    assert variables_read_by_the_code() - provided == set(LEFT_UNSET_IN_THE_SERVICE)


def test_the_scan_of_the_code_finds_the_variables_settings_read():
    """Guards the regular expression: a few reads of each shape must be found."""
    assert variables_read_by_the_code() >= {
        "DJANGO_SECRET_KEY",  # env.str("...")
        "REDIS_PORT",  # env.int('...') inside an f-string
        "API_PERMISSION_CLASS",  # env.str(\n "..."
        "FORWARDED_ALLOW_IPS",  # os.environ.get("...")
        "WEB_CONCURRENCY",  # _int("...")
    }


def test_debug_is_off_in_every_workload_and_environment():
    for workload in WORKLOADS:
        manifest = workload_manifest(workload)
        for environment in ENVIRONMENTS:
            variables = per_environment(manifest, environment)["variables"]
            assert variables["DJANGO_DEBUG"] == "false", (workload, environment)


def test_manifests_use_only_shell_variables_the_deploy_guide_exports():
    guide = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    exported = set(re.findall(r"^export ([A-Z_][A-Z0-9_]*)=", guide, re.M))

    used = set().union(*(interpolated_variables(p.read_text()) for p in manifest_paths()))

    assert used - PREDEFINED_MANIFEST_VARIABLES <= exported


def aliases(manifest: dict) -> list[str]:
    alias = manifest.get("http", {}).get("alias", [])
    return [alias] if isinstance(alias, str) else alias


def test_an_alias_is_set_per_environment_so_no_two_claim_the_same_dns_record():
    """Copilot's domain function rewrites an alias's record on each deploy and deletes it
    with the environment, so a top-level alias would make test and prod fight over it."""
    api = workload_manifest("api")
    claimed = [name for env in ENVIRONMENTS for name in aliases(per_environment(api, env))]

    assert aliases(api) == []
    assert len(claimed) == len(set(claimed))


def test_prod_cannot_deploy_without_https_and_answers_only_its_own_host_names():
    """Copilot refuses an alias unless the application has a domain or the environment
    imports a certificate (cli/deploy/lbws.go), and no environment imports one
    (test_copilot_overrides.py), so prod's alias makes HTTPS on its domain a precondition."""
    prod = per_environment(workload_manifest("api"), "prod")
    variables = prod["variables"]

    assert aliases(prod) != []
    assert allowed_hosts(variables) == aliases(prod)
    assert variables["DJANGO_SECURE_SSL_REDIRECT"] == "true"
    assert int(variables["DJANGO_SECURE_HSTS_SECONDS"]) > 0
    assert variables["DJANGO_SECURE_COOKIES"] == "true"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_environment_allows_a_host_name_pattern(environment):
    """A leading dot or a star matches hosts the project does not own, such as every load
    balancer's generated name; the load balancer's own name comes from COPILOT_LB_DNS."""
    variables = per_environment(workload_manifest("api"), environment)["variables"]
    hosts = allowed_hosts(variables)

    patterns = [host for host in hosts if host.startswith((".", "*")) or "elb.amazonaws" in host]

    assert patterns == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_https_redirect_is_on_exactly_where_an_alias_guarantees_https(environment):
    resolved = per_environment(workload_manifest("api"), environment)

    redirect = resolved["variables"]["DJANGO_SECURE_SSL_REDIRECT"] == "true"

    assert redirect == bool(aliases(resolved))
