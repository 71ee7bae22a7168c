"""The Fargate tier: the project's Dockerfile behind an internal load balancer."""

from pathlib import Path

from aws_cdk import ArnFormat, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from items_infra.config import PROJECT_ROOT, Deployment
from items_infra.network import Network

CONTAINER = "api"
PORT = 8000


class FargateService(Construct):
    """gunicorn tasks in the private subnets, an internal ALB for API Gateway's VPC link,
    autoscaling on CPU and requests, and migrations run once per deploy before the new
    tasks start."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        network: Network,
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=deployment.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            # What an operator types in a task (ECS Exec) is kept beside the service's log.
            execute_command_configuration=ecs.ExecuteCommandConfiguration(
                logging=ecs.ExecuteCommandLogging.OVERRIDE,
                log_configuration=ecs.ExecuteCommandLogConfiguration(
                    cloud_watch_log_group=self.log_group
                ),
            ),
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=deployment.fargate_cpu,
            memory_limit_mib=deployment.fargate_memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.container = self.task_definition.add_container(
            CONTAINER,
            image=ecs.ContainerImage.from_docker_image_asset(
                ecr_assets.DockerImageAsset(
                    self,
                    "Image",
                    directory=str(PROJECT_ROOT),
                    platform=ecr_assets.Platform.LINUX_AMD64,
                )
            ),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            environment={**environment, "WEB_CONCURRENCY": str(deployment.gunicorn_workers)},
            secrets=secrets,
            logging=ecs.LogDriver.aws_logs(stream_prefix=CONTAINER, log_group=self.log_group),
            health_check=ecs.HealthCheck(
                command=["CMD", "/app/bin/healthcheck"],
                interval=Duration.seconds(10),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(20),
            ),
            # ECS waits this long after SIGTERM: gunicorn's graceful_timeout (20 s) fits.
            stop_timeout=Duration.seconds(30),
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, description="The Fargate tasks of the API"
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=deployment.fargate_min_tasks,
            vpc_subnets=network.compute_subnets,
            security_groups=[self.security_group],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            health_check_grace_period=Duration.seconds(30),
            # `aws ecs execute-command` into a task: createsuperuser, drf_create_token.
            enable_execute_command=True,
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            internet_facing=False,
            vpc_subnets=network.compute_subnets,
            drop_invalid_header_fields=True,
        )
        # Plain HTTP inside the VPC: TLS ends at API Gateway, whose VPC link is the only
        # client the load balancer's security group admits.
        self.listener = self.load_balancer.add_listener("Http", port=80, open=False)
        self.target_group = self.listener.add_targets(
            "Tasks",
            port=PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path="/healthz",
                healthy_http_codes="200",
                interval=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
        self._autoscale(deployment)
        self._migrate_before_the_service_starts(deployment, network)

    def _autoscale(self, deployment: Deployment) -> None:
        scaling = self.service.auto_scale_task_count(
            min_capacity=deployment.fargate_min_tasks, max_capacity=deployment.fargate_max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=60,
            scale_in_cooldown=Duration.seconds(120),
            scale_out_cooldown=Duration.seconds(60),
        )
        scaling.scale_on_request_count(
            "Requests",
            requests_per_target=deployment.requests_per_task_minute,
            target_group=self.target_group,
        )

    def _migrate_before_the_service_starts(self, deployment: Deployment, network: Network) -> None:
        code = lambda_.Code.from_asset(str(Path(__file__).parent / "migrations_runner"))
        migrate_logs = logs.LogGroup(
            self,
            "MigrateLogs",
            retention=deployment.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        handlers = {
            name: lambda_.Function(
                self,
                f"Migrate{name.title().replace('_', '')}",
                runtime=lambda_.Runtime.PYTHON_3_14,
                handler=f"index.{name}",
                code=code,
                timeout=Duration.seconds(30),
                log_group=migrate_logs,
            )
            for name in ("on_event", "is_complete")
        }
        for handler in handlers.values():
            handler.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["ecs:DescribeTasks"],
                    resources=[
                        Stack.of(self).format_arn(
                            service="ecs",
                            resource="task",
                            resource_name=f"{self.cluster.cluster_name}/*",
                            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                        )
                    ],
                )
            )
            self.task_definition.grant_run(handler)
        self.migrate_handlers = list(handlers.values())
        self.migrate_provider = provider = cr.Provider(
            self,
            "MigrateProvider",
            on_event_handler=handlers["on_event"],
            is_complete_handler=handlers["is_complete"],
            query_interval=Duration.seconds(10),
            total_timeout=Duration.minutes(30),
            log_group=migrate_logs,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=migrate_logs, level=sfn.LogLevel.ALL
            ),
        )
        self.migrate = CustomResource(
            self,
            "Migrate",
            service_token=provider.service_token,
            properties={
                "Cluster": self.cluster.cluster_arn,
                # A new revision (a new image, new settings) runs the migrations again.
                "TaskDefinition": self.task_definition.task_definition_arn,
                "Container": CONTAINER,
                "Subnets": network.compute_subnet_ids,
                "SecurityGroups": [self.security_group.security_group_id],
            },
        )
        # The one-off task pulls the image and reads the secrets with the execution role.
        self.migrate.node.add_dependency(self.task_definition.obtain_execution_role())
        self.service.node.add_dependency(self.migrate)
