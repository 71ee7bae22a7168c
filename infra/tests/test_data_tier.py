"""Aurora and ElastiCache: encrypted, TLS only, private, and kept in production."""

import re

import pytest

from items_infra.config import PROJECT_ROOT


def only(synthesized, kind: str) -> dict:
    [resource] = synthesized.resources(kind).values()
    return resource


def test_aurora_is_encrypted_with_its_own_key_and_forces_tls(synthesized):
    cluster = only(synthesized, "AWS::RDS::DBCluster")
    properties = cluster["Properties"]
    assert properties["StorageEncrypted"] is True
    key = properties["KmsKeyId"]["Fn::GetAtt"][0]
    assert synthesized.json["Resources"][key]["Type"] == "AWS::KMS::Key"
    parameters = only(synthesized, "AWS::RDS::DBClusterParameterGroup")["Properties"]
    assert parameters["Parameters"]["rds.force_ssl"] == "1"
    assert properties["Engine"] == "aurora-postgresql"
    assert properties["EnableCloudwatchLogsExports"] == ["postgresql"]


def test_aurora_is_serverless_v2_within_the_deployments_capacity(synthesized):
    deployment = synthesized.stack.deployment
    scaling = only(synthesized, "AWS::RDS::DBCluster")["Properties"][
        "ServerlessV2ScalingConfiguration"
    ]
    assert scaling == {"MinCapacity": deployment.db_min_acu, "MaxCapacity": deployment.db_max_acu}
    instances = synthesized.resources("AWS::RDS::DBInstance").values()
    assert {instance["Properties"]["DBInstanceClass"] for instance in instances} == {
        "db.serverless"
    }
    assert len(instances) == 1 + deployment.db_readers
    assert not any(instance["Properties"].get("PubliclyAccessible") for instance in instances)


def test_production_keeps_its_database(synthesized):
    cluster = only(synthesized, "AWS::RDS::DBCluster")
    production = synthesized.stack.deployment.production
    assert cluster["Properties"]["DeletionProtection"] is production
    assert cluster["DeletionPolicy"] == ("Snapshot" if production else "Delete")
    assert cluster["Properties"]["BackupRetentionPeriod"] >= (7 if production else 1)


def test_the_postgresql_log_group_is_the_one_rds_writes_and_it_expires(synthesized):
    cluster = only(synthesized, "AWS::RDS::DBCluster")["Properties"]
    expected = f"/aws/rds/cluster/{cluster['DBClusterIdentifier']}/postgresql"
    groups = [
        group["Properties"]
        for group in synthesized.resources("AWS::Logs::LogGroup").values()
        if group["Properties"].get("LogGroupName") == expected
    ]
    assert len(groups) == 1
    assert groups[0]["RetentionInDays"] > 0


def test_redis_requires_tls_and_auth_and_is_encrypted_at_rest(synthesized):
    group = only(synthesized, "AWS::ElastiCache::ReplicationGroup")["Properties"]
    assert group["TransitEncryptionEnabled"] is True
    assert group["AtRestEncryptionEnabled"] is True
    assert "KmsKeyId" in group
    assert "{{resolve:secretsmanager:" in str(group["AuthToken"])
    assert group["Engine"] == "redis"
    # The cache's Lua scripts touch two keys: one shard, cluster mode disabled.
    assert "NumNodeGroups" not in group
    assert group["NumCacheClusters"] == 1 + synthesized.stack.deployment.cache_replicas


def test_production_redis_fails_over_to_another_zone(synthesized):
    group = only(synthesized, "AWS::ElastiCache::ReplicationGroup")["Properties"]
    production = synthesized.stack.deployment.production
    assert group["MultiAZEnabled"] is production
    assert group["AutomaticFailoverEnabled"] is production


def ingress_rules(synthesized, group: str) -> list[dict]:
    """The group's inbound rules, whether written inside it or as resources of their own."""
    inline = synthesized.json["Resources"][group]["Properties"].get("SecurityGroupIngress", [])
    standalone = [
        rule["Properties"]
        for rule in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    return [*inline, *standalone]


@pytest.mark.parametrize(
    ("kind", "groups"),
    [
        ("AWS::RDS::DBCluster", "VpcSecurityGroupIds"),
        ("AWS::ElastiCache::ReplicationGroup", "SecurityGroupIds"),
    ],
)
def test_the_data_tier_admits_only_the_compute_tier(synthesized, kind, groups):
    """On Lambda, Aurora admits only RDS Proxy, and the proxy only the functions."""
    admitted = logical_id(synthesized, synthesized.stack.compute.security_group)
    if kind == "AWS::RDS::DBCluster" and synthesized.stack.deployment.tier == "lambda":
        [proxy] = only(synthesized, "AWS::RDS::DBProxy")["Properties"]["VpcSecurityGroupIds"]
        assert_admits_only(synthesized, proxy["Fn::GetAtt"][0], admitted)
        admitted = proxy["Fn::GetAtt"][0]
    [group] = only(synthesized, kind)["Properties"][groups]

    assert_admits_only(synthesized, group["Fn::GetAtt"][0], admitted)


def logical_id(synthesized, security_group) -> str:
    return synthesized.stack.resolve(security_group.node.default_child.logical_id)


def assert_admits_only(synthesized, group: str, source: str) -> None:
    rules = ingress_rules(synthesized, group)
    assert rules
    for rule in rules:
        assert "CidrIp" not in rule
        assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [source, "GroupId"]}


def test_the_lambda_tier_reaches_aurora_through_rds_proxy_over_tls(lambda_tier):
    [name] = lambda_tier.resources("AWS::RDS::DBProxy")
    proxy = lambda_tier.json["Resources"][name]["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    functions = lambda_tier.resources("AWS::Lambda::Function").values()
    hosts = [
        function["Properties"]["Environment"]["Variables"].get("DB_HOST")
        for function in functions
        if "DB_SECRET_ARN" in function["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert hosts == [{"Fn::GetAtt": [name, "Endpoint"]}] * 2


def test_the_data_tier_lives_in_isolated_subnets(synthesized):
    isolated = {
        name
        for name, subnet in synthesized.resources("AWS::EC2::Subnet").items()
        if any(
            tag["Key"] == "aws-cdk:subnet-type" and tag["Value"] == "Isolated"
            for tag in subnet["Properties"]["Tags"]
        )
    }
    db_subnets = only(synthesized, "AWS::RDS::DBSubnetGroup")["Properties"]["SubnetIds"]
    cache_subnets = only(synthesized, "AWS::ElastiCache::SubnetGroup")["Properties"]["SubnetIds"]
    for subnets in (db_subnets, cache_subnets):
        assert {subnet["Ref"] for subnet in subnets} == isolated


def test_aurora_runs_the_engine_version_of_the_copilot_addon(synthesized):
    """One PostgreSQL release for both deploys (the addon's version is checked by cfn-lint)."""
    addon = (PROJECT_ROOT / "copilot" / "environments" / "addons" / "aurora.yml").read_text()
    [version] = re.findall(r'EngineVersion: "(\d+\.\d+)"', addon)

    assert only(synthesized, "AWS::RDS::DBCluster")["Properties"]["EngineVersion"] == version
