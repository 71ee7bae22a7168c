"""CloudWatch alarms and a dashboard for the whole deployment, notifying one SNS topic."""

from aws_cdk import CfnCondition, CfnParameter, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from items_infra.api import Api
from items_infra.config import Deployment
from items_infra.data import Cache, Database
from items_infra.fargate import FargateService
from items_infra.lambda_tier import LambdaService

LESS = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD

FIVE_MINUTES = Duration.minutes(5)
# The service's own metrics (backend/observability/metrics.py): CloudWatch Embedded
# Metric Format records on stdout, under this namespace and an Environment dimension.
SERVICE_NAMESPACE = "ItemsApi"


class Monitoring(Construct):
    """Alarms that notify `topic`, and a dashboard: the stack calls one `watch_*` method per
    part of the deployment."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment):
        super().__init__(scope, construct_id)
        self.deployment = deployment
        key = kms.Key(self, "TopicKey", description="Alarm notifications", enable_key_rotation=True)
        key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
        self.topic = sns.Topic(self, "Alarms", master_key=key, enforce_ssl=True)
        email = CfnParameter(
            scope,
            "AlarmEmail",
            type="String",
            default=deployment.alarm_email,
            description="Address that receives alarm notifications (empty: none)",
        )
        subscription = sns.CfnSubscription(
            self,
            "AlarmEmailSubscription",
            topic_arn=self.topic.topic_arn,
            protocol="email",
            endpoint=email.value_as_string,
        )
        subscription.cfn_options.condition = CfnCondition(
            self, "HasAlarmEmail", expression=Fn.condition_not(Fn.condition_equals(email, ""))
        )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=deployment.name, default_interval=Duration.hours(3)
        )
        self.alarms: list[cloudwatch.Alarm] = []

    def add_alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        periods: int = 3,
        missing=cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = metric.create_alarm(
            self,
            construct_id,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def add_graphs(self, title: str, graphs: dict[str, list[cloudwatch.IMetric]]) -> None:
        """A dashboard row: a heading, then one graph per entry."""
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"### {title}", width=24, height=1)
        )
        self.dashboard.add_widgets(
            *[
                cloudwatch.GraphWidget(title=name, left=metrics, width=24 // len(graphs))
                for name, metrics in graphs.items()
            ]
        )

    def service_metric(
        self, name: str, statistic: str = "Sum", **dimensions: str
    ) -> cloudwatch.Metric:
        """One of the service's own EMF metrics (`dimensions` beside Environment)."""
        return cloudwatch.Metric(
            namespace=SERVICE_NAMESPACE,
            metric_name=name,
            dimensions_map={"Environment": self.deployment.environment, **dimensions},
            statistic=statistic,
            period=FIVE_MINUTES,
        )

    def watch_api(self, api: Api) -> None:
        api = api.http_api
        errors, requests = api.metric_server_error(), api.metric_count()
        error_rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"errors": errors, "requests": requests},
            label="5xx %",
            period=Duration.minutes(5),
        )
        latency = api.metric_latency(statistic="p99")
        self.add_alarm("Api5xxRate", error_rate, threshold=1, description="API 5xx above 1 %")
        self.add_alarm(
            "ApiLatencyP99", latency, threshold=2000, description="API p99 latency above 2 s"
        )
        self.add_graphs(
            "API Gateway",
            {"Requests": [requests], "5xx %": [error_rate], "Latency p99 (ms)": [latency]},
        )

    def watch_fargate(self, fargate: FargateService) -> None:
        cpu = fargate.service.metric_cpu_utilization()
        memory = fargate.service.metric_memory_utilization()
        target_5xx = fargate.load_balancer.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT
        )
        unhealthy = fargate.target_group.metrics.unhealthy_host_count()
        running = cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map={
                "ClusterName": fargate.cluster.cluster_name,
                "ServiceName": fargate.service.service_name,
            },
            statistic="Minimum",
            period=Duration.minutes(1),
        )
        self.add_alarm("TaskCpu", cpu, threshold=85, description="Task CPU above 85 %")
        self.add_alarm("TaskMemory", memory, threshold=85, description="Task memory above 85 %")
        self.add_alarm("Target5xx", target_5xx, threshold=10, description="Tasks' 5xx")
        self.add_alarm(
            "UnhealthyTasks", unhealthy, threshold=0, description="A task fails /healthz"
        )
        self.add_alarm(
            "TasksBelowMinimum",
            running,
            threshold=self.deployment.fargate_min_tasks,
            comparison=LESS,
            periods=5,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description="Fewer tasks running than the minimum",
        )
        self.add_graphs(
            "Fargate",
            {"CPU %": [cpu], "Memory %": [memory], "Tasks": [running], "5xx": [target_5xx]},
        )

    def watch_lambda(self, service: LambdaService) -> None:
        function = service.function
        errors = function.metric_errors()
        throttles = function.metric_throttles()
        concurrency = function.metric("ConcurrentExecutions", statistic="Maximum")
        duration = function.metric_duration(statistic="p99")
        self.add_alarm("FunctionErrors", errors, threshold=5, description="Lambda errors")
        self.add_alarm(
            "FunctionThrottles", throttles, threshold=0, description="Lambda throttled calls"
        )
        if reserved := self.deployment.lambda_reserved_concurrency:
            self.add_alarm(
                "FunctionConcurrency",
                concurrency,
                threshold=0.8 * reserved,
                description="Concurrency above 80 % of the reserved concurrency",
            )
        self.add_graphs(
            "Lambda",
            {
                "Errors": [errors],
                "Throttles": [throttles],
                "Concurrency": [concurrency],
                "Duration p99 (ms)": [duration],
            },
        )

    def watch_data(self, database: Database, cache: Cache) -> None:
        cluster = database.cluster
        capacity = cluster.metric_serverless_database_capacity(statistic="Maximum")
        connections = cluster.metric_database_connections(statistic="Maximum")
        db_cpu = cluster.metric_cpu_utilization()
        self.add_alarm(
            "DatabaseCapacity",
            capacity,
            threshold=0.9 * self.deployment.db_max_acu,
            description="Aurora at 90 % of its maximum ACUs",
        )
        self.add_alarm(
            "DatabaseConnections",
            connections,
            threshold=self.deployment.db_connections_alarm,
            description="Aurora connections near the limit",
        )
        self.add_alarm("DatabaseCpu", db_cpu, threshold=80, description="Aurora CPU above 80 %")
        redis = {
            name: cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                # The primary node of the replication group.
                dimensions_map={
                    "CacheClusterId": Fn.join("-", [cache.replication_group.ref, "001"])
                },
                statistic=statistic,
                period=Duration.minutes(5),
            )
            for name, statistic in {
                "EngineCPUUtilization": "Average",
                "DatabaseMemoryUsagePercentage": "Maximum",
                "Evictions": "Sum",
                "CurrConnections": "Maximum",
            }.items()
        }
        self.add_alarm(
            "CacheCpu", redis["EngineCPUUtilization"], threshold=80, description="Redis CPU"
        )
        self.add_alarm(
            "CacheMemory",
            redis["DatabaseMemoryUsagePercentage"],
            threshold=85,
            description="Redis memory above 85 %",
        )
        self.add_alarm(
            "CacheEvictions",
            redis["Evictions"],
            threshold=1000,
            description="Redis evicting entries: the node is too small for the TTLs",
        )
        self.add_alarm(
            "CacheConnections",
            redis["CurrConnections"],
            threshold=5000,
            description="Redis connections far above what the tasks keep",
        )
        self.add_graphs(
            "Aurora", {"ACUs": [capacity], "Connections": [connections], "CPU %": [db_cpu]}
        )
        self.add_graphs("ElastiCache", {name: [metric] for name, metric in redis.items()})

    def watch_service_metrics(self) -> None:
        hits = self.service_metric("CacheEngineHit")
        misses = self.service_metric("CacheEngineMiss")
        errors = self.service_metric("CacheEngineError")
        hit_ratio = cloudwatch.MathExpression(
            expression="IF(hits + misses > 100, 100 * hits / (hits + misses), 100)",
            using_metrics={"hits": hits, "misses": misses},
            label="Cache hit %",
            period=Duration.minutes(5),
        )
        self.add_alarm(
            "CacheHitRatio",
            hit_ratio,
            threshold=50,
            comparison=LESS,
            periods=6,
            description="Fewer than half the item reads are cache hits",
        )
        self.add_alarm(
            "CacheErrors",
            errors,
            threshold=0,
            description="The service cannot reach Redis (its circuit breaker opens)",
        )
        server_errors = self.service_metric("Requests", StatusClass="5xx")
        latency = self.service_metric("Latency", "p99", StatusClass="2xx")
        self.add_graphs(
            "The service's own metrics",
            {
                "Cache hit %": [hit_ratio],
                "Cache errors": [errors],
                "5xx answers": [server_errors],
                "Latency p99 (ms)": [latency],
            },
        )
