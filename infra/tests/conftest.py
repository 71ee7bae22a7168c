"""Each test gets the synthesized stacks: both environments on both compute tiers."""

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app
from items_infra.stack import ItemsApiStack

DEPLOYMENTS = [(env, tier) for env in ("test", "prod") for tier in ("fargate", "lambda")]


class Synthesized:
    def __init__(self, stack: ItemsApiStack):
        self.stack = stack
        self.template = Template.from_stack(stack)
        self.json = self.template.to_json()

    def resources(self, kind: str) -> dict[str, dict]:
        return {
            name: resource
            for name, resource in self.json["Resources"].items()
            if resource["Type"] == kind
        }


_synthesized: dict[tuple[str, str], Synthesized] = {}


def synthesize(environment: str, tier: str) -> Synthesized:
    """Synthesize once per session: each stack takes seconds."""
    if (environment, tier) not in _synthesized:
        stack = app.build(cdk.App(context={"environment": environment, "tier": tier}))
        _synthesized[environment, tier] = Synthesized(stack)
    return _synthesized[environment, tier]


@pytest.fixture(params=DEPLOYMENTS, ids=lambda pair: "-".join(pair))
def synthesized(request) -> Synthesized:
    return synthesize(*request.param)


@pytest.fixture(params=[pair for pair in DEPLOYMENTS if pair[1] == "fargate"], ids="-".join)
def fargate(request) -> Synthesized:
    return synthesize(*request.param)


@pytest.fixture(params=[pair for pair in DEPLOYMENTS if pair[1] == "lambda"], ids="-".join)
def lambda_tier(request) -> Synthesized:
    return synthesize(*request.param)


@pytest.fixture(params=["test", "prod"])
def environment(request) -> str:
    return request.param
