"""JSON Schemas of the Copilot manifest fields this project uses, with the types Copilot accepts.

Written from the manifest reference (https://aws.github.io/copilot-cli/docs/manifest/):
unknown keys are rejected, so a misspelt field fails here instead of being ignored at deploy.
"""

DURATION = {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$", "minLength": 2}
ENV_VAR_NAME = r"^[A-Z_][A-Z0-9_]*$"
FROM_CFN = {
    "type": "object",
    "properties": {"from_cfn": {"type": "string", "minLength": 1}},
    "required": ["from_cfn"],
    "additionalProperties": False,
}

VARIABLES = {
    "type": "object",
    "propertyNames": {"pattern": ENV_VAR_NAME},
    "additionalProperties": {"oneOf": [{"type": "string"}, FROM_CFN]},
}
SECRETS = {
    "type": "object",
    "propertyNames": {"pattern": ENV_VAR_NAME},
    "additionalProperties": {
        "oneOf": [
            {"type": "string", "minLength": 1},
            FROM_CFN,
            {
                "type": "object",
                "properties": {"secretsmanager": {"type": "string"}},
                "required": ["secretsmanager"],
                "additionalProperties": False,
            },
        ]
    },
}
IMAGE_BUILD = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "properties": {
                "dockerfile": {"type": "string"},
                "context": {"type": "string"},
                "target": {"type": "string"},
                "args": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
    ]
}
SECURITY_GROUP = {"oneOf": [{"type": "string"}, FROM_CFN]}
NETWORK = {
    "type": "object",
    "properties": {
        "vpc": {
            "type": "object",
            "properties": {
                "placement": {"enum": ["public", "private"]},
                "security_groups": {
                    "oneOf": [
                        {"type": "array", "items": SECURITY_GROUP},
                        {
                            "type": "object",
                            "properties": {
                                "deny_default": {"type": "boolean"},
                                "groups": {"type": "array", "items": SECURITY_GROUP},
                            },
                            "additionalProperties": False,
                        },
                    ]
                },
            },
            "additionalProperties": False,
        },
        "connect": {"type": "boolean"},
    },
    "additionalProperties": False,
}
TASK_SIZE = {
    "cpu": {"enum": [256, 512, 1024, 2048, 4096, 8192, 16384]},
    "memory": {"type": "integer", "minimum": 512},
    "platform": {"enum": ["linux/x86_64", "linux/amd64", "linux/arm64", "linux/arm"]},
}
COMMAND = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}

HEALTHCHECK = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "pattern": "^/"},
        "port": {"type": "integer"},
        "success_codes": {"type": "string"},
        "healthy_threshold": {"type": "integer", "minimum": 2, "maximum": 10},
        "unhealthy_threshold": {"type": "integer", "minimum": 2, "maximum": 10},
        "interval": DURATION,
        "timeout": DURATION,
        "grace_period": DURATION,
    },
    "required": ["path"],
    "additionalProperties": False,
}
CONTAINER_HEALTHCHECK = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "interval": DURATION,
        "timeout": DURATION,
        "retries": {"type": "integer", "minimum": 1, "maximum": 10},
        "start_period": DURATION,
    },
    "required": ["command"],
    "additionalProperties": False,
}
COUNT = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {
            "type": "object",
            "properties": {
                "range": {"type": "string", "pattern": r"^\d+-\d+$"},
                "cooldown": {
                    "type": "object",
                    "properties": {"in": DURATION, "out": DURATION},
                    "additionalProperties": False,
                },
                "cpu_percentage": {"type": "integer", "minimum": 1, "maximum": 100},
                "memory_percentage": {"type": "integer", "minimum": 1, "maximum": 100},
                "requests": {"type": "integer", "minimum": 1},
                "response_time": DURATION,
            },
            "required": ["range"],
            "additionalProperties": False,
        },
    ]
}
# rollback_alarms: the names of existing alarms, or thresholds of alarms Copilot creates
# (manifest.DeploymentConfig, a Union[[]string, AlarmArgs]).
ROLLBACK_ALARMS = {
    "oneOf": [
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        {
            "type": "object",
            "properties": {
                "cpu_utilization": {"type": "number"},
                "memory_utilization": {"type": "number"},
            },
            "additionalProperties": False,
        },
    ]
}
DEPLOYMENT = {
    "type": "object",
    "properties": {
        "rolling": {"enum": ["default", "recreate"]},
        "rollback_alarms": ROLLBACK_ALARMS,
    },
    "additionalProperties": False,
}

SERVICE_OVERRIDABLE = {
    **TASK_SIZE,
    "count": COUNT,
    "deployment": DEPLOYMENT,
    "variables": VARIABLES,
    "secrets": SECRETS,
    "network": NETWORK,
    "exec": {"type": "boolean"},
}
LOAD_BALANCED_WEB_SERVICE = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "type": {"const": "Load Balanced Web Service"},
        "http": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "healthcheck": HEALTHCHECK,
                "deregistration_delay": DURATION,
                "alias": {"type": "string"},
            },
            "required": ["path", "healthcheck"],
            "additionalProperties": False,
        },
        "image": {
            "type": "object",
            "properties": {
                "build": IMAGE_BUILD,
                "port": {"type": "integer"},
                "healthcheck": CONTAINER_HEALTHCHECK,
            },
            "required": ["build", "port"],
            "additionalProperties": False,
        },
        **SERVICE_OVERRIDABLE,
        "environments": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": SERVICE_OVERRIDABLE,
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "type", "http", "image", "cpu", "memory", "count"],
    "additionalProperties": False,
}

JOB_OVERRIDABLE = {
    **TASK_SIZE,
    "variables": VARIABLES,
    "secrets": SECRETS,
    "network": NETWORK,
    "retries": {"type": "integer", "minimum": 0, "maximum": 10},
    "timeout": DURATION,
}
SCHEDULED_JOB = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "type": {"const": "Scheduled Job"},
        "on": {
            "type": "object",
            "properties": {"schedule": {"type": "string", "minLength": 1}},
            "required": ["schedule"],
            "additionalProperties": False,
        },
        "image": {
            "type": "object",
            "properties": {"build": IMAGE_BUILD},
            "required": ["build"],
            "additionalProperties": False,
        },
        "command": COMMAND,
        **JOB_OVERRIDABLE,
        "environments": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": JOB_OVERRIDABLE,
                "additionalProperties": False,
            },
        },
    },
    "required": ["name", "type", "on", "image"],
    "additionalProperties": False,
}

ENVIRONMENT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "type": {"const": "Environment"},
        "observability": {
            "type": "object",
            "properties": {"container_insights": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "http": {"type": "object"},
        "network": {"type": "object"},
    },
    "required": ["name", "type"],
    "additionalProperties": False,
}

SCHEMA_BY_TYPE = {
    "Load Balanced Web Service": LOAD_BALANCED_WEB_SERVICE,
    "Scheduled Job": SCHEDULED_JOB,
    "Environment": ENVIRONMENT,
}

# Fargate's valid task sizes: memory (MiB) allowed for each cpu (units).
FARGATE_MEMORY_BY_CPU = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
}
