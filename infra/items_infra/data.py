"""The data tier: Aurora Serverless v2 PostgreSQL (the source of truth) and ElastiCache
Redis (the read cache and the throttle counters), both in the isolated subnets."""

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from items_infra.config import Deployment
from items_infra.network import Network

DATABASE_NAME = "items"
REDIS_PORT = 6379


def removal_policy(deployment: Deployment) -> RemovalPolicy:
    """Production keeps what holds data when the stack goes; test environments do not."""
    return RemovalPolicy.RETAIN if deployment.production else RemovalPolicy.DESTROY


def own_key(scope: Construct, deployment: Deployment, description: str) -> kms.Key:
    """A rotating KMS key for one store's data, kept with it in production."""
    return kms.Key(
        scope,
        "Key",
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy(deployment),
    )


class Database(Construct):
    """Aurora Serverless v2 PostgreSQL: its own KMS key, TLS forced, a generated secret."""

    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, network: Network
    ):
        super().__init__(scope, construct_id)
        self.key = own_key(self, deployment, "Aurora storage, snapshots and the database secret")
        readers = [
            rds.ClusterInstance.serverless_v2(f"reader{number}", scale_with_writer=True)
            for number in range(1, deployment.db_readers + 1)
        ]
        # Named, so its PostgreSQL log group can be made here, with a retention, before
        # RDS would make one that never expires.
        identifier = f"{deployment.name}-db".lower()
        postgresql_logs = logs.LogGroup(
            self,
            "PostgresqlLogs",
            log_group_name=f"/aws/rds/cluster/{identifier}/postgresql",
            retention=deployment.log_retention,
            removal_policy=removal_policy(deployment),
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=identifier,
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                # The Copilot addon's version (copilot/environments/addons/aurora.yml).
                version=rds.AuroraPostgresEngineVersion.of("17.11", "17")
            ),
            writer=rds.ClusterInstance.serverless_v2("writer"),
            readers=readers,
            serverless_v2_min_capacity=deployment.db_min_acu,
            serverless_v2_max_capacity=deployment.db_max_acu,
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(
                "items_owner", encryption_key=self.key
            ),
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            # Connections without TLS are refused by the server, not only by the client.
            parameters={"rds.force_ssl": "1"},
            backup=rds.BackupProps(retention=Duration.days(deployment.db_backup_days)),
            deletion_protection=deployment.production,
            removal_policy=(
                RemovalPolicy.SNAPSHOT if deployment.production else RemovalPolicy.DESTROY
            ),
            cloudwatch_logs_exports=["postgresql"],
            iam_authentication=True,
            enable_performance_insights=True,
            performance_insight_encryption_key=self.key,
        )
        self.cluster.node.add_dependency(postgresql_logs)
        Validations.of(self.cluster).acknowledge(
            Acknowledgment(
                id="CloudFormation-Validate::E9006",
                reason="Aurora PostgreSQL 17.11 is newer than the engine versions this "
                "aws-cdk-lib lists; cfn-lint's schema lists it (test_template_checks.py)",
            )
        )
        self.secret = self.cluster.secret


class Cache(Construct):
    """ElastiCache Redis, cluster mode disabled (the cache's scripts touch two keys of one
    shard), TLS and AUTH required, encrypted at rest, Multi-AZ with failover when it has
    a replica."""

    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: Deployment, network: Network
    ):
        super().__init__(scope, construct_id)
        self.key = own_key(self, deployment, "ElastiCache data at rest and the AUTH token")
        self.auth_token = secretsmanager.Secret(
            self,
            "AuthToken",
            description="ElastiCache AUTH token (REDIS_AUTH_TOKEN)",
            encryption_key=self.key,
            # ElastiCache accepts 16-128 printable characters but not @, " or /.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="ElastiCache Redis: reachable from the compute tier only",
            allow_all_outbound=False,
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="The isolated data subnets",
            subnet_ids=network.data_subnet_ids,
        )
        parameters = elasticache.CfnParameterGroup(
            self,
            "Parameters",
            cache_parameter_group_family="redis7",
            description="Evict the least recently used of the keys that expire",
            properties={"maxmemory-policy": "volatile-lru"},
        )
        with_replicas = deployment.cache_replicas > 0
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_description=f"{deployment.name} read cache",
            engine="redis",
            engine_version="7.1",
            cache_node_type=deployment.cache_node_type,
            num_cache_clusters=1 + deployment.cache_replicas,
            automatic_failover_enabled=with_replicas,
            multi_az_enabled=with_replicas,
            cache_subnet_group_name=subnets.ref,
            cache_parameter_group_name=parameters.ref,
            security_group_ids=[self.security_group.security_group_id],
            port=REDIS_PORT,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_id,
            transit_encryption_enabled=True,
            auth_token=self.auth_token.secret_value.unsafe_unwrap(),
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=1 if deployment.production else 0,
        )
        self.replication_group.apply_removal_policy(RemovalPolicy.DESTROY)
        self.host = self.replication_group.attr_primary_end_point_address
        self.port = self.replication_group.attr_primary_end_point_port

    def allow_from(self, peer: ec2.IConnectable) -> None:
        self.security_group.add_ingress_rule(
            ec2.Peer.security_group_id(peer.connections.security_groups[0].security_group_id),
            ec2.Port.tcp(REDIS_PORT),
            "Redis from the compute tier",
        )
