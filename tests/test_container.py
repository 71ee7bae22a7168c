"""The container's files, build step and start command, run outside a container.

There is no container engine here, so these tests lay out what the image holds
(the project less what .dockerignore leaves out), run the Dockerfile's
collectstatic step there, and start the image's command (`bin/start`: gunicorn
with gunicorn.conf.py) with production settings against the local PostgreSQL and
Redis, then speak HTTP to it as the load balancer and clients would. The
Dockerfile itself is checked by hadolint and for the contract others rely on.
"""

import contextlib
import fnmatch
import http.client
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.renderers import JSONRenderer

from items.models import Item
from items.serializers import ItemSerializer
from tests.factories import UserFactory
from tests.ports import free_port
from tests.project_copy import environment_without_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PUBLIC_HOST = "items.example.com"
PRIVATE_IP_HOST = "10.0.1.23"
THROUGH_THE_LOAD_BALANCER = {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https"}


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path

    def request(self, method: str, path: str, *, headers=None, body=None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_text().splitlines()]

    def log_text(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as ECS stops a task; return gunicorn's exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_server(app_root: Path, environment: dict, log_path: Path) -> Server:
    port = int(environment["PORT"])
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(app_root / "bin" / "start")],
            env=environment,
            cwd="/",  # bin/start finds the project itself, as in the image
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bin/start exited with {process.returncode}:\n{server.log_text()}")
        try:
            if server.request("GET", "/healthz").status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"bin/start did not answer /healthz within 30 s:\n{server.log_text()}")


def postgres_url(settings_dict: dict) -> str:
    credentials = quote(settings_dict["USER"], safe="")
    if settings_dict.get("PASSWORD"):
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings_dict['NAME']}"


def dockerignore_patterns() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().lstrip("/") for line in lines if line.strip() and line[0] != "#"]


def ignored_by_docker(path: str, patterns: list[str]) -> bool:
    """Whether `docker build` leaves the file out: a pattern matches it or a folder above it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not modelled here"
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def build_context(patterns: list[str]) -> list[str]:
    """The paths `docker build` sends: everything in the checkout, gitignored or not,
    that .dockerignore does not leave out (symbolic links as links)."""
    context = []
    for folder, subfolders, files in os.walk(PROJECT_ROOT):
        relative = Path(folder).relative_to(PROJECT_ROOT)
        linked = [name for name in subfolders if Path(folder, name).is_symlink()]
        for name in [*files, *linked]:
            if not ignored_by_docker(path := (relative / name).as_posix(), patterns):
                context.append(path)
        # An ignored folder is not walked: .venv alone holds tens of thousands of files.
        subfolders[:] = [
            name
            for name in subfolders
            if name not in linked and not ignored_by_docker((relative / name).as_posix(), patterns)
        ]
    return context


def build_step(name: str) -> str:
    """The shell command of the Dockerfile's RUN instruction that mentions `name`."""
    [command] = [
        line.removeprefix("RUN ")
        for line in dockerfile_instructions()
        if line.startswith("RUN ") and name in line
    ]
    return command


