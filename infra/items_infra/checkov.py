"""checkov findings that were reviewed and accepted, written into the template as each
resource's `Metadata.checkov.skip`, where checkov reads them, with their reasons."""

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct

LOG_GROUP = "AWS::Logs::LogGroup"
FUNCTION = "AWS::Lambda::Function"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
DB_INSTANCE = "AWS::RDS::DBInstance"
POLICY = "AWS::IAM::Policy"


def _in_vpc(resource: CfnResource) -> bool:
    return bool(resource.vpc_config) if hasattr(resource, "vpc_config") else False


def _is_the_waiter_policy(resource: CfnResource) -> bool:
    return "waiter-state-machine" in resource.node.path


# (resource type, check, reason, which of them: None for every one)
REVIEWED = [
    (
        LOG_GROUP,
        "CKV_AWS_158",
        "CloudWatch Logs encrypts every log group at rest; the logs "
        "hold no secrets (docs/operations.md)",
        None,
    ),
    (
        FUNCTION,
        "CKV_AWS_116",
        "Invoked synchronously (API Gateway, CloudFormation): a dead "
        "letter queue receives only asynchronous events",
        None,
    ),
    (
        FUNCTION,
        "CKV_AWS_173",
        "The environment holds settings and secret ARNs, never a "
        "secret; Lambda encrypts it at rest",
        None,
    ),
    (
        FUNCTION,
        "CKV_AWS_117",
        "Calls only AWS APIs (ECS, CloudFormation); it needs no address in the VPC",
        lambda resource: not _in_vpc(resource),
    ),
    (
        FUNCTION,
        "CKV_AWS_115",
        "Unreserved on purpose: run by CloudFormation or an operator alone, or a test "
        "environment whose new account has no concurrency to reserve (docs/deploy-cdk.md)",
        lambda resource: not resource.reserved_concurrent_executions,
    ),
    (
        DB_INSTANCE,
        "CKV_AWS_118",
        "Performance Insights and CloudWatch's Aurora metrics "
        "cover it; enhanced monitoring needs a role with a managed policy",
        None,
    ),
    (
        LOAD_BALANCER,
        "CKV_AWS_91",
        "Internal, behind API Gateway, whose access log records every request",
        None,
    ),
    (
        LISTENER,
        "CKV_AWS_2",
        "Plain HTTP inside the VPC: TLS ends at API Gateway, the only "
        "client its security group admits",
        None,
    ),
    (LISTENER, "CKV_AWS_103", "No TLS on this internal listener; see CKV_AWS_2", None),
    (
        POLICY,
        "CKV_AWS_111",
        "CDK's provider framework: its waiter delivers its log "
        "(logs:*LogDelivery has no resource-level permissions)",
        _is_the_waiter_policy,
    ),
]


@jsii.implements(IAspect)
class CheckovSkips:
    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        skips = [
            {"id": check, "comment": reason}
            for kind, check, reason, applies in REVIEWED
            if node.cfn_resource_type == kind and (applies is None or applies(node))
        ]
        if skips:
            node.add_metadata("checkov", {"skip": skips})
