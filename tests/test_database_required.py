"""Outside development the process needs its database settings, except for build commands.

A task whose DATABASE_URL and DB_SECRET are both missing must stop, not serve a SQLite
file of its own. The commands that need no database (the image build's collectstatic,
the lint's makemigrations check) say so with DJANGO_ALLOW_NO_DATABASE; the collectstatic
step itself runs in tests/test_container.py's `app_root` fixture, as the Dockerfile has it.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.project_copy import environment_without_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def run_without_database(environment: dict, *command: str) -> subprocess.CompletedProcess:
    """Run `command` in the project with no database variable but those in `environment`."""
    return subprocess.run(
        command,
        env={
            **environment_without_settings(),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            **environment,
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def makefile_command(name: str) -> list[str]:
    """The Makefile's recipe line that runs `name`, as argv with its variable assignments."""
    [line] = [
        line.strip()
        for line in (PROJECT_ROOT / "Makefile").read_text().splitlines()
        if line.startswith("\t") and name in line
    ]
    return shlex.split(line.replace("$(BIN)/", f"{VENV_BIN}/"))


def test_migrate_with_production_variables_and_no_database_refuses_naming_the_variables(
    production_environment,
):
    result = run_without_database(
        production_environment, sys.executable, "manage.py", "migrate", "--noinput"
    )

    assert result.returncode != 0
    assert (
        "django.core.exceptions.ImproperlyConfigured: No database is configured: "
        "set DATABASE_URL (a URL such as postgres://user:password@host:5432/items) "
        "or DB_SECRET (the RDS secret's JSON)."
    ) in result.stderr


def test_the_application_refuses_to_load_with_production_variables_and_no_database(
    production_environment,
):
    result = run_without_database(
        {**production_environment, "DJANGO_SETTINGS_MODULE": "backend.settings"},
        sys.executable,
        "-c",
        "from backend.wsgi import application",
    )

    assert result.returncode != 0
    assert "No database is configured" in result.stderr


def test_allowing_no_database_lets_no_command_use_one(production_environment):
    """The build's opt-in, left set by mistake, fails a migration instead of faking one."""
    result = run_without_database(
        {**production_environment, "DJANGO_ALLOW_NO_DATABASE": "1"},
        sys.executable,
        "manage.py",
        "migrate",
        "--noinput",
    )

    assert result.returncode != 0
    assert "settings.DATABASES is improperly configured" in result.stderr


def test_the_lints_migration_check_runs_without_a_database():
    command = makefile_command("makemigrations --check")
    assignments = dict(word.split("=", 1) for word in command if re.match(r"[A-Z_]+=", word))
    argv = [word for word in command if not re.match(r"[A-Z_]+=", word)]

    result = run_without_database(assignments, *argv)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "No changes detected"