@pytest.fixture(scope="module")
def app_root(tmp_path_factory) -> Path:
    """What the image's /app holds: `COPY . .` through .dockerignore, then collectstatic."""
    root = tmp_path_factory.mktemp("app")
    for path in build_context(dockerignore_patterns()):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / path, root / path, follow_symlinks=False)
    result = subprocess.run(
        ["sh", "-c", build_step("collectstatic")],
        env={
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "DJANGO_STATIC_ROOT": str(root / "staticfiles"),
        },
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def server_environment(production_environment: dict, static_root: Path, **overrides) -> dict:
    return {
        **environment_without_settings(),
        **production_environment,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        # As the Dockerfile's ENV sets them.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PORT": str(free_port()),
        "DJANGO_STATIC_ROOT": str(static_root),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        # The most verbose level, so that a secret logged anywhere would show.
        "LOG_LEVEL": "DEBUG",
        "REDIS_URL": os.environ["REDIS_URL"],
        "METRICS_FLUSH_INTERVAL_SECONDS": "0.2",
        **overrides,
    }


@contextlib.contextmanager
def serving(
    app_root: Path, production_environment: dict, log_dir: Path, static_root=None, **overrides
):
    """The image's command with production settings on the test database, stopped after."""
    environment = server_environment(
        production_environment,
        static_root or app_root / "staticfiles",
        DATABASE_URL=postgres_url(connection.settings_dict),
        **overrides,
    )
    running = start_server(app_root, environment, log_dir / "stdout.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(django_db_setup, production_environment, app_root, tmp_path_factory):
    """The application as the image runs it, on the test database."""
    with serving(app_root, production_environment, tmp_path_factory.mktemp("server")) as running:
        yield running


def as_json(item) -> dict:
    return json.loads(JSONRenderer().render(ItemSerializer(item).data))


# --- What the image holds -----------------------------------------------------------


def test_the_image_holds_the_application_and_no_development_files(app_root):
    present = {path.name for path in app_root.iterdir()}

    assert {"backend", "items", "bin", "manage.py", "gunicorn.conf.py", "staticfiles"} <= present
    assert not present & {"tests", "docs", "Dockerfile", "README.md", "db.sqlite3"}
    assert not {name for name in present if name.startswith(".")}  # .git, .venv, caches
    assert not list(app_root.rglob("__pycache__"))


def test_the_image_holds_the_cache_engines_lua_scripts(app_root):
    scripts = sorted(path.name for path in (PROJECT_ROOT / "backend/cache/lua").glob("*.lua"))

    assert scripts
    assert sorted(path.name for path in (app_root / "backend/cache/lua").glob("*.lua")) == scripts


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".venv-checkov/bin/python",
        ".hypothesis/constants/1ad0e0dcadb42972",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        "items/__pycache__/views.cpython-311.pyc",
        "staticfiles/admin/css/base.css",
        "db.sqlite3",
        ".env",
    ],
)
def test_what_tools_and_tests_create_in_the_checkout_stays_out_of_the_image(path):
    assert ignored_by_docker(path, dockerignore_patterns())


# --- What the load balancer and clients see --------------------------------------


def test_liveness_answers_the_private_ip_host_the_load_balancer_sends(server):
    reply = server.request("GET", "/healthz", headers={"Host": PRIVATE_IP_HOST})

    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert "no-store" in reply.headers["Cache-Control"]


def test_the_api_refuses_a_host_that_is_not_allowed_and_logs_one_line_without_it(server):
    reply = server.request("GET", "/api/items/", headers={"Host": "scanner-probe.example"})

    assert reply.status == 400
    assert "scanner-probe.example" not in server.log_text()
    assert server.log_lines()  # every line JSON: no plain-text fallback of a dropped record


def test_readiness_reports_the_database_and_the_cache(server):
    reply = server.request("GET", "/readyz", headers={"Host": PRIVATE_IP_HOST})

    assert (reply.status, reply.json()) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "cache": "ok"}},
    )


def test_an_api_read_through_the_load_balancer_returns_the_item(server, stored_item):
    reply = server.request(
        "GET", f"/api/items/{stored_item.pk}/", headers=THROUGH_THE_LOAD_BALANCER
    )

    assert reply.status == 200
    assert reply.json() == as_json(stored_item)
    assert reply.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )


def test_plain_http_through_the_load_balancer_is_redirected_to_https(server):
    reply = server.request(
        "GET", "/api/items/", headers={"Host": PUBLIC_HOST, "X-Forwarded-Proto": "http"}
    )

    assert reply.status == 301
    assert reply.headers["Location"] == f"https://{PUBLIC_HOST}/api/items/"


def test_a_collected_static_file_is_served_compressed_by_whitenoise(server, app_root):
    headers = {**THROUGH_THE_LOAD_BALANCER, "Accept-Encoding": "gzip"}

    reply = server.request("GET", "/static/admin/css/base.css", headers=headers)

    assert reply.status == 200
    assert reply.headers["Content-Encoding"] == "gzip"
    assert reply.body == (app_root / "staticfiles/admin/css/base.css.gz").read_bytes()
    assert reply.headers["Content-Type"].startswith("text/css")
    assert reply.headers["Cache-Control"] == "max-age=60, public"


