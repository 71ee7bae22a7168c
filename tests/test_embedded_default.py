"""`make run`'s embedded default: SQLite and the in-process cache, no servers.

These tests start the development server in a subprocess with no DATABASE_URL
or REDIS_URL and walk the README's curl session through it.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DB_SECRET", "REDIS_HOST")
    }
    sqlite = tmp_path_factory.mktemp("embedded") / "db.sqlite3"
    return environment | {
        "DJANGO_DEBUG": "1",
        "DJANGO_SECRET_KEY": "embedded-test-secret",
        # The default file lives beside manage.py; a temporary one keeps a
        # developer's local data out of the test.
        "DATABASE_URL": f"sqlite:///{sqlite}",
        "DJANGO_SUPERUSER_PASSWORD": "embedded-password-1",
    }


def manage(environment: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def server(embedded_env):
    manage(embedded_env, "migrate", "--noinput")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=embedded_env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/items/", timeout=1)
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the development server did not start within 30 s")
    yield base
    process.terminate()
    process.wait(timeout=10)


def call(method: str, url: str, body: dict | None = None, token: str | None = None):
    request = urllib.request.Request(url, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_settings_choose_sqlite_and_the_in_process_cache(embedded_env):
    out = manage(
        embedded_env,
        "shell",
        "--verbosity=0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'])",
    )

    assert out.split() == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
    ]


def test_the_readme_curl_session_works_without_servers(server, embedded_env):
    manage(
        embedded_env,
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
    )
    token = manage(embedded_env, "drf_create_token", "admin").split()[2]
    items = f"{server}/api/items/"

    status, created = call("POST", items, {"name": "Lamp", "price": "19.99"}, token)
    assert (status, created["name"], created["version"]) == (201, "Lamp", 1)
    detail = f"{items}{created['id']}/"

    assert call("GET", detail) == (200, created)
    status, patched = call("PATCH", detail, {"quantity": 5}, token)
    assert (status, patched["quantity"], patched["version"]) == (200, 5, 2)
    status, replaced = call(
        "PUT",
        detail,
        {"name": "Desk lamp", "description": "", "price": "24.00", "quantity": 4},
        token,
    )
    assert (status, replaced["name"], replaced["version"]) == (200, "Desk lamp", 3)
    assert call("GET", items)[1]["count"] == 1
    assert call("DELETE", detail, token=token) == (204, None)
    assert call("GET", detail)[0] == 404
