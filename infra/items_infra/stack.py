"""One stack: the network, the data tier, one compute tier, the API and its monitoring."""

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
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
        self.monitoring.watch_api(self.api)
        self.monitoring.watch_data(self.database, self.cache)
        self.monitoring.watch_service_metrics()

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
                # The headers API Gateway writes (api.py, backend/gateway_headers.py).
                "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Items-Forwarded-Proto",
                "API_CLIENT_IP_HEADER": "X-Items-Client-Ip",
                "DJANGO_HOST_HEADER": "X-Items-Forwarded-Host",
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
        self.monitoring.watch_fargate(fargate)
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
            value=service.manage_function.function_name,
            description="Migrations and operator commands (docs/deploy-cdk.md)",
        )
        self.monitoring.watch_lambda(service)
        return service

    def _reach_data_from(self, security_group: ec2.SecurityGroup) -> None:
        self.database.cluster.connections.allow_default_port_from(
            security_group, "PostgreSQL from the compute tier"
        )
        self.cache.allow_from(security_group)
