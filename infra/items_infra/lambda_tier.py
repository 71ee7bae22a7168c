"""The Lambda tier: the same image, run by the Lambda runtime interface client."""

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from items_infra.config import PROJECT_ROOT, Deployment
from items_infra.network import Network

# The project's Dockerfile, started by the runtime interface client instead of gunicorn.
ENTRYPOINT = ["/opt/venv/bin/python", "-m", "awslambdaric"]
HANDLER = "backend.lambda_handler.handler"
MANAGE_HANDLER = "backend.lambda_handler.manage"


class LambdaService(Construct):
    """The API function in the private subnets, its reserved concurrency, and a second
    function from the same image that runs the migrations once per deploy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: Deployment,
        network: Network,
        environment: dict[str, str],
        secrets: dict[str, secretsmanager.ISecret],
    ):
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=network.vpc, description="The Lambda functions of the API"
        )
        image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(PROJECT_ROOT),
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        # The handler reads each secret at cold start from its ARN (never from a plain
        # environment variable, which anyone allowed to read the function's settings sees).
        secret_arns = {f"{name}_ARN": secret.secret_arn for name, secret in secrets.items()}
        self.function = self._function(
            "Function",
            image,
            HANDLER,
            deployment=deployment,
            network=network,
            environment={**environment, **secret_arns},
            timeout=Duration.seconds(30),
            memory_mib=deployment.lambda_memory_mib,
            reserved_concurrency=deployment.lambda_reserved_concurrency,
        )
        self.manage_function = self._function(
            "ManageFunction",
            image,
            MANAGE_HANDLER,
            deployment=deployment,
            network=network,
            # A migration may rewrite a table: not under the service's 5 s statement limit.
            environment={**environment, **secret_arns, "DB_STATEMENT_TIMEOUT_MS": "0"},
            timeout=Duration.minutes(10),
            memory_mib=1024,
            reserved_concurrency=None,
        )
        for secret in secrets.values():
            secret.grant_read(self.function)
            secret.grant_read(self.manage_function)
        self.migrate_provider = provider = cr.Provider(
            self,
            "MigrateProvider",
            on_event_handler=self.manage_function,
            log_group=logs.LogGroup(
                self,
                "MigrateProviderLogs",
                retention=deployment.log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        self.migrate = CustomResource(
            self,
            "Migrate",
            service_token=provider.service_token,
            # A new image runs the migrations again, before the API function changes.
            properties={"Image": image.image_uri},
        )
        # The function itself, not its role: the role's grants reach the data tier's keys,
        # which the migration waits for.
        self.function.node.default_child.add_resource_dependency(self.migrate.node.default_child)

    def _function(
        self,
        construct_id: str,
        image: ecr_assets.DockerImageAsset,
        handler: str,
        *,
        deployment: Deployment,
        network: Network,
        environment: dict[str, str],
        timeout: Duration,
        memory_mib: int,
        reserved_concurrency: int | None,
    ) -> lambda_.DockerImageFunction:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=deployment.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        return lambda_.DockerImageFunction(
            self,
            construct_id,
            code=lambda_.DockerImageCode.from_ecr(
                image.repository,
                tag_or_digest=image.image_tag,
                entrypoint=ENTRYPOINT,
                cmd=[handler],
            ),
            architecture=lambda_.Architecture.X86_64,
            memory_size=memory_mib,
            timeout=timeout,
            reserved_concurrent_executions=reserved_concurrency,
            vpc=network.vpc,
            vpc_subnets=network.compute_subnets,
            security_groups=[self.security_group],
            environment=environment,
            log_group=log_group,
        )
