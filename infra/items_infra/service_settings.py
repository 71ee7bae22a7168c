"""The service's environment on AWS: the same variables on Fargate and on Lambda.

The README's configuration table documents each one; copilot/api/manifest.yml sets the
same values for the Copilot deploy.
"""

from items_infra.config import Deployment
from items_infra.data import Cache


def service_environment(
    deployment: Deployment, *, cache: Cache, allowed_hosts: list[str], api_origin: str
) -> dict[str, str]:
    """Plain settings; secrets are passed apart (ECS secrets, or ARNs for Lambda)."""
    return {
        "DJANGO_DEBUG": "false",
        # Exactly the names this deployment is reached by, never a wildcard.
        "DJANGO_ALLOWED_HOSTS": ",".join(allowed_hosts),
        "DJANGO_CSRF_TRUSTED_ORIGINS": api_origin,
        # TLS ends at API Gateway, which always answers over HTTPS; a redirect here
        # would loop on the plain-HTTP hop behind it.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_COOKIES": "true",
        # The caller's address: on Fargate from the header API Gateway writes
        # (API_CLIENT_IP_HEADER, below); on Lambda the handler takes it from the event.
        "API_NUM_PROXIES": "0",
        "DB_SSLMODE": "require",
        # Lambda holds a connection per sandbox between invocations; Fargate per thread.
        "DB_CONN_MAX_AGE": "60",
        "REDIS_HOST": cache.host,
        "REDIS_PORT": cache.port,
        "REDIS_TLS": "true",
        "LOG_LEVEL": "INFO",
        "METRICS_ENABLED": "true",
        "METRICS_NAMESPACE": "ItemsApi",
        "METRICS_ENVIRONMENT": deployment.environment,
    }
