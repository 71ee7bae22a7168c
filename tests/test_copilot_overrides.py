"""The CloudFormation patches that move Copilot's custom-resource Lambdas off nodejs20.x."""

import json
import re
from pathlib import Path

import cfnlint
import pytest

from tests.copilot.workspace import COPILOT_DIR, ENVIRONMENTS, load_yaml, workload_manifest

LAMBDA_LIFECYCLE = json.loads(
    (
        Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "LmbdRuntimeLifecycle.json"
    ).read_text()
)
COPILOT_RUNTIME = "nodejs20.x"
RUNTIME_PATH = re.compile(r"^/Resources/[A-Za-z0-9]+/Properties/Runtime$")
# The functions Copilot adds to a stack, and what in the manifest makes it add them.
FUNCTION_PRESENCE = {
    "EnvControllerFunction": "every workload",
    "RulePriorityFunction": "an http section (the load balancer rule)",
    "DynamicDesiredCountFunction": "a count range (autoscaling)",
}


def patches(workload: str) -> list[dict]:
    return load_yaml(COPILOT_DIR / workload / "overrides" / "cfn.patches.yml")


@pytest.mark.parametrize("workload", ["api", "migrate"])
def test_patches_only_replace_lambda_runtimes_of_functions_copilot_generates(workload):
    operations = patches(workload)

    assert operations
    for operation in operations:
        assert set(operation) == {"op", "path", "value"}
        assert operation["op"] == "replace"
        assert RUNTIME_PATH.match(operation["path"])
        assert operation["path"].split("/")[2] in FUNCTION_PRESENCE


@pytest.mark.parametrize("workload", ["api", "migrate"])
def test_the_new_runtime_outlives_the_one_copilot_generates(workload):
    copilot = LAMBDA_LIFECYCLE[COPILOT_RUNTIME]

    for operation in patches(workload):
        patched = LAMBDA_LIFECYCLE[operation["value"]]
        assert patched["deprecated"] > copilot["create-block"]
        assert patched["create-block"] > copilot["create-block"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_patched_function_exists_in_the_service_stack_of_every_environment(environment):
    """A replace on a missing path fails the deploy, so each patched function must be one
    Copilot generates for this manifest in every environment."""
    api = workload_manifest("api")
    count = api["environments"][environment].get("count", api["count"])
    patched = {operation["path"].split("/")[2] for operation in patches("api")}

    assert "http" in api
    assert isinstance(count, dict)
    assert "range" in count
    assert patched == set(FUNCTION_PRESENCE)


def test_the_job_patches_only_the_function_every_workload_has():
    assert [operation["path"] for operation in patches("migrate")] == [
        "/Resources/EnvControllerFunction/Properties/Runtime"
    ]