def test_the_image_healthcheck_command_passes(server, app_root):
    result = subprocess.run(
        [sys.executable, str(app_root / "bin" / "healthcheck")],
        env={**os.environ, "PORT": str(server.port)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr


# --- What reaches the log ----------------------------------------------------------


def test_every_line_on_stdout_is_json_gunicorns_own_included(server):
    server.request("GET", "/api/items/", headers=THROUGH_THE_LOAD_BALANCER)

    lines = server.log_lines()
    assert {"gunicorn.error", "backend.access"} <= {line.get("logger") for line in lines}
    assert any(line.get("message", "").startswith("Booting worker") for line in lines)


def test_the_access_line_carries_the_request_id_and_the_metrics_count_the_request(
    server, stored_item
):
    headers = {**THROUGH_THE_LOAD_BALANCER, "X-Request-ID": "alb-trace-0001"}

    reply = server.request("GET", f"/api/items/{stored_item.pk}/", headers=headers)

    assert reply.headers["X-Request-ID"] == "alb-trace-0001"
    mine = [line for line in server.log_lines() if line.get("request_id") == "alb-trace-0001"]
    access_line = next(line for line in mine if line.get("logger") == "backend.access")
    assert (access_line["route"], access_line["status"]) == ("GET item-detail", 200)
    deadline = time.monotonic() + 10  # the worker writes its metrics every 0.2 s
    while not (records := detail_metrics(server)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records, "no metrics record for GET item-detail"
    assert records[0]["StatusClass"] == "2xx"
    assert sum(record["Requests"] for record in records) >= 1


def detail_metrics(server) -> list[dict]:
    return [
        line
        for line in server.log_lines()
        if "_aws" in line and line.get("Route") == "GET item-detail" and "Requests" in line
    ]


def test_a_chunked_body_is_read_not_taken_for_an_empty_one(server, stored_item, stored_token):
    """An HTTP/2 client or a proxy may stream a body without Content-Length."""
    authorized = {
        **THROUGH_THE_LOAD_BALANCER,
        "Authorization": f"Token {stored_token}",
        "Content-Type": "application/json",
    }
    body = iter([b'{"quantity": ', b"77}"])  # an iterable: http.client sends it chunked

    reply = server.request("PATCH", f"/api/items/{stored_item.pk}/", headers=authorized, body=body)

    assert reply.status == 200
    stored_item.refresh_from_db()
    assert (reply.json()["quantity"], stored_item.quantity) == (77, 77)


def test_a_chunked_body_over_the_limit_is_413(server, stored_token):
    authorized = {
        **THROUGH_THE_LOAD_BALANCER,
        "Authorization": f"Token {stored_token}",
        "Content-Type": "application/json",
    }
    body = iter([b'{"name": "big", "price": "1.00", "description": "', b"x" * 70_000, b'"}'])

    reply = server.request("POST", "/api/items/", headers=authorized, body=body)

    assert (reply.status, reply.json()["code"]) == (413, "request_too_large")
    assert not Item.objects.filter(name="big").exists()


def test_tokens_and_passwords_never_reach_the_log(server, stored_token):
    authorized = {
        **THROUGH_THE_LOAD_BALANCER,
        "Authorization": f"Token {stored_token}",
        "Content-Type": "application/json",
    }
    password = "correct-horse-battery-staple-42"

    created = server.request(
        "POST", "/api/items/", headers=authorized, body=b'{"name": "Lamp", "price": "1.00"}'
    )
    server.request("GET", f"/api/items/?token={stored_token}", headers=THROUGH_THE_LOAD_BALANCER)
    login = server.request(
        "POST",
        "/admin/login/",
        headers={**THROUGH_THE_LOAD_BALANCER, "Content-Type": "application/x-www-form-urlencoded"},
        body=f"username=admin&password={password}".encode(),
    )

    assert (created.status, login.status) == (201, 403)
    access = [line for line in server.log_lines() if line.get("logger") == "backend.access"]
    assert any(line["route"] == "POST item-list" and line["user_id"] for line in access)
    log = server.log_text()
    assert stored_token not in log
    assert password not in log


def set_cookie(reply: Reply, name: str) -> str:
    cookies = SimpleCookie()
    for header in reply.headers.get_all("Set-Cookie", []):
        cookies.load(header)
    return cookies[name].value


def test_admin_passwords_and_session_cookies_never_reach_the_log(server, transactional_db):
    """A failed and a successful admin login, then a page read with the session cookie."""
    password = "staple-battery-horse-correct-17"
    UserFactory(username="operator", password=password, is_staff=True, is_superuser=True)
    form = server.request("GET", "/admin/login/", headers=THROUGH_THE_LOAD_BALANCER)
    csrf_cookie = set_cookie(form, "csrftoken")
    csrf_field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.body)[1].decode()
    login_headers = {
        **THROUGH_THE_LOAD_BALANCER,
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"csrftoken={csrf_cookie}",
        "Origin": f"https://{PUBLIC_HOST}",
    }

    def log_in(attempt: str) -> Reply:
        body = f"csrfmiddlewaretoken={csrf_field}&username=operator&password={quote(attempt)}"
        return server.request("POST", "/admin/login/", headers=login_headers, body=body.encode())

    refused = log_in("wrong-" + password)
    accepted = log_in(password)
    session = set_cookie(accepted, "sessionid")
    index = server.request(
        "GET",
        "/admin/",
        headers={**THROUGH_THE_LOAD_BALANCER, "Cookie": f"sessionid={session}"},
    )

    assert (refused.status, accepted.status, index.status) == (200, 302, 200)
    log = server.log_text()
    for secret in (password, "wrong-" + password, session, csrf_cookie, csrf_field):
        assert secret not in log


def test_readiness_is_503_when_the_database_is_down_and_shutdown_is_graceful(
    production_environment, app_root, tmp_path
):
    environment = server_environment(
        production_environment,
        app_root / "staticfiles",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/items",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    server = start_server(app_root, environment, tmp_path / "stdout.log")
    try:
        ready = server.request("GET", "/readyz", headers={"Host": PRIVATE_IP_HOST})
        alive = server.request("GET", "/healthz", headers={"Host": PRIVATE_IP_HOST})
    finally:
        exit_code = server.stop()

    assert (ready.status, ready.json()) == (
        503,
        {"status": "unavailable", "checks": {"database": "unavailable", "cache": "degraded"}},
    )
    assert ready.headers["Content-Type"] == "application/json"
    assert alive.status == 200
    assert exit_code == 0
    assert server.log_lines()[-1]["message"] == "Shutting down: Master"


# --- The image definition ------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: make install (requirements-dev.txt pins it)"

    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def dockerfile_instructions() -> list[str]:
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_runs_bin_start_on_port_8000_as_a_non_root_user():
    instructions = dockerfile_instructions()

    assert "EXPOSE 8000" in instructions
    assert instructions[-1] == 'CMD ["/app/bin/start"]'
    [user] = [line for line in instructions if line.startswith("USER ")]
    assert re.fullmatch(r"USER [1-9][0-9]*:[1-9][0-9]*", user)
    assert any(
        line.startswith("HEALTHCHECK ") and "bin/healthcheck" in line for line in instructions
    )


def test_the_image_uses_the_python_the_tests_run_on():
    major_minor = f"{sys.version_info.major}.{sys.version_info.minor}"

    [base] = [line for line in dockerfile_instructions() if line.startswith("ARG PYTHON_IMAGE=")]
    assert base.startswith(f"ARG PYTHON_IMAGE=python:{major_minor}-slim")


def gunicorn_settings(monkeypatch, **environment) -> dict:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults_fit_a_small_fargate_task_behind_a_load_balancer(monkeypatch):
    config = gunicorn_settings(monkeypatch)

    assert {
        name: config[name]
        for name in (
            "bind",
            "worker_class",
            "workers",
            "threads",
            "graceful_timeout",
            "keepalive",
            "max_requests",
            "max_requests_jitter",
            "forwarded_allow_ips",
            "accesslog",
        )
    } == {
        "bind": "0.0.0.0:8000",
        "worker_class": "gthread",
        "workers": 2,
        "threads": 4,
        "graceful_timeout": 20,
        "keepalive": 75,
        "max_requests": 50000,
        "max_requests_jitter": 5000,
        "forwarded_allow_ips": "*",
        "accesslog": None,
    }
    # ECS sends SIGKILL 30 s after SIGTERM by default; in-flight requests finish first.
    assert config["graceful_timeout"] < 30


def test_a_gunicorn_worker_freezes_what_it_loaded_out_of_the_collectors_sight(monkeypatch):
    import gc

    config = gunicorn_settings(monkeypatch)
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](worker=None)

        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_gunicorn_takes_port_and_concurrency_from_the_environment(monkeypatch):
    config = gunicorn_settings(monkeypatch, PORT="9000", WEB_CONCURRENCY="4", GUNICORN_THREADS="8")

    assert (config["bind"], config["workers"], config["threads"]) == ("0.0.0.0:9000", 4, 8)
