"""The VPC: two zones, compute in private subnets, NAT and endpoints as each deployment asks."""


def test_two_zones_each_with_public_private_and_isolated_subnets(synthesized):
    kinds = [
        tag["Value"]
        for subnet in synthesized.resources("AWS::EC2::Subnet").values()
        for tag in subnet["Properties"]["Tags"]
        if tag["Key"] == "aws-cdk:subnet-type"
    ]
    assert sorted(kinds) == ["Isolated"] * 2 + ["Private"] * 2 + ["Public"] * 2


def test_nat_gateways_and_interface_endpoints_follow_the_deployment(synthesized):
    deployment = synthesized.stack.deployment
    endpoints = synthesized.resources("AWS::EC2::VPCEndpoint").values()
    kinds = sorted(
        endpoint["Properties"].get("VpcEndpointType", "Gateway") for endpoint in endpoints
    )

    assert len(synthesized.resources("AWS::EC2::NatGateway")) == deployment.nat_gateways
    assert kinds == ["Gateway"] + (["Interface"] * 4 if deployment.interface_endpoints else [])


def test_rejected_traffic_is_logged_with_a_retention(synthesized):
    [flow_log] = synthesized.resources("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "REJECT"
    group = flow_log["Properties"]["LogGroupName"]["Ref"]
    assert synthesized.json["Resources"][group]["Properties"]["RetentionInDays"] > 0
