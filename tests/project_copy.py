"""A copy of the checkout in a temporary folder, for tests that write where a developer's own
files live (.env, db.sqlite3) or that must not see them."""

import os
import shutil
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _left_out() -> list[str]:
    """What a fresh clone lacks: what .gitignore names, git's own folder, tools' caches."""
    ignored = (PROJECT_ROOT / ".gitignore").read_text().splitlines()
    names = [line.strip().rstrip("/") for line in ignored if line.strip() and line[0] != "#"]
    return [*names, ".git", ".hypothesis"]


def copy_project(destination: Path) -> Path:
    """The checkout as a fresh clone holds it, with `.venv` linked to this test run's virtualenv."""
    shutil.copytree(PROJECT_ROOT, destination, ignore=shutil.ignore_patterns(*_left_out()))
    (destination / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return destination


def bare_environment(home: Path) -> dict[str, str]:
    """A new terminal's environment with nothing exported: no setting of the service."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def environment_without_settings() -> dict[str, str]:
    """This process's environment without the service's settings, and with `.env` unread.

    For a command that must see only the settings a test gives it: manage.py reads a
    developer's `.env` unless told not to, and README's PostgreSQL steps put
    DATABASE_URL there.
    """
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DB_", "REDIS_", "DATABASE_"))
    }
    return {**inherited, "DJANGO_READ_DOT_ENV_FILE": "false"}
