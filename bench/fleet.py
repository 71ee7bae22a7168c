"""A service of its own for the drills and the soak: PostgreSQL, Redis and two gunicorn tasks.

Nothing here touches the machine's shared PostgreSQL or Redis. Each fleet runs a
PostgreSQL cluster copied from a template (initdb, migrate and seed once per run),
a redis-server with a data directory (so it can come back with its old data, or
from an older snapshot) and two gunicorn servers with the production settings and
gunicorn.conf.py, all on spare loopback ports, and stops them all on the way out,
on failure and on Ctrl-C alike.

PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import redis

from bench.harness import ROOT, SEED_SQL, Server, free_port, service_env

DATABASE = "items"
# Limits no load of the drills reaches, so a 429 is never mistaken for a fault.
START_TIMEOUT = 30
INITDB_OPTIONS = ["--no-sync", "--no-instructions", "--encoding=UTF8", "--no-locale"]
POSTGRES_OPTIONS = ["-c", "listen_addresses=127.0.0.1", "-c", "shared_buffers=32MB"]
# Snapshots only when asked (SAVE), into dump.rdb, which a restart loads.
REDIS_OPTIONS = ["--bind", "127.0.0.1", "--dbfilename", "dump.rdb", "--save", ""]
REDIS_OPTIONS += ["--appendonly", "no", "--maxmemory-policy", "volatile-lru"]


def postgres_command(name: str) -> str:
    """A PostgreSQL program: from PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    if found := shutil.which(name):
        return found
    installed = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda path: int(path.parts[-3])
    )
    if not installed:
        raise SystemExit(f"{name} not found: install PostgreSQL's server (Debian: postgresql)")
    return str(installed[-1])


def _postgres_user() -> dict:
    """Popen arguments that run a PostgreSQL command as `postgres` when we are root."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def private_directory(prefix: str) -> Path:
    """A temporary directory PostgreSQL's user owns."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    return directory


def _wait(ready, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready within {START_TIMEOUT} s: {_tail(log)}")


def _tail(log: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


class Postgres:
    """A PostgreSQL cluster in `data`, served by a `postgres` process on a spare port."""

    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        self.log = data.parent / "postgres.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @classmethod
    def initdb(cls, data: Path) -> "Postgres":
        subprocess.run(
            [
                postgres_command("initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                *INITDB_OPTIONS,
            ],
            cwd=data.parent,
            check=True,
            stdout=subprocess.DEVNULL,
            **_postgres_user(),
        )
        return cls(data)

    @classmethod
    def copy_of(cls, template: Path, data: Path) -> "Postgres":
        subprocess.run(
            ["cp", "-a", str(template), str(data)], cwd=data.parent, check=True, **_postgres_user()
        )
        return cls(data)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    postgres_command("postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    *POSTGRES_OPTIONS,
                    "-c",
                    f"unix_socket_directories={self.data}",
                ],
                cwd=self.data.parent,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the driver, which stops it in order
                **_postgres_user(),
            )
        _wait(self._answers, self.process, "PostgreSQL", self.log)

    def _answers(self) -> bool:
        psycopg2.connect(self.url.replace(f"/{DATABASE}", "/postgres"), connect_timeout=1).close()
        return True

    def stop(self, *, immediate: bool = False) -> None:
        """Shut down: fast (SIGINT), or immediate (SIGQUIT: no checkpoint, as in a crash)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def connect(self):
        return psycopg2.connect(self.url, connect_timeout=5)

    def count_connections(self) -> int:
        """Connections to the service's database, as pg_stat_activity lists them."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [DATABASE],
                )
                return cursor.fetchone()[0]
        finally:
            connection.close()


class RedisNode:
    """A redis-server on a spare port whose data survives a restart (SAVE, dump.rdb)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def dump(self) -> Path:
        return self.directory / "dump.rdb"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> None:
        """Start, loading dump.rdb when there is one (a restarted node keeps its old data)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.directory),
                    *REDIS_OPTIONS,
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _wait(self.client().ping, self.process, "Redis", self.log)

    def snapshot(self, to: Path) -> None:
        """Write the data as it is now to `to` (what an older replica or backup holds)."""
        self.client().save()
        shutil.copyfile(self.dump, to)

    def crash(self) -> None:
        """Save the data, then kill the process: it can come back with what it held."""
        self.client().save()
        self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused process cannot die
            self.process.kill()
            self.process.wait(10)

    def restore(self, snapshot: Path) -> None:
        """Come back, on the same port, holding `snapshot`'s data: a failover to a stale node."""
        self.kill()
        shutil.copyfile(snapshot, self.dump)
        self.start()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def info(self) -> dict:
        return self.client().info()


