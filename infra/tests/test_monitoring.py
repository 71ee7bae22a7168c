"""Alarms cover the whole deployment and every one of them notifies the encrypted topic."""

import pytest

COMMON_ALARMS = {
    "Api5xxRate",
    "ApiLatencyP99",
    "DatabaseCapacity",
    "DatabaseConnections",
    "DatabaseCpu",
    "CacheCpu",
    "CacheMemory",
    "CacheEvictions",
    "CacheConnections",
    "CacheHitRatio",
    "CacheErrors",
}
TIER_ALARMS = {
    "fargate": {"TaskCpu", "TaskMemory", "Target5xx", "UnhealthyTasks", "TasksBelowMinimum"},
    "lambda": {"FunctionErrors", "FunctionThrottles", "FunctionConcurrency"},
}


def alarms(synthesized) -> dict[str, dict]:
    return synthesized.resources("AWS::CloudWatch::Alarm")


def test_each_tier_has_its_alarms_and_the_common_ones(synthesized):
    deployment = synthesized.stack.deployment
    expected = COMMON_ALARMS | TIER_ALARMS[deployment.tier]
    if deployment.tier == "lambda" and not deployment.lambda_reserved_concurrency:
        expected -= {"FunctionConcurrency"}  # nothing reserved to measure against
    names = {alarm.node.id for alarm in synthesized.stack.monitoring.alarms}
    assert names == expected
    assert len(alarms(synthesized)) == len(names)


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(synthesized):
    [topic] = synthesized.resources("AWS::SNS::Topic")
    for alarm in alarms(synthesized).values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic}]


def test_the_topic_is_encrypted_and_refuses_plain_http(synthesized):
    [topic] = synthesized.resources("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    [policy] = synthesized.resources("AWS::SNS::TopicPolicy").values()
    assert "aws:SecureTransport" in str(policy["Properties"]["PolicyDocument"])


def test_the_email_subscription_exists_only_when_an_address_is_given(synthesized):
    [subscription] = synthesized.resources("AWS::SNS::Subscription").values()
    assert subscription["Condition"]
    assert synthesized.json["Parameters"]["AlarmEmail"]["Default"] == ""


@pytest.mark.parametrize("metric", ["CacheEngineHit", "CacheEngineMiss", "CacheEngineError"])
def test_the_service_metrics_are_read_with_the_dimensions_the_service_writes(synthesized, metric):
    """backend/observability/metrics.py writes the engine's counters under Environment only."""
    metrics = [
        query["MetricStat"]["Metric"]
        for alarm in alarms(synthesized).values()
        for query in alarm["Properties"].get("Metrics", [])
        if "MetricStat" in query
    ] + [alarm["Properties"] for alarm in alarms(synthesized).values()]
    used = [found for found in metrics if found.get("MetricName") == metric]
    expected = {"Name": "Environment", "Value": synthesized.stack.deployment.environment}
    assert used
    for found in used:
        assert (found["Namespace"], found["Dimensions"]) == ("ItemsApi", [expected])
