"""Both compute tiers: private, given secrets by reference, migrated before they serve."""

import json


def container(synthesized) -> dict:
    [task] = synthesized.resources("AWS::ECS::TaskDefinition").values()
    [definition] = task["Properties"]["ContainerDefinitions"]
    return definition


def plain_environment(synthesized) -> dict:
    if synthesized.stack.deployment.tier == "fargate":
        return {pair["Name"]: pair["Value"] for pair in container(synthesized)["Environment"]}
    [function] = [
        function
        for name, function in synthesized.resources("AWS::Lambda::Function").items()
        if name.startswith("LambdaFunction")
    ]
    return function["Properties"]["Environment"]["Variables"]


def test_the_fargate_service_runs_privately_behind_an_internal_load_balancer(fargate):
    [balancer] = fargate.resources("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert balancer["Properties"]["Scheme"] == "internal"
    [service] = fargate.resources("AWS::ECS::Service").values()
    network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    [group] = fargate.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["HealthCheckPath"] == "/healthz"


def test_the_fargate_tasks_get_their_secrets_from_secrets_manager(fargate):
    secrets = {secret["Name"] for secret in container(fargate)["Secrets"]}
    assert secrets == {"DJANGO_SECRET_KEY", "DB_SECRET", "REDIS_AUTH_TOKEN"}
    assert not secrets & set(plain_environment(fargate))


def test_the_fargate_service_scales_between_the_deployments_bounds(fargate):
    [target] = fargate.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    deployment = fargate.stack.deployment
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
        deployment.fargate_min_tasks,
        deployment.fargate_max_tasks,
    )
    policies = fargate.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    metrics = {
        policy["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]
        for policy in policies
    }
    assert metrics == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}


def test_the_migrations_run_before_the_fargate_service_changes(fargate):
    [migrate] = [
        name
        for name, resource in fargate.json["Resources"].items()
        if resource["Type"] == "AWS::CloudFormation::CustomResource"
    ]
    [service] = fargate.resources("AWS::ECS::Service").values()
    assert migrate in service["DependsOn"]
    properties = fargate.json["Resources"][migrate]["Properties"]
    [task] = fargate.resources("AWS::ECS::TaskDefinition")
    assert properties["TaskDefinition"] == {"Ref": task}


def test_the_lambda_function_runs_in_the_vpc_with_reserved_concurrency(lambda_tier):
    [function] = [
        function["Properties"]
        for name, function in lambda_tier.resources("AWS::Lambda::Function").items()
        if name.startswith("LambdaFunction")
    ]
    assert function["PackageType"] == "Image"
    assert function["ImageConfig"]["Command"] == ["backend.lambda_handler.handler"]
    assert function["VpcConfig"]["SubnetIds"]
    deployment = lambda_tier.stack.deployment
    assert function.get("ReservedConcurrentExecutions") == deployment.lambda_reserved_concurrency


def test_the_lambda_function_gets_secret_arns_never_secret_values(lambda_tier):
    environment = plain_environment(lambda_tier)
    names = {"DJANGO_SECRET_KEY", "DB_SECRET", "REDIS_AUTH_TOKEN"}
    assert {f"{name}_ARN" for name in names} <= set(environment)
    assert not names & set(environment)
    assert "resolve:secretsmanager" not in json.dumps(environment)


def test_the_migrations_run_before_the_lambda_function_changes(lambda_tier):
    [migrate] = [
        name
        for name, resource in lambda_tier.json["Resources"].items()
        if resource["Type"] == "AWS::CloudFormation::CustomResource"
    ]
    [function] = [
        function
        for name, function in lambda_tier.resources("AWS::Lambda::Function").items()
        if name.startswith("LambdaFunction")
    ]
    assert migrate in function["DependsOn"]


def test_the_service_answers_only_to_the_apis_own_name(synthesized):
    """No pattern, and not the load balancer's name: on Fargate, Host comes from the header
    API Gateway writes."""
    environment = plain_environment(synthesized)
    [api] = synthesized.resources("AWS::ApiGatewayV2::Api")
    separator, parts = environment["DJANGO_ALLOWED_HOSTS"]["Fn::Join"]

    assert (separator, parts) == (
        "",
        [{"Ref": api}, ".execute-api.", {"Ref": "AWS::Region"}, ".amazonaws.com"],
    )
    assert environment["DJANGO_DEBUG"] == "false"


def test_the_service_takes_the_caller_and_host_only_from_what_the_gateway_writes(fargate):
    environment = plain_environment(fargate)
    [integration] = fargate.resources("AWS::ApiGatewayV2::Integration").values()
    written = integration["Properties"]["RequestParameters"]

    assert written == {
        "overwrite:header.X-Items-Forwarded-Proto": "https",
        "overwrite:header.X-Items-Client-Ip": "$context.identity.sourceIp",
        "overwrite:header.X-Items-Forwarded-Host": "$context.domainName",
    }
    assert {
        name: environment[name]
        for name in (
            "DJANGO_SECURE_PROXY_SSL_HEADER",
            "API_CLIENT_IP_HEADER",
            "DJANGO_HOST_HEADER",
            "API_NUM_PROXIES",
        )
    } == {
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Items-Forwarded-Proto",
        "API_CLIENT_IP_HEADER": "X-Items-Client-Ip",
        "DJANGO_HOST_HEADER": "X-Items-Forwarded-Host",
        "API_NUM_PROXIES": "0",
    }


def test_on_lambda_the_handler_takes_the_caller_from_the_event(lambda_tier):
    environment = plain_environment(lambda_tier)
    assert environment["API_NUM_PROXIES"] == "0"
    assert "API_CLIENT_IP_HEADER" not in environment


def test_the_outputs_name_what_the_guide_uses(synthesized):
    expected = {"fargate": {"ApiUrl", "Cluster"}, "lambda": {"ApiUrl", "ManageFunction"}}
    assert set(synthesized.json["Outputs"]) == expected[synthesized.stack.deployment.tier]
