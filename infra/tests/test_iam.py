"""Every role holds only what it uses: no wildcard action, and named resources where they
can be named."""

import json

# Actions AWS grants on no resource narrower than "*".
UNSCOPABLE = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ecr:GetAuthorizationToken",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


# CDK's provider framework: the state machine that waits for the migration writes its log.
FRAMEWORK_LOGGING = {"logs:CreateLogStream", "logs:PutLogEvents"}


def statements(synthesized):
    for name, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_no_statement_allows_every_action_of_a_service(synthesized):
    wildcards = [
        (name, action)
        for name, statement in statements(synthesized)
        for action in as_list(statement["Action"])
        if action == "*" or action.endswith(":*")
    ]
    assert wildcards == []


def test_a_statement_on_every_resource_holds_only_actions_that_cannot_be_scoped(synthesized):
    def allowed(name: str) -> set[str]:
        waiter = name.startswith("FargateMigrateProviderwaiterstatemachine")
        return UNSCOPABLE | FRAMEWORK_LOGGING if waiter else UNSCOPABLE

    broad = [
        (name, sorted(set(as_list(statement["Action"])) - allowed(name)))
        for name, statement in statements(synthesized)
        if statement["Resource"] == "*" and set(as_list(statement["Action"])) - allowed(name)
    ]
    assert broad == []


def test_the_migration_runner_may_start_only_the_services_task_definition(fargate):
    run_task = [
        statement
        for _, statement in statements(fargate)
        if "ecs:RunTask" in as_list(statement["Action"])
    ]
    [task] = fargate.resources("AWS::ECS::TaskDefinition")
    assert run_task
    for statement in run_task:
        assert statement["Resource"] == {"Ref": task}


def test_the_compute_tier_reads_exactly_the_three_secrets(synthesized):
    readers = [
        statement
        for _, statement in statements(synthesized)
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
    ]
    secrets = set(synthesized.resources("AWS::SecretsManager::Secret"))
    attachments = set(synthesized.resources("AWS::SecretsManager::SecretTargetAttachment"))
    read = {
        json.dumps(resource) for statement in readers for resource in as_list(statement["Resource"])
    }
    assert read
    for resource in read:
        assert any(name in resource for name in secrets | attachments), resource
