"""What differs between the deployments: one `Deployment` per environment and tier."""

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from aws_cdk.aws_logs import RetentionDays

# The service this app deploys: its Dockerfile, and docs/openapi.yaml for the routes.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Tier(StrEnum):
    FARGATE = "fargate"
    LAMBDA = "lambda"


@dataclass(frozen=True)
class Deployment:
    """Every choice the stack makes from its environment; `test` and `prod` below."""

    environment: str
    tier: Tier
    # Production keeps its data on delete and across AZ failures.
    production: bool
    nat_gateways: int
    # Interface endpoints (Secrets Manager, Logs, ECR) beside the NAT gateways: they cost
    # per zone and hour, and save NAT data charges (docs/deploy-cdk.md, "What it costs").
    interface_endpoints: bool
    db_min_acu: float
    db_max_acu: float
    db_readers: int
    db_backup_days: int
    cache_node_type: str
    cache_replicas: int
    fargate_cpu: int
    fargate_memory_mib: int
    fargate_min_tasks: int
    fargate_max_tasks: int
    # Requests per task per minute for request-count scaling: what a task carries at
    # 60 % CPU (docs/scaling.md), so CPU and requests agree on when to add a task.
    requests_per_task_minute: int
    gunicorn_workers: int
    lambda_memory_mib: int
    # None reserves nothing: a new account's concurrency quota (often 10) leaves none to
    # reserve; ask AWS to raise it before reserving (docs/deploy-cdk.md).
    lambda_reserved_concurrency: int | None
    api_rate_limit: int
    api_burst_limit: int
    log_retention: RetentionDays
    # Alarm when Aurora's connections pass this: below max_connections at db_max_acu.
    db_connections_alarm: int
    alarm_email: str = ""

    @property
    def name(self) -> str:
        """One stack per environment: changing its tier replaces the compute, not the data."""
        return f"ItemsApi-{self.environment}"


TEST = dict(
    production=False,
    nat_gateways=1,
    interface_endpoints=False,
    db_min_acu=0,
    db_max_acu=4,
    db_readers=0,
    db_backup_days=1,
    cache_node_type="cache.t4g.micro",
    cache_replicas=0,
    fargate_cpu=256,
    fargate_memory_mib=512,
    fargate_min_tasks=1,
    fargate_max_tasks=2,
    requests_per_task_minute=8000,
    gunicorn_workers=1,
    lambda_memory_mib=1024,
    lambda_reserved_concurrency=None,
    api_rate_limit=50,
    api_burst_limit=100,
    log_retention=RetentionDays.TWO_WEEKS,
    db_connections_alarm=200,
)

PROD = dict(
    production=True,
    nat_gateways=2,
    interface_endpoints=True,
    db_min_acu=0.5,
    db_max_acu=16,
    db_readers=1,
    db_backup_days=14,
    cache_node_type="cache.t4g.small",
    cache_replicas=1,
    fargate_cpu=1024,
    fargate_memory_mib=2048,
    fargate_min_tasks=3,
    fargate_max_tasks=12,
    requests_per_task_minute=32000,
    gunicorn_workers=2,
    lambda_memory_mib=1024,
    lambda_reserved_concurrency=100,
    api_rate_limit=1000,
    api_burst_limit=2000,
    log_retention=RetentionDays.THREE_MONTHS,
    db_connections_alarm=1000,
)

ENVIRONMENTS = {"test": TEST, "prod": PROD}


def deployment(environment: str, tier: str, **overrides) -> Deployment:
    """The deployment for `environment` (test, prod) on `tier` (fargate, lambda)."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be one of {sorted(ENVIRONMENTS)}, not {environment!r}")
    values = {**ENVIRONMENTS[environment], **overrides}
    return Deployment(environment=environment, tier=Tier(tier), **values)
