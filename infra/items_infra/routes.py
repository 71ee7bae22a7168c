"""API Gateway routes from the service's OpenAPI description (docs/openapi.yaml).

HTTP API route paths may not end with "/", and every Django route of the service does:
`GET /api/items/{id}/` becomes the route `GET /api/items/{id}`. The `$default` route
sends whatever matches no route (the trailing-slash spelling included, whichever way API
Gateway treats it) to the service too, which answers it or gives its own 404.
"""

from pathlib import Path

import yaml

from items_infra.config import PROJECT_ROOT

SCHEMA = PROJECT_ROOT / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Served beside the API operations: the docs, the schema, their static files, the admin
# and liveness. Readiness stays internal (it reports the data tier).
EXTRA_ROUTES = (
    "GET /api/schema",
    "GET /api/docs",
    "GET /api/redoc",
    "GET /static/{proxy+}",
    "ANY /admin",
    "ANY /admin/{proxy+}",
    "GET /healthz",
    "$default",
)


def schema_operations(schema: Path = SCHEMA) -> list[tuple[str, str]]:
    """(METHOD, path) for each operation of the OpenAPI description, in its own spelling."""
    paths = yaml.safe_load(schema.read_text())["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in HTTP_METHODS
    ]


def route_key(method: str, path: str) -> str:
    """The HTTP API route key of an operation: the same path without its final slash."""
    return f"{method} {path.rstrip('/') or '/'}"


def api_route_keys(schema: Path = SCHEMA) -> list[str]:
    return [route_key(method, path) for method, path in schema_operations(schema)]
