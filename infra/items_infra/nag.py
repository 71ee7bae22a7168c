"""cdk-nag (AWS Solutions) findings that were reviewed and accepted, each with its reason.

Every suppression names its rule and, for IAM wildcards, the exact resource it accepts;
tests/test_nag.py fails on any finding not listed here.
"""

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo

from items_infra.config import Tier
from items_infra.stack import ItemsApiStack

# CDK's custom resource provider framework: its functions log through the basic
# execution role and invoke the user's handlers by ARN and version.
PROVIDER_FRAMEWORK = [
    NagPackSuppression(
        id="AwsSolutions-IAM4",
        reason="Lambda's basic execution role: permission to write its own logs, nothing more",
        applies_to=[
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="The provider framework invokes its handler functions by ARN and any version",
        applies_to=[RegexAppliesTo(regex=r"/^Resource::<[A-Za-z0-9]+\.Arn>:\*$/")],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Log delivery to CloudWatch Logs (logs:CreateLogDelivery and the like) has no "
        "resource-level permissions",
        applies_to=["Resource::*"],
    ),
    NagPackSuppression(
        id="AwsSolutions-SF2",
        reason="The provider's waiter state machine only polls the migration; no tracing needed",
    ),
    NagPackSuppression(
        id="AwsSolutions-L1",
        reason="The provider framework's own functions use the runtime CDK pins",
    ),
]


def suppress_reviewed_findings(stack: ItemsApiStack) -> None:
    deployment = stack.deployment
    _on(
        stack.api,
        "AwsSolutions-APIG4",
        "The service authenticates every write itself (DRF tokens and sessions, README); "
        "reads are public by design. A gateway authorizer would be a second, divergent one.",
    )
    _on(
        stack.network.vpc,
        "CdkNagValidationFailure",
        "EC23 cannot evaluate the endpoints' ingress from the VPC's own CIDR (a token)",
    )
    for secret, why in (
        (stack.django_secret_key, "rotating it signs every session out: a planned change"),
        (stack.database.cluster, "tasks read it at start: rotate with a redeploy (deploy-cdk.md)"),
        (stack.cache.auth_token, "AUTH rotation is a two-step change (deploy-cdk.md)"),
    ):
        _on(secret, "AwsSolutions-SMG4", f"Rotated by hand: {why}")
    _on(
        stack.cache.replication_group,
        "AwsSolutions-AEC5",
        "A port number hides nothing from a scanner; only the compute tier's group may connect",
    )
    if not deployment.production:
        _on(
            stack.database.cluster,
            "AwsSolutions-RDS10",
            "Test environments are disposable; prod sets deletion protection",
        )
        _on(
            stack.cache.replication_group,
            "AwsSolutions-AEC4",
            "One node in test environments; prod runs a replica in a second zone",
        )
    if deployment.tier is Tier.FARGATE:
        _suppress_fargate(stack.compute)
    else:
        _suppress_lambda(stack.compute)


def _suppress_fargate(fargate) -> None:
    _on(
        fargate.task_definition,
        "AwsSolutions-ECS2",
        "Plain settings are environment variables; the three secrets are ECS secrets",
    )
    NagSuppressions.add_resource_suppressions(
        fargate.task_definition.obtain_execution_role(),
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="ecr:GetAuthorizationToken has no resource to name",
                applies_to=["Resource::*"],
            )
        ],
        apply_to_children=True,
    )
    NagSuppressions.add_resource_suppressions(
        fargate.task_definition.task_role,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="ECS Exec's Session Manager channel (ssmmessages) has no resource to name",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="ECS Exec writes its sessions to streams of the service's own log group",
                applies_to=[
                    RegexAppliesTo(regex=r"/^Resource::.*:log-group:<FargateLogs[A-Za-z0-9]+>:\*$/")
                ],
            ),
        ],
        apply_to_children=True,
    )
    _on(
        fargate.load_balancer,
        "AwsSolutions-ELB2",
        "Internal, behind API Gateway, whose access log records every request",
    )
    NagSuppressions.add_resource_suppressions(
        fargate.migrate_handlers,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="Lambda's basic execution role: writing its own logs",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole"
                ],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The migrate task's ARN is not known before it runs: any task of "
                "this cluster",
                applies_to=[
                    "Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:"
                    "task/<FargateCluster03BAFB94>/*"
                ],
            ),
        ],
        apply_to_children=True,
    )
    NagSuppressions.add_resource_suppressions(
        fargate.migrate_provider, PROVIDER_FRAMEWORK, apply_to_children=True
    )


def _suppress_lambda(service) -> None:
    for function in (service.function, service.manage_function):
        NagSuppressions.add_resource_suppressions(
            function,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="Lambda's managed roles for its own logs and its network interfaces "
                    "in the VPC",
                    applies_to=[
                        f"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}"
                        for policy in (
                            "AWSLambdaBasicExecutionRole",
                            "AWSLambdaVPCAccessExecutionRole",
                        )
                    ],
                )
            ],
            apply_to_children=True,
        )
    NagSuppressions.add_resource_suppressions(
        service.migrate_provider, PROVIDER_FRAMEWORK, apply_to_children=True
    )


def _on(construct, rule: str, reason: str) -> None:
    NagSuppressions.add_resource_suppressions(
        construct, [NagPackSuppression(id=rule, reason=reason)], apply_to_children=True
    )
