#!/usr/bin/env python3
"""The CDK app: `cdk synth -c environment=test -c tier=fargate` (docs/deploy-cdk.md)."""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from items_infra.checkov import CheckovSkips
from items_infra.config import deployment
from items_infra.nag import suppress_reviewed_findings
from items_infra.stack import ItemsApiStack


def build(app: cdk.App) -> ItemsApiStack:
    """The stack the app's context asks for, with cdk-nag's AWS Solutions rules applied."""
    chosen = deployment(
        app.node.try_get_context("environment") or "test",
        app.node.try_get_context("tier") or "fargate",
        alarm_email=app.node.try_get_context("alarmEmail") or "",
    )
    stack = ItemsApiStack(app, chosen.name, deployment=chosen)
    suppress_reviewed_findings(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    cdk.Aspects.of(app).add(CheckovSkips())
    return stack


if __name__ == "__main__":
    app = cdk.App()
    build(app)
    app.synth()