@dataclass(frozen=True)
class Template:
    """A stopped, migrated and seeded cluster to copy, and the token of its writing user."""

    data: Path
    token: str
    items: int


def _manage(database_url: str, *arguments: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=service_env(DATABASE_URL=database_url, REDIS_URL=""),
        check=True,
        capture_output=True,
        text=True,
    ).stdout


CREATE_TOKEN = (
    "from django.contrib.auth.models import User\n"
    "from rest_framework.authtoken.models import Token\n"
    "print(Token.objects.create(user=User.objects.create_user('drills')).key)\n"
)


@contextlib.contextmanager
def template(items: int) -> Iterator[Template]:
    """initdb, migrate, seed `items` rows and create a token, once; removed afterwards."""
    directory = private_directory("drills-template-")
    try:
        cluster = Postgres.initdb(directory / "data")
        cluster.start()
        try:
            admin = psycopg2.connect(cluster.url.replace(f"/{DATABASE}", "/postgres"))
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
            admin.close()
            _manage(cluster.url, "migrate", "--noinput", "-v", "0")
            connection = cluster.connect()
            with connection, connection.cursor() as cursor:
                cursor.execute(SEED_SQL, [items])
            connection.close()
            token = _manage(cluster.url, "shell", "-c", CREATE_TOKEN).split()[-1]
        finally:
            cluster.stop()
        yield Template(cluster.data, token, items)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Fleet:
    postgres: Postgres
    redis: RedisNode
    servers: list[Server]
    token: str
    logs: Path

    def rows(self, ids: list[int]) -> dict[int, tuple[int, dict]]:
        """Each item's (version, fields) as PostgreSQL holds it, for History.lost_writes."""
        connection = self.postgres.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id, version, description, quantity FROM items_item WHERE id = ANY(%s)",
                    [ids],
                )
                return {
                    row[0]: (row[1], {"description": row[2], "quantity": row[3]})
                    for row in cursor.fetchall()
                }
        finally:
            connection.close()


def _start_servers(count: int, logs: Path, env: dict) -> list[Server]:
    """Start `count` servers at once; on any failure or interrupt, stop every one that started."""
    pool = ThreadPoolExecutor(count)
    futures = [
        pool.submit(Server, output=logs / f"server-{number}.log", **env) for number in range(count)
    ]
    try:
        return [future.result() for future in futures]
    except BaseException:  # Ctrl-C and SIGTERM included: no server may outlive the drill
        for future in futures:
            with contextlib.suppress(BaseException):
                future.result().stop()  # waits for one still starting
        raise
    finally:
        pool.shutdown(wait=False)


@contextlib.contextmanager
def fleet(source: Template, servers: int = 2, **env: str) -> Iterator[Fleet]:
    """PostgreSQL (a copy of `source`), Redis and `servers` gunicorn tasks; all stopped after.

    `env` overrides the service's settings (e.g. WEB_CONCURRENCY).
    """
    directory = private_directory("drills-fleet-")
    postgres = Postgres.copy_of(source.data, directory / "data")
    redis_node = RedisNode(directory)
    try:
        postgres.start()
        redis_node.start()
        service = {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_node.url,
            "CACHE_KEY_PREFIX": "drills",
            **env,
        }
        started = _start_servers(servers, directory, service)
        try:
            yield Fleet(postgres, redis_node, started, source.token, directory)
        finally:
            for server in started:
                with contextlib.suppress(Exception):
                    server.stop()
    finally:
        redis_node.kill()
        postgres.stop()
        if os.environ.get("DRILLS_KEEP_LOGS") != "1":
            shutil.rmtree(directory, ignore_errors=True)


def workers(master: int) -> set[int]:
    """The pids of a gunicorn master's workers."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(child) for child in children}


def stop_on_sigterm() -> None:
    """Make SIGTERM stop the program as Ctrl-C does: every fleet is torn down on the way out."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
