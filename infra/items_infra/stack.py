"""One stack: the network, the data tier, one compute tier, the API and its monitoring."""

from aws_cdk import CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from items_infra.api import Api
from items_infra.config import Deployment, Tier
from items_infra.data import Cache, Database
from items_infra.fargate import FargateService
from items_infra.lambda_tier import LambdaService
from items_infra.monitoring import Monitoring
from items_infra.network import Network
from items_infra.service_settings import service_environment

LESS = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


class ItemsApiStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        self.deployment = deployment
        self.network = Network(self, "Network", deployment=deployment)
        self.database = Database(self, "Database", deployment=deployment, network=self.network)
        self.cache = Cache(self, "Cache", deployment=deployment, network=self.network)
        self.django_secret_key = secretsmanager.Secret(
            self,
            "DjangoSecretKey",
            description="DJANGO_SECRET_KEY",
            encryption_key=kms.Key(
                self,
                "DjangoSecretKeyKey",
                description="DJANGO_SECRET_KEY",
                enable_key_rotation=True,
            ),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.api = Api(self, "Api", deployment=deployment)
        self.monitoring = Monitoring(self, "Monitoring", deployment=deployment)
        environment = service_environment(
            deployment,
            cache=self.cache,
            allowed_hosts=[self.api.domain],
            api_origin=f"https://{self.api.domain}",
        )
        if deployment.tier is Tier.FARGATE:
            compute = self._fargate(environment)
        else:
            compute = self._lambda(environment)
        self.compute = compute
        self._watch_api()
        self._watch_data()
        self._watch_service_metrics()

    # --- Compute ------------------------------------------------------------------

    def _fargate(self, environment: dict[str, str]) -> FargateService:
        secrets = {
            "DJANGO_SECRET_KEY": ecs.Secret.from_secrets_manager(self.django_secret_key),
            "DB_SECRET": ecs.Secret.from_secrets_manager(self.database.secret),
            "REDIS_AUTH_TOKEN": ecs.Secret.from_secrets_manager(self.cache.auth_token),
        }
        fargate = FargateService(
            self,
            "Fargate",
            deployment=self.deployment,
            network=self.network,
            environment={
                **environment,
                "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Items-Forwarded-Proto",
            },
            secrets=secrets,
        )
        CfnOutput(self, "Cluster", value=fargate.cluster.cluster_name, description="ECS Exec")
        self._reach_data_from(fargate.security_group)
        fargate.migrate.node.add_dependency(self.database.cluster, self.cache.replication_group)
        link = self.api.through_vpc_link(
            fargate.listener, vpc=self.network.vpc, subnets=self.network.compute_subnets
        )
        fargate.load_balancer.connections.allow_from(link, ec2.Port.tcp(80), "API Gateway")
        self._watch_fargate(fargate)
        return fargate

    def _lambda(self, environment: dict[str, str]) -> LambdaService:
        # A sandbox per concurrent request holds a connection each: RDS Proxy pools them
        # (docs/lambda.md, "Database connections").
        proxy = self.database.cluster.add_proxy(
            "Proxy",
            secrets=[self.database.secret],
            vpc=self.network.vpc,
            vpc_subnets=self.network.data_subnets,
            require_tls=True,
            debug_logging=False,
        )
        service = LambdaService(
            self,
            "Lambda",
            deployment=self.deployment,
            network=self.network,
            environment={**environment, "DB_HOST": proxy.endpoint},
            secrets={
                "DJANGO_SECRET_KEY": self.django_secret_key,
                "DB_SECRET": self.database.secret,
                "REDIS_AUTH_TOKEN": self.cache.auth_token,
            },
        )
        self.cache.allow_from(service.security_group)
        for group in proxy.connections.security_groups:
            group.add_ingress_rule(
                service.security_group, ec2.Port.tcp(5432), "PostgreSQL from the functions"
            )
        self.database.cluster.connections.allow_default_port_from(proxy, "RDS Proxy")
        service.migrate.node.add_dependency(
            self.database.cluster, proxy, self.cache.replication_group
        )
        self.api.route_to(integrations.HttpLambdaIntegration("Function", service.function))
        CfnOutput(
            self,
            "ManageFunction",
            value=service.migrate_function.function_name,
            description="Migrations and operator commands (docs/deploy-cdk.md)",
        )
        self._watch_lambda(service)
        return service

    def _reach_data_from(self, security_group: ec2.SecurityGroup) -> None:
        self.database.cluster.connections.allow_default_port_from(
            security_group, "PostgreSQL from the compute tier"
        )
        self.cache.allow_from(security_group)

    # --- Monitoring -----------------------------------------------------------------

    def _watch_api(self) -> None:
        api = self.api.http_api
        errors, requests = api.metric_server_error(), api.metric_count()
        error_rate = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={"errors": errors, "requests": requests},
            label="5xx %",
            period=Duration.minutes(5),
        )
        latency = api.metric_latency(statistic="p99")
        watch = self.monitoring
        watch.add_alarm("Api5xxRate", error_rate, threshold=1, description="API 5xx above 1 %")
        watch.add_alarm(
            "ApiLatencyP99", latency, threshold=2000, description="API p99 latency above 2 s"
        )
        watch.add_graphs(
            "API Gateway",
            {"Requests": [requests], "5xx %": [error_rate], "Latency p99 (ms)": [latency]},
        )

    def _watch_fargate(self, fargate: FargateService) -> None:
        watch = self.monitoring
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
        watch.add_alarm("TaskCpu", cpu, threshold=85, description="Task CPU above 85 %")
        watch.add_alarm("TaskMemory", memory, threshold=85, description="Task memory above 85 %")
        watch.add_alarm("Target5xx", target_5xx, threshold=10, description="Tasks' 5xx")
        watch.add_alarm(
            "UnhealthyTasks", unhealthy, threshold=0, description="A task fails /healthz"
        )
        watch.add_alarm(
            "TasksBelowMinimum",
            running,
            threshold=self.deployment.fargate_min_tasks,
            comparison=LESS,
            periods=5,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description="Fewer tasks running than the minimum",
        )
        watch.add_graphs(
            "Fargate",
            {"CPU %": [cpu], "Memory %": [memory], "Tasks": [running], "5xx": [target_5xx]},
        )

    def _watch_lambda(self, service: LambdaService) -> None:
        function = service.function
        watch = self.monitoring
        errors = function.metric_errors()
        throttles = function.metric_throttles()
        concurrency = function.metric("ConcurrentExecutions", statistic="Maximum")
        duration = function.metric_duration(statistic="p99")
        watch.add_alarm("FunctionErrors", errors, threshold=5, description="Lambda errors")
        watch.add_alarm(
            "FunctionThrottles", throttles, threshold=0, description="Lambda throttled calls"
        )
        watch.add_alarm(
            "FunctionConcurrency",
            concurrency,
            threshold=0.8 * self.deployment.lambda_reserved_concurrency,
            description="Concurrency above 80 % of the reserved concurrency",
        )
        watch.add_graphs(
            "Lambda",
            {
                "Errors": [errors],
                "Throttles": [throttles],
                "Concurrency": [concurrency],
                "Duration p99 (ms)": [duration],
            },
        )

    def _watch_data(self) -> None:
        watch = self.monitoring
        cluster = self.database.cluster
        capacity = cluster.metric_serverless_database_capacity(statistic="Maximum")
        connections = cluster.metric_database_connections(statistic="Maximum")
        db_cpu = cluster.metric_cpu_utilization()
        watch.add_alarm(
            "DatabaseCapacity",
            capacity,
            threshold=0.9 * self.deployment.db_max_acu,
            description="Aurora at 90 % of its maximum ACUs",
        )
        watch.add_alarm(
            "DatabaseConnections",
            connections,
            threshold=self.deployment.db_connections_alarm,
            description="Aurora connections near the limit",
        )
        watch.add_alarm("DatabaseCpu", db_cpu, threshold=80, description="Aurora CPU above 80 %")
        redis = {
            name: cloudwatch.Metric(
                namespace="AWS/ElastiCache",
                metric_name=name,
                # The primary node of the replication group.
                dimensions_map={
                    "CacheClusterId": Fn.join("-", [self.cache.replication_group.ref, "001"])
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
        watch.add_alarm(
            "CacheCpu", redis["EngineCPUUtilization"], threshold=80, description="Redis CPU"
        )
        watch.add_alarm(
            "CacheMemory",
            redis["DatabaseMemoryUsagePercentage"],
            threshold=85,
            description="Redis memory above 85 %",
        )
        watch.add_alarm(
            "CacheEvictions",
            redis["Evictions"],
            threshold=1000,
            description="Redis evicting entries: the node is too small for the TTLs",
        )
        watch.add_alarm(
            "CacheConnections",
            redis["CurrConnections"],
            threshold=5000,
            description="Redis connections far above what the tasks keep",
        )
        watch.add_graphs(
            "Aurora", {"ACUs": [capacity], "Connections": [connections], "CPU %": [db_cpu]}
        )
        watch.add_graphs("ElastiCache", {name: [metric] for name, metric in redis.items()})

    def _watch_service_metrics(self) -> None:
        watch = self.monitoring
        hits = watch.service_metric("CacheEngineHit")
        misses = watch.service_metric("CacheEngineMiss")
        errors = watch.service_metric("CacheEngineError")
        hit_ratio = cloudwatch.MathExpression(
            expression="IF(hits + misses > 100, 100 * hits / (hits + misses), 100)",
            using_metrics={"hits": hits, "misses": misses},
            label="Cache hit %",
            period=Duration.minutes(5),
        )
        watch.add_alarm(
            "CacheHitRatio",
            hit_ratio,
            threshold=50,
            comparison=LESS,
            periods=6,
            description="Fewer than half the item reads are cache hits",
        )
        watch.add_alarm(
            "CacheErrors",
            errors,
            threshold=0,
            description="The service cannot reach Redis (its circuit breaker opens)",
        )
        server_errors = watch.service_metric("Requests", StatusClass="5xx")
        latency = watch.service_metric("Latency", "p99", StatusClass="2xx")
        watch.add_graphs(
            "The service's own metrics",
            {
                "Cache hit %": [hit_ratio],
                "Cache errors": [errors],
                "5xx answers": [server_errors],
                "Latency p99 (ms)": [latency],
            },
        )
