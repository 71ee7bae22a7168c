"""API Gateway's routes are the OpenAPI description's operations, none missing, none extra."""

from items_infra.routes import EXTRA_ROUTES, SCHEMA, route_key, schema_operations


def deployed_route_keys(synthesized) -> list[str]:
    return sorted(
        route["Properties"]["RouteKey"]
        for route in synthesized.resources("AWS::ApiGatewayV2::Route").values()
    )


def test_the_schema_describes_the_crud_operations():
    assert sorted(schema_operations(SCHEMA)) == [
        ("DELETE", "/api/items/{id}/"),
        ("GET", "/api/items/"),
        ("GET", "/api/items/{id}/"),
        ("PATCH", "/api/items/{id}/"),
        ("POST", "/api/items/"),
        ("PUT", "/api/items/{id}/"),
    ]


def test_each_operation_has_its_route_and_nothing_else_is_routed(synthesized):
    expected = [route_key(method, path) for method, path in schema_operations(SCHEMA)]

    assert deployed_route_keys(synthesized) == sorted([*expected, *EXTRA_ROUTES])


def test_a_route_path_never_ends_with_a_slash(synthesized):
    paths = [key.split(" ", 1)[-1] for key in deployed_route_keys(synthesized)]
    assert not [path for path in paths if path.endswith("/") and path != "/"]


def test_every_route_reaches_the_compute_tier(synthesized):
    integrations = synthesized.resources("AWS::ApiGatewayV2::Integration")
    assert len(integrations) == 1
    [integration] = integrations.values()
    expected = "HTTP_PROXY" if synthesized.stack.deployment.tier == "fargate" else "AWS_PROXY"
    assert integration["Properties"]["IntegrationType"] == expected
    for route in synthesized.resources("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"] in integrations
