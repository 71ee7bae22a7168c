"""The CloudFormation patches that move Copilot's custom-resource Lambdas off nodejs20.x."""

import json
import re
from pathlib import Path

import cfnlint
import pytest

from tests.copilot.workspace import (
    COPILOT_DIR,
    ENVIRONMENTS,
    environment_manifest,
    load_yaml,
    workload_manifest,
)

LAMBDA_LIFECYCLE = json.loads(
    (
        Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json"
    ).read_text()
)
COPILOT_RUNTIME = "nodejs20.x"
RUNTIME_PATH = re.compile(r"^/Resources/[A-Za-z0-9]+/Properties/Runtime$")
# Each patched stack's overrides folder, and the functions Copilot puts in that stack with
# what makes it put them there (Copilot's templates: workloads/partials/cf/*.yml and
# environment/partials/lambdas.yml).
FUNCTION_PRESENCE = {
    "api": {
        "EnvControllerFunction": "every workload",
        "RulePriorityFunction": "an http section (the load balancer rule)",
        "DynamicDesiredCountFunction": "a count range (autoscaling)",
    },
    "migrate": {"EnvControllerFunction": "every workload"},
    "environments": {
        "CertificateValidationFunction": "no imported certificate",
        "DNSDelegationFunction": "no imported certificate",
        "CustomDomainFunction": "no imported certificate",
    },
}
# Environment manifest settings that would remove a patched function or add an unpatched
# one: imported certificates drop the three above; access logs add a bucket cleaner, a CDN
# its own functions.
ENVIRONMENT_SETTINGS_THAT_CHANGE_ITS_FUNCTIONS = ("certificates", "access_logs")


def patches(stack: str) -> list[dict]:
    return load_yaml(COPILOT_DIR / stack / "overrides" / "cfn.patches.yml")


def patched_functions(stack: str) -> set[str]:
    return {operation["path"].split("/")[2] for operation in patches(stack)}


def node_runtime_deprecated_last() -> str:
    node = {name: dates for name, dates in LAMBDA_LIFECYCLE.items() if name.startswith("nodejs")}
    return max(node, key=lambda name: node[name]["deprecated"])


@pytest.mark.parametrize("stack", FUNCTION_PRESENCE)
def test_patches_only_replace_lambda_runtimes_of_functions_copilot_generates(stack):
    operations = patches(stack)

    assert operations
    for operation in operations:
        assert set(operation) == {"op", "path", "value"}
        assert operation["op"] == "replace"
        assert RUNTIME_PATH.match(operation["path"])
    assert patched_functions(stack) == set(FUNCTION_PRESENCE[stack])


@pytest.mark.parametrize("stack", FUNCTION_PRESENCE)
def test_every_patch_sets_the_node_runtime_cfn_lint_deprecates_last(stack):
    newest = node_runtime_deprecated_last()

    assert {operation["value"] for operation in patches(stack)} == {newest}
    assert (
        LAMBDA_LIFECYCLE[newest]["create-block"] > LAMBDA_LIFECYCLE[COPILOT_RUNTIME]["create-block"]
    )


def test_the_runtime_chosen_is_newer_than_the_previous_patch_and_still_supported_a_year_on():
    """Guards the selection above against a data file in which it would pick nothing useful."""
    newest = LAMBDA_LIFECYCLE[node_runtime_deprecated_last()]

    assert newest["deprecated"] > LAMBDA_LIFECYCLE["nodejs22.x"]["deprecated"]
    assert newest["successor"] is None


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_patched_function_exists_in_the_service_stack_of_every_environment(environment):
    """A replace on a missing path fails the deploy, so each patched function must be one
    Copilot generates for this manifest in every environment."""
    api = workload_manifest("api")
    count = api["environments"][environment].get("count", api["count"])

    assert "http" in api
    assert isinstance(count, dict)
    assert "range" in count


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_keeps_the_patched_functions_and_adds_no_other(environment):
    manifest = environment_manifest(environment)
    public = manifest.get("http", {}).get("public", {})

    assert [key for key in ENVIRONMENT_SETTINGS_THAT_CHANGE_ITS_FUNCTIONS if key in public] == []
    assert "cdn" not in manifest
