"""The handler in a fresh process, as Lambda's Python runtime loads it: logs and EMF on stdout.

Lambda ships a function's stdout to CloudWatch Logs, which turns EMF lines into metrics,
as the awslogs driver does on Fargate. The runtime puts its own handler on the root
logger before it imports the function; the application's JSON configuration must
replace it, and each invocation's metrics must be out before the sandbox is frozen.
"""

import json
import os
import subprocess
import sys
import uuid
from http import HTTPStatus
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import ItemFactory
from tests.lambda_events import API_DOMAIN, http_api_event
from tests.test_container import postgres_url

ROOT = Path(__file__).resolve().parent.parent

# What the runtime does before importing the handler module, then one invocation.
RUNTIME = """
import gc, json, logging, sys

class RuntimeHandler(logging.Handler):
    def emit(self, record):
        sys.stderr.write("RUNTIME " + record.getMessage() + "\\n")

logging.getLogger().addHandler(RuntimeHandler())
logging.getLogger().setLevel(logging.INFO)

from backend.lambda_handler import handler

print(json.dumps({"frozen_objects": gc.get_freeze_count()}), flush=True)
for event in json.loads(sys.argv[1]):
    answer = handler(event, None)
    print(json.dumps({"answer_status": answer["statusCode"]}), flush=True)
"""


@pytest.fixture
def environment(production_environment, collected_static, transactional_db) -> dict:
    return {
        "PATH": "/usr/bin:/bin",
        **production_environment,
        "DJANGO_ALLOWED_HOSTS": API_DOMAIN,
        "DJANGO_STATIC_ROOT": str(collected_static),
        "DATABASE_URL": postgres_url(connection.settings_dict),
        "REDIS_URL": os.environ["REDIS_URL"],
        "CACHE_KEY_PREFIX": f"lambda-runtime-{uuid.uuid4().hex[:8]}",
        # Only the handler's own write at the end of each invocation can bring them out.
        "METRICS_FLUSH_INTERVAL_SECONDS": "3600",
    }


def run_invocations(environment: dict, events: list[dict]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNTIME, json.dumps(events)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_invocation_writes_its_access_line_and_metrics_to_stdout_as_json(environment):
    item = ItemFactory()
    events = [
        http_api_event("GET", f"/api/items/{item.pk}/"),
        http_api_event("GET", f"/api/items/{item.pk}/"),
    ]

    finished = run_invocations(environment, events)

    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in finished.stdout.splitlines()]
    assert lines.pop(0)["frozen_objects"] > 0  # as gunicorn's post_worker_init does
    first_answer = lines.index({"answer_status": HTTPStatus.OK})
    before_first_answer = lines[:first_answer]
    access = [line for line in before_first_answer if line.get("logger") == "backend.access"]
    metrics = [line for line in before_first_answer if "_aws" in line]
    assert [(line["path"], line["cache"]) for line in access] == [
        (f"/api/items/{item.pk}/", "MISS")
    ]
    assert [(m["Route"], m["StatusClass"], m["Requests"]) for m in metrics if "Route" in m] == [
        ("GET item-detail", "2xx", 1)
    ]
    later_metrics = [line for line in lines[first_answer + 1 :] if line.get("CacheHits")]
    assert [line["Requests"] for line in later_metrics] == [1]
    assert "RUNTIME" not in finished.stderr
