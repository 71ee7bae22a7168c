"""The service's monitoring addon (copilot/api/addons): it watches only metrics that exist,
the service's own ones as the code emits them, and every alarm reaches someone."""

import json
import logging
import re
import sys
import types
from collections import defaultdict
from pathlib import Path
from unittest.mock import patch

import pytest
from django.db import OperationalError

from backend.cache import cache_stats
from backend.errors import database_unavailable
from backend.observability.log_config import ACCESS_LOGGER, METRICS_LOGGER, json_formatter
from backend.observability.metrics import (
    CACHE_STATUS_METRICS,
    CacheCounterReporter,
    RequestMeasurement,
    RequestMetrics,
)
from tests.copilot.workspace import (
    COPILOT_DIR,
    ENV_ADDONS_DIR,
    ENVIRONMENTS,
    SERVICE_ADDONS_DIR,
    load_template,
    load_yaml,
    merged_addons,
    workload_manifest,
)
from tests.test_copilot_addons import ATTACHMENT_FIELDS
from tests.test_copilot_manifests import per_environment

TEMPLATE_PATH = SERVICE_ADDONS_DIR / "monitoring.yml"
PARAMETERS_PATH = SERVICE_ADDONS_DIR / "addons.parameters.yml"
SERVICE = "api"
ALARM = "AWS::CloudWatch::Alarm"
RESERVED_PARAMETERS = {"App", "Env", "Name"}
# Resources of Copilot's Load Balanced Web Service stack that addons.parameters.yml may name
# (templates/workloads/services/lb-web/cf.yml and its partials alb.yml, loggroup.yml: one
# listener rule, no imported load balancer).
SERVICE_STACK_RESOURCES = {"TargetGroup", "Service", "LogGroup", "TaskDefinition", "TaskRole"}
# Exports of Copilot's environment stack (templates/environment/cf.yml), ${App}-${Env}-<name>.
ENVIRONMENT_STACK_EXPORTS = {
    "VpcId",
    "PublicSubnets",
    "PrivateSubnets",
    "EnvironmentSecurityGroup",
    "PublicLoadBalancerDNS",
    "PublicLoadBalancerFullName",
    "HTTPListenerArn",
    "HTTPSListenerArn",
    "ClusterId",
}
AWS_NAMESPACES = {
    "AWS/ApplicationELB",
    "AWS/ECS",
    "ECS/ContainerInsights",
    "AWS/RDS",
    "AWS/ElastiCache",
}
# A request of each status class and cache outcome the code knows, for the metrics it emits.
STATUSES = (200, 304, 404, 503)
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s*(.*?)'\s*,")
SEARCH_TERM = re.compile(r'(\w+)="([^"]*)"')
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9:.]+)\}")
# Logs Insights commands, functions and operators; any other word in a query is a field or
# an alias made with `as`.
INSIGHTS_WORDS = {
    "filter", "fields", "stats", "sort", "limit", "by", "as", "and", "or", "in", "not",
    "asc", "desc", "count", "avg", "pct", "latest", "sum", "bin", "ispresent",
}  # fmt: skip
IDENTIFIER = re.compile(r"(?<![\w@])[a-z_][a-z0-9_]*")
ALIAS = re.compile(r"\bas\s+(\w+)")
LOG_FIELD = re.compile(r"\$\.(\w+)\s*=\s*\"([^\"]*)\"")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def metrics_namespace() -> str:
    return workload_manifest(SERVICE)["variables"]["METRICS_NAMESPACE"]


def application_name() -> str:
    return load_yaml(COPILOT_DIR / ".workspace")["application"]


