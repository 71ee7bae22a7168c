"""Secrets given by ARN, read from AWS Secrets Manager once, when the process starts.

The CDK app's Lambda tier (infra/) sets `DJANGO_SECRET_KEY_ARN`, `DB_SECRET_ARN` and
`REDIS_AUTH_TOKEN_ARN` rather than the secrets: a function's environment is shown to anyone
allowed to read its settings. ECS injects secrets itself, so Fargate needs none of this.
"""

import os
from collections.abc import MutableMapping

# The settings that hold secrets; each may be given as `<NAME>_ARN` instead.
SECRET_SETTINGS = ("DJANGO_SECRET_KEY", "DB_SECRET", "REDIS_AUTH_TOKEN")


def load_secrets_given_by_arn(
    environ: MutableMapping[str, str] = os.environ, client=None
) -> list[str]:
    """Set each secret setting whose `<NAME>_ARN` is given; return the names set.

    A setting already set is left as it is. The secret's string is used whole: the
    database's is the JSON document backend/connections.py reads from DB_SECRET.
    """
    wanted = {
        name: environ[f"{name}_ARN"]
        for name in SECRET_SETTINGS
        if environ.get(f"{name}_ARN") and name not in environ
    }
    if not wanted:
        return []
    if client is None:
        import boto3  # imported only here: it adds to every cold start

        client = boto3.client("secretsmanager")
    for name, arn in wanted.items():
        environ[name] = client.get_secret_value(SecretId=arn)["SecretString"]
    return sorted(wanted)
