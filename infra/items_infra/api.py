"""API Gateway HTTP API in front of either tier: routes, throttling, access logs."""

import json

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from items_infra.config import Deployment
from items_infra.routes import EXTRA_ROUTES, api_route_keys

# Every field an operator looks for first; $context.requestId is the X-Request-ID too.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


class Api(Construct):
    """One route per API operation, plus the docs, schema, admin and health routes."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment):
        super().__init__(scope, construct_id)
        self.http_api = apigw.HttpApi(
            self, "HttpApi", api_name=deployment.name, create_default_stage=False
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=deployment.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=deployment.api_rate_limit, burst_limit=deployment.api_burst_limit
            ),
        )
        stage = self.stage.node.default_child
        stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT),
        )
        self.domain = (
            f"{self.http_api.api_id}.execute-api.{self.http_api.stack.region}.amazonaws.com"
        )
        CfnOutput(
            self.http_api.stack, "ApiUrl", value=f"https://{self.domain}", description="The API"
        )

    def route_to(self, integration: apigw.HttpRouteIntegration) -> None:
        for key in [*api_route_keys(), *EXTRA_ROUTES]:
            if key == "$default":
                route_key = apigw.HttpRouteKey.DEFAULT
            else:
                method, path = key.split(" ", 1)
                route_key = apigw.HttpRouteKey.with_(path, apigw.HttpMethod(method))
            apigw.HttpRoute(
                self,
                "Route " + key.replace("/", "|"),
                http_api=self.http_api,
                route_key=route_key,
                integration=integration,
            )

    def through_vpc_link(
        self, listener, *, vpc: ec2.IVpc, subnets: ec2.SubnetSelection
    ) -> ec2.SecurityGroup:
        """Integrate privately with the internal load balancer; return the link's group."""
        security_group = ec2.SecurityGroup(
            self, "VpcLinkSecurityGroup", vpc=vpc, description="The VPC link of API Gateway"
        )
        vpc_link = apigw.VpcLink(
            self, "VpcLink", vpc=vpc, subnets=subnets, security_groups=[security_group]
        )
        self.route_to(
            integrations.HttpAlbIntegration(
                "LoadBalancer",
                listener,
                vpc_link=vpc_link,
                # What the service must know of the request, in headers of its own that
                # the gateway overwrites (X-Forwarded-* are the load balancer's to write):
                # the scheme (always HTTPS here), the caller and the host it asked for.
                parameter_mapping=apigw.ParameterMapping()
                .overwrite_header("X-Items-Forwarded-Proto", apigw.MappingValue.custom("https"))
                .overwrite_header(
                    "X-Items-Client-Ip", apigw.MappingValue.context_variable("identity.sourceIp")
                )
                .overwrite_header(
                    "X-Items-Forwarded-Host", apigw.MappingValue.context_variable("domainName")
                ),
            )
        )
        return security_group
