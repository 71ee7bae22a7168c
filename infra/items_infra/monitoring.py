"""CloudWatch alarms and a dashboard for the whole deployment, notifying one SNS topic."""

from aws_cdk import CfnCondition, CfnParameter, Duration, Fn
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from items_infra.config import Deployment

FIVE_MINUTES = Duration.minutes(5)
# The service's own metrics (backend/observability/metrics.py): CloudWatch Embedded
# Metric Format records on stdout, under this namespace and an Environment dimension.
SERVICE_NAMESPACE = "ItemsApi"


class Monitoring(Construct):
    """Alarms notify `topic`; `add_alarm` and `add_widgets` gather them on one dashboard."""

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
