"""The .env file beside manage.py: development values for management commands only.

Each test starts a fresh process in a copy of the checkout (tests/project_copy.py) that holds a
.env, from a terminal with nothing exported unless the test says so.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.project_copy import bare_environment, copy_project

DOTENV = "DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=key-from-dotenv\nCACHE_TTL=7\n"
PRINT_SETTINGS = (
    "import os; from django.conf import settings; "
    "print(settings.DEBUG, settings.SECRET_KEY, settings.CACHE_TTL, 'CACHE_TTL' in os.environ)"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("dotenv") / "items-api")
    (root / ".env").write_text(DOTENV)
    return root


def run(project: Path, *arguments: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=project,
        env=bare_environment(project.parent) | variables,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_management_command_reads_the_env_file(project):
    result = run(project, "manage.py", "shell", "--verbosity=0", "-c", PRINT_SETTINGS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "key-from-dotenv", "7.0", "False"]


def test_variables_set_in_the_environment_win_over_the_env_file(project):
    result = run(
        project,
        "manage.py",
        "shell",
        "--verbosity=0",
        "-c",
        PRINT_SETTINGS,
        DJANGO_SECRET_KEY="key-from-environment",
        CACHE_TTL="9",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "key-from-environment", "9.0", "True"]


@pytest.mark.parametrize(
    "importer",
    [
        "import django; django.setup()",  # pytest-django, scripts
        "import backend.wsgi",  # gunicorn, in the image and everywhere else
    ],
)
def test_the_server_and_plain_imports_never_read_the_env_file(project, importer):
    result = run(project, "-c", importer, DJANGO_SETTINGS_MODULE="backend.settings")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_a_management_command_can_be_told_not_to_read_it(project):
    result = run(project, "manage.py", "check", DJANGO_READ_DOT_ENV_FILE="false")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
