"""A CloudFormation custom resource that runs `manage.py migrate` as a one-off ECS task.

CDK's provider framework calls `on_event` once (start the task) and then `is_complete`
until the task has stopped; the deploy fails, and rolls back, unless migrate exited 0.
The resource's properties name the task definition revision, so a deploy that changes
the image runs the migrations again, before the service's new tasks start.
"""

import boto3

ecs = boto3.client("ecs")


def on_event(event, context):
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", "none")}
    properties = event["ResourceProperties"]
    started = ecs.run_task(
        cluster=properties["Cluster"],
        taskDefinition=properties["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": properties["Subnets"],
                "securityGroups": properties["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
        overrides={
            "containerOverrides": [
                {
                    "name": properties["Container"],
                    "command": ["python", "manage.py", "migrate", "--noinput"],
                    # A migration may rewrite a table: not under the service's 5 s limit.
                    "environment": [{"name": "DB_STATEMENT_TIMEOUT_MS", "value": "0"}],
                }
            ]
        },
        startedBy="cloudformation-migrate",
    )
    if started["failures"] or not started["tasks"]:
        raise RuntimeError(f"the migrate task did not start: {started['failures']}")
    return {"PhysicalResourceId": started["tasks"][0]["taskArn"]}


def is_complete(event, context):
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    properties = event["ResourceProperties"]
    task_arn = event["PhysicalResourceId"]
    [task] = ecs.describe_tasks(cluster=properties["Cluster"], tasks=[task_arn])["tasks"]
    if task["lastStatus"] != "STOPPED":
        return {"IsComplete": False}
    [container] = [c for c in task["containers"] if c["name"] == properties["Container"]]
    if container.get("exitCode") != 0:
        raise RuntimeError(
            f"manage.py migrate exited with {container.get('exitCode')} "
            f"({task.get('stoppedReason', 'no reason given')}); see the task's log stream"
        )
    return {"IsComplete": True}
