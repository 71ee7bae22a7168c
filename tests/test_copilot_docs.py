"""docs/deploy.md: the commands a first deploy runs, in an order that can work."""

import re

from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from tests.copilot.schemas import SCHEMA_BY_TYPE
from tests.copilot.workspace import (
    ENVIRONMENTS,
    PROJECT_ROOT,
    WORKLOADS,
    load_yaml,
    workload_manifest,
)

GUIDE = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
# Each step needs the one before it: the app, then the workloads registered, then the
# environment with its data tier, then migrations, then the service.
FIRST_DEPLOY_ORDER = [
    "copilot app init",
    "copilot svc init --name api",
    "copilot job init --name migrate",
    "copilot env init --name test",
    "copilot env deploy --name test",
    "copilot job deploy --name migrate --env test",
    "copilot job run --name migrate --env test",
    "copilot svc deploy --name api --env test",
]


def first_deploy_block() -> str:
    section = GUIDE.split("## First deploy, in order", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_first_deploy_runs_each_step_after_the_one_it_needs():
    block = first_deploy_block()
    positions = [block.find(command) for command in FIRST_DEPLOY_ORDER]

    assert -1 not in positions, dict(zip(FIRST_DEPLOY_ORDER, positions, strict=True))
    assert positions == sorted(positions)


def test_the_guide_names_only_workloads_environments_and_the_application_that_exist():
    application = load_yaml(PROJECT_ROOT / "copilot" / ".workspace")["application"]

    assert set(re.findall(r"copilot (?:svc|job) \w+ --name ([\w-]+)", GUIDE)) <= set(WORKLOADS)
    assert set(re.findall(r"--env ([\w-]+)", GUIDE)) <= set(ENVIRONMENTS)
    assert set(re.findall(r"copilot app init ([\w-]+)", GUIDE)) == {application}


def test_the_guide_says_it_was_not_deployed_and_that_copilot_is_out_of_support():
    assert "has never been deployed to AWS" in GUIDE
    assert "end of support on **12 June 2026**" in GUIDE
    assert "```mermaid" in GUIDE


def manifest_snippets() -> list[dict]:
    return [
        YAML(typ="safe", pure=True).load(block)
        for block in re.findall(r"```yaml\n(.*?)```", GUIDE, re.S)
    ]


def test_the_guide_sets_aliases_and_allowed_hosts_per_environment_only():
    """At the top level of the service manifest, test and prod would claim one DNS record."""
    snippets = manifest_snippets()
    top_level = [
        snippet
        for snippet in snippets
        if "http" in snippet or "DJANGO_ALLOWED_HOSTS" in snippet.get("variables", {})
    ]
    per_environment = [
        variables
        for snippet in snippets
        for settings in snippet.get("environments", {}).values()
        for variables in [settings.get("variables", {})]
        if "DJANGO_ALLOWED_HOSTS" in variables
    ]

    assert top_level == []
    assert per_environment
    assert all(v["DJANGO_SECURE_SSL_REDIRECT"] == "true" for v in per_environment)


def test_the_guide_uses_no_deprecated_flag():
    """`env init --prod` is deprecated in Copilot (cli/env_init.go)."""
    assert re.findall(r"--prod\b", GUIDE) == []


def test_the_exact_image_snippet_is_a_valid_image_for_both_workloads_and_its_variable_is_set():
    [snippet] = [s for s in manifest_snippets() if "location" in s.get("image", {})]
    errors = {}
    for workload in WORKLOADS:
        manifest = workload_manifest(workload)
        image = {k: v for k, v in manifest["image"].items() if k != "build"}
        manifest["image"] = {**image, **snippet["image"]}
        validator = Draft202012Validator(SCHEMA_BY_TYPE[manifest["type"]])
        errors[workload] = [e.message for e in validator.iter_errors(manifest)]

    assert errors == {workload: [] for workload in WORKLOADS}
    assert snippet["image"]["location"] == "${ITEMS_IMAGE}"
    assert re.search(r"^export ITEMS_IMAGE=\$\(jq -r \.Parameters\.ContainerImage ", GUIDE, re.M)
    assert "copilot svc package --name api --env test --upload-assets" in GUIDE


def test_the_guide_says_how_to_change_an_exported_addon_resource():
    section = GUIDE.split("### Addon changes that replace an exported resource", 1)[1]

    assert "Cannot update export" in section
    assert "aws cloudformation list-imports" in section