class Resolver:
    """Evaluate the template's intrinsic functions as CloudFormation would for one
    environment; an import stays visible as "import:<export name>"."""

    def __init__(self, template: dict, environment: str, namespace: str):
        self.template = template
        self.values = {
            "App": application_name(),
            "Env": environment,
            "Name": SERVICE,
            "MetricsNamespace": namespace,
            "AWS::Region": "eu-west-1",
            **{
                name: f"param:{name}"
                for name in (
                    "TargetGroupFullName",
                    "ServiceName",
                    "ServiceLogGroup",
                    "TaskDefinitionArn",
                )
            },
        }
        self.is_prod = environment == "prod"

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {key: self(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.values.get(argument, f"ref:{argument}")
        if function == "Fn::ImportValue":
            return f"import:{self(argument)}"
        if function == "Fn::If":
            condition, when_true, when_false = argument
            assert condition == "IsProd", condition
            return self(when_true if self.is_prod else when_false)
        if function == "Fn::Sub":
            text, extra = (argument, {}) if isinstance(argument, str) else argument
            names = {**self.values, **{k: self(v) for k, v in extra.items()}}
            return SUBSTITUTION.sub(lambda m: str(names.get(m.group(1), f"ref:{m.group(1)}")), text)
        return value


def alarms(template: dict, environment: str = "test") -> dict[str, dict]:
    """The alarms that exist in one environment, by logical id."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == ALARM
        and (resource.get("Condition") != "IsProd" or environment == "prod")
    }


def alarm_metrics(alarm: dict) -> list[dict]:
    properties = alarm["Properties"]
    if "Metrics" in properties:
        return [q["MetricStat"]["Metric"] for q in properties["Metrics"] if "MetricStat" in q]
    return [
        {k: properties[k] for k in ("Namespace", "MetricName", "Dimensions") if k in properties}
    ]


def used_metrics(template: dict, resolve: Resolver) -> list[tuple[str, str, dict, str]]:
    """(namespace, metric, {dimension: value}, where) of every metric an alarm or the
    dashboard reads."""
    found = []
    for name, alarm in alarms(template, "prod" if resolve.is_prod else "test").items():
        for metric in alarm_metrics(alarm):
            dimensions = {d["Name"]: resolve(d["Value"]) for d in metric.get("Dimensions", [])}
            found.append((resolve(metric["Namespace"]), metric["MetricName"], dimensions, name))
    for widget in dashboard(template, resolve)["widgets"]:
        for row in widget["properties"].get("metrics", []):
            found += widget_row_metrics(row, widget["properties"]["title"])
    return found


def widget_row_metrics(row: list, title: str) -> list[tuple[str, str, dict, str]]:
    if isinstance(row[0], dict):
        expression = row[0]["expression"]
        search = SEARCH.search(expression)
        if not search:
            return []  # arithmetic over rows listed separately
        namespace, *dimension_names = [part.strip() for part in search.group(1).split(",")]
        terms = dict(SEARCH_TERM.findall(search.group(2)))
        metric = terms.pop("MetricName")
        dimensions = {name: terms.get(name, "*") for name in dimension_names}
        return [(namespace, metric, dimensions, title)]
    namespace, metric, *rest = [part for part in row if not isinstance(part, dict)]
    return [(namespace, metric, dict(zip(rest[::2], rest[1::2], strict=True)), title)]


def dashboard(template: dict, resolve: Resolver) -> dict:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    text = resolve(body)
    return json.loads(text)


def emitted_metrics(namespace: str, environment: str) -> dict[tuple, dict[str, set]]:
    """What the code writes as EMF: {(namespace, metric, dimension names): {dimension:
    values seen}}, from RequestMetrics and the cache counters as the service runs them."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    metrics_logger = logging.getLogger(METRICS_LOGGER)
    previous_level = metrics_logger.level
    metrics_logger.addHandler(handler)
    metrics_logger.setLevel(logging.INFO)
    try:
        request_metrics = RequestMetrics(namespace=namespace, environment=environment)
        for status in STATUSES:
            for cache_status in (*CACHE_STATUS_METRICS, None):
                request_metrics.add(
                    RequestMeasurement("GET item-detail", status, 3.5, 1, cache_status)
                )
        request_metrics.flush()
        reporter = CacheCounterReporter(cache_stats, interval_seconds=0)
        reporter.maybe_emit(namespace=namespace, environment=environment)
    finally:
        metrics_logger.removeHandler(handler)
        metrics_logger.setLevel(previous_level)

    emitted: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for line in lines:
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    key = (directive["Namespace"], metric["Name"], frozenset(dimension_set))
                    for dimension in dimension_set:
                        emitted[key][dimension].add(record[dimension])
    return emitted


def log_metrics(template: dict, resolve: Resolver) -> set[tuple[str, str]]:
    """(namespace, metric) of the metrics the template's log metric filters produce."""
    return {
        (resolve(t["MetricNamespace"]), t["MetricName"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Logs::MetricFilter"
        for t in r["Properties"]["MetricTransformations"]
    }


# --- The metrics exist ----------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_service_metric_watched_is_one_the_code_emits_with_those_dimensions(
    template, metrics_namespace, environment
):
    resolve = Resolver(template, environment, metrics_namespace)
    emitted = emitted_metrics(metrics_namespace, environment)
    from_logs = log_metrics(template, resolve)

    unknown = []
    checked = 0
    for namespace, metric, dimensions, where in used_metrics(template, resolve):
        if namespace in AWS_NAMESPACES or (namespace, metric) in from_logs:
            continue
        checked += 1
        seen = emitted.get((namespace, metric, frozenset(dimensions)))
        values_unseen = {
            name: value
            for name, value in dimensions.items()
            if seen is None or (value != "*" and value not in seen[name])
        }
        if seen is None or values_unseen:
            unknown.append((where, namespace, metric, values_unseen or dimensions))

    assert unknown == []
    assert checked >= 10  # the alarms and widgets above were all looked at


def test_the_check_above_notices_a_metric_the_code_does_not_emit(template, metrics_namespace):
    emitted = emitted_metrics(metrics_namespace, "test")

    assert (metrics_namespace, "Requests", frozenset({"Environment", "StatusClass"})) in emitted
    assert (metrics_namespace, "Requests", frozenset({"Environment", "Route"})) not in emitted
    assert (metrics_namespace, "CacheEngineErrors", frozenset({"Environment"})) not in emitted
    assert (
        "5xx"
        in emitted[(metrics_namespace, "Requests", frozenset({"Environment", "StatusClass"}))][
            "StatusClass"
        ]
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_metric_is_in_a_namespace_the_service_or_its_dependencies_write(
    template, metrics_namespace, environment
):
    resolve = Resolver(template, environment, metrics_namespace)
    allowed = AWS_NAMESPACES | {metrics_namespace} | {n for n, _ in log_metrics(template, resolve)}

    namespaces = {namespace for namespace, *_ in used_metrics(template, resolve)}

    assert namespaces <= allowed


def test_the_metrics_namespace_is_the_one_the_service_is_given(template, metrics_namespace):
    assert template["Parameters"]["MetricsNamespace"]["Default"] == metrics_namespace


def test_the_database_unavailable_filter_matches_the_line_the_503_writes(template, caplog):
    pattern = template["Resources"]["DatabaseUnavailableMetricFilter"]["Properties"]
    fields = dict(LOG_FIELD.findall(pattern["FilterPattern"]))
    renamed = json_formatter()["rename_fields"]

    with caplog.at_level(logging.WARNING):
        response = database_unavailable(OperationalError("could not connect to server"))

    (record,) = [r for r in caplog.records if r.getMessage().startswith("Database")]
    written = {renamed.get("name", "name"): record.name, "message": record.getMessage()}
    assert response.status_code == 503
    assert set(fields) == {"logger", "message"}
    assert written["logger"] == fields["logger"]
    assert fields["message"].endswith("*")
    assert written["message"].startswith(fields["message"].removesuffix("*"))


@pytest.mark.django_db
def test_the_saved_queries_read_only_fields_the_log_lines_have(template, client, caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.get("/api/items/1/")
    (access,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    renamed = json_formatter()["rename_fields"]
    # Every line's fields (log_config.json_formatter) plus the access line's own.
    available = {*renamed.values(), "message", "request_id", *vars(access)} - {"name", "levelname"}
    queries = {
        name: r["Properties"]["QueryString"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Logs::QueryDefinition"
    }

    unknown = {}
    for name, query in queries.items():
        code = re.sub(r'"[^"]*"', "", query)
        words = set(IDENTIFIER.findall(code)) - INSIGHTS_WORDS - set(ALIAS.findall(code))
        if words - available:
            unknown[name] = words - available

    assert len(queries) == 4
    assert unknown == {}


# --- The resources it names exist --------------------------------------------------------------


def test_the_parameters_file_passes_only_declared_parameters_from_the_service_stack(template):
    passed = load_template(PARAMETERS_PATH)["Parameters"]
    declared = template["Parameters"]
    without_default = {name for name, p in declared.items() if "Default" not in p}

    referenced = {
        next(iter(value.values())) if "Ref" in value else value["Fn::GetAtt"][0]
        for value in passed.values()
    }

    assert set(passed) <= set(declared)
    assert set(passed).isdisjoint(RESERVED_PARAMETERS)
    assert without_default <= set(passed) | RESERVED_PARAMETERS
    assert referenced <= SERVICE_STACK_RESOURCES


def test_every_import_is_an_export_of_the_environment_stack_or_its_addons(template):
    resolve = Resolver(template, "test", "unused")
    addon_exports = set(merged_addons()["Outputs"])
    prefix = f"{application_name()}-test-"

    imports = set(re.findall(r"import:([\w-]+)", json.dumps(resolve(template["Resources"]))))
    names = {name.removeprefix(prefix) for name in imports}

    assert all(name.startswith(prefix) for name in imports)
    assert names <= ENVIRONMENT_STACK_EXPORTS | addon_exports
    assert {"PublicLoadBalancerFullName", "ClusterId", "DBSecret"} <= names


def test_the_database_is_found_through_the_field_its_secret_attachment_adds(template):
    text = json.dumps(template["Resources"])

    fields = set(re.findall(r"SecretString:(\w+)\}\}", text))

    assert fields == {"dbClusterIdentifier"}
    assert fields <= ATTACHMENT_FIELDS


def test_the_cache_nodes_are_those_of_the_environments_replication_group(template):
    redis = load_template(ENV_ADDONS_DIR / "redis.yml")
    group = redis["Resources"]["ReplicationGroup"]["Properties"]["ReplicationGroupId"]["Fn::Sub"]
    text = json.dumps(template["Resources"])

    nodes = set(re.findall(r"\$\{App\}-\$\{Env\}-cache-\d+", text))

    assert nodes == {f"{group}-001", f"{group}-002"}


# --- Every alarm reaches someone --------------------------------------------------------------


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(template):
    without = [
        name
        for name, alarm in alarms(template, "prod").items()
        if alarm["Properties"].get("AlarmActions") != [{"Ref": "AlarmTopic"}]
        or alarm["Properties"].get("OKActions") != [{"Ref": "AlarmTopic"}]
    ]

    assert len(alarms(template, "prod")) >= 20
    assert without == []


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(template):
    resources = template["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    key = resources[topic["KmsMasterKeyId"]["Ref"]]

    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]

    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert [set(s["Action"]) for s in cloudwatch] == [{"kms:Decrypt", "kms:GenerateDataKey*"}]


def test_the_subscription_comes_from_parameters_and_is_optional(template):
    subscription = template["Resources"]["AlarmTopicSubscription"]

    assert subscription["Condition"] == "HasSubscription"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmSubscriptionEndpoint"}
    assert template["Parameters"]["AlarmSubscriptionEndpoint"]["Default"] == ""


def test_replica_lag_is_watched_only_in_prod_where_the_data_tier_has_replicas(template):
    only_in_prod = set(alarms(template, "prod")) - set(alarms(template, "test"))

    assert only_in_prod == {"DBReplicaLagAlarm", "CacheReplicationLagAlarm"}


# --- Rollback ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rollback_alarm_names_resolve_to_alarms_of_the_addon_in_every_environment(
    template, metrics_namespace, environment
):
    manifest = per_environment(workload_manifest(SERVICE), environment)
    resolve = Resolver(template, environment, metrics_namespace)
    predefined = {
        "COPILOT_APPLICATION_NAME": application_name(),
        "COPILOT_ENVIRONMENT_NAME": environment,
    }
    names = [
        re.sub(r"\$\{(\w+)\}", lambda m: predefined[m.group(1)], name)
        for name in manifest["deployment"]["rollback_alarms"]
    ]
    by_name = {
        resolve(a["Properties"]["AlarmName"]): a for a in alarms(template, environment).values()
    }

    watched = {m["MetricName"] for name in names for m in alarm_metrics(by_name[name])}

    assert set(names) <= set(by_name)
    assert watched == {"HTTPCode_Target_5XX_Count", "RequestCount", "TargetResponseTime"}


def test_alarm_names_are_unique_and_carry_the_app_env_and_service(template, metrics_namespace):
    resolve = Resolver(template, "prod", metrics_namespace)
    names = [resolve(a["Properties"]["AlarmName"]) for a in alarms(template, "prod").values()]

    assert len(names) == len(set(names))
    assert all(n.startswith(f"{application_name()}-prod-{SERVICE}-") for n in names)


def test_the_dashboard_shows_every_alarm_that_exists_in_every_environment(template):
    resolve = Resolver(template, "test", "unused")
    shown = set(dashboard(template, resolve)["widgets"][0]["properties"]["alarms"])

    expected = {f"ref:{name}.Arn" for name in alarms(template, "test")}

    assert shown == expected


def test_the_template_path_is_what_copilot_reads_for_the_service():
    assert Path(TEMPLATE_PATH).parent == COPILOT_DIR / SERVICE / "addons"


def test_every_alarm_links_to_a_runbook_section_named_after_it(template, metrics_namespace):
    guide = (COPILOT_DIR.parent / "docs" / "scaling.md").read_text()
    sections = set(re.findall(r"^### ([a-z0-9-]+)$", guide, re.M))
    resolve = Resolver(template, "prod", metrics_namespace)
    prefix = f"{application_name()}-prod-{SERVICE}-"

    links = {
        resolve(a["Properties"]["AlarmName"]).removeprefix(prefix): re.findall(
            r"docs/scaling\.md#([a-z0-9-]+)", a["Properties"]["AlarmDescription"]
        )
        for a in alarms(template, "prod").values()
    }

    assert links == {name: [name] for name in links}
    assert set(links) <= sections


# --- Log retention -----------------------------------------------------------------------------


class FakeLogs:
    """CloudWatch Logs (the outside world): its groups, paged, and the retention calls."""

    def __init__(self, groups: dict[str, int | None], *, failing: bool = False):
        self.groups = groups
        self.failing = failing

    def get_paginator(self, operation: str):
        assert operation == "describe_log_groups"
        return types.SimpleNamespace(paginate=self.pages)

    def pages(self, *, logGroupNamePrefix: str):
        if self.failing:
            raise RuntimeError("AccessDenied")
        found = [
            {"logGroupName": name, **({"retentionInDays": days} if days else {})}
            for name, days in self.groups.items()
            if name.startswith(logGroupNamePrefix)
        ]
        yield {"logGroups": found[:1]}
        yield {"logGroups": found[1:]}

    def put_retention_policy(self, *, logGroupName: str, retentionInDays: int):
        self.groups[logGroupName] = retentionInDays


def retention_handler(template: dict, logs: FakeLogs):
    """The custom resource's inline function, with boto3 and cfnresponse replaced."""
    code = template["Resources"]["LogRetentionFunction"]["Properties"]["Code"]["ZipFile"]
    responses: list[tuple[str, dict]] = []
    cfnresponse = types.SimpleNamespace(
        SUCCESS="SUCCESS",
        FAILED="FAILED",
        send=lambda event, context, status, data, physical_id: responses.append((status, data)),
    )
    boto3 = types.SimpleNamespace(client=lambda service: logs)
    namespace: dict = {}
    with patch.dict(sys.modules, {"boto3": boto3, "cfnresponse": cfnresponse}):
        exec(compile(code, "index.py", "exec"), namespace)
    return namespace["handler"], responses


def retention_event(template: dict, request_type: str) -> dict:
    resolve = Resolver(template, "test", "unused")
    properties = resolve(template["Resources"]["LogRetention"]["Properties"])
    return {"RequestType": request_type, "ResourceProperties": {**properties, "Days": "30"}}


def test_log_groups_without_retention_under_the_prefixes_get_one_and_no_others(template):
    event = retention_event(template, "Update")
    lambda_prefix, database_prefix = event["ResourceProperties"]["Prefixes"]
    logs = FakeLogs(
        {
            f"{lambda_prefix}EnvControllerFunction-AB12": None,
            f"{lambda_prefix}api-RulePriorityFunction-CD34": None,
            f"{lambda_prefix}api-DynamicDesiredCountFunction-EF56": 3,
            f"{database_prefix}postgresql": None,
            "/aws/lambda/another-app-Function": None,
        }
    )
    handler, responses = retention_handler(template, logs)

    handler(event, None)

    assert logs.groups == {
        f"{lambda_prefix}EnvControllerFunction-AB12": 30,
        f"{lambda_prefix}api-RulePriorityFunction-CD34": 30,
        f"{lambda_prefix}api-DynamicDesiredCountFunction-EF56": 3,
        f"{database_prefix}postgresql": 30,
        "/aws/lambda/another-app-Function": None,
    }
    assert [status for status, _ in responses] == ["SUCCESS"]


def test_log_retention_does_nothing_on_delete_and_reports_a_failure_as_one(template):
    logs = FakeLogs({"/aws/lambda/items-test-EnvControllerFunction-AB12": None}, failing=True)
    handler, responses = retention_handler(template, logs)

    handler(retention_event(template, "Delete"), None)
    handler(retention_event(template, "Create"), None)

    assert [status for status, _ in responses] == ["SUCCESS", "FAILED"]


def test_the_retention_function_may_touch_exactly_the_groups_it_looks_for(template):
    resolve = Resolver(template, "test", "unused")
    prefixes = resolve(template["Resources"]["LogRetention"]["Properties"]["Prefixes"])
    role = resolve(template["Resources"]["LogRetentionRole"]["Properties"])
    (statement,) = [
        s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
        if "logs:PutRetentionPolicy" in s["Action"]
    ]  # fmt: skip

    granted = [arn.split(":log-group:", 1)[1] for arn in statement["Resource"]]

    assert granted == [f"{prefix}*" for prefix in prefixes]
    # Copilot names its functions after the stacks, ${App}-${Env} and ${App}-${Env}-${Name}.
    assert prefixes[0] == f"/aws/lambda/{application_name()}-test-"
