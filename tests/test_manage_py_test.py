"""`python manage.py test` runs the pytest suite with pytest's configuration, not Django's
runner: labels are pytest's paths, `-k`, `-m` and `--failfast` are translated, anything after
`--` is passed on, and the exit status is pytest's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.test_runner import PytestTestRunner
from tests.project_copy import bare_environment, copy_project

TINY_TESTS = """
def test_one():
    pass


def test_two():
    assert {outcome}
"""
# Proves the run took pyproject.toml's settings (pytest-env's key, .env never read) while a
# developer's .env says otherwise.
CONFIGURATION_TEST = """
import os

from django.conf import settings


def test_settings_come_from_pytest_configuration():
    assert settings.SECRET_KEY == "test-only-secret-key-not-for-production"
    assert settings.CACHE_TTL == 300
    assert "CACHE_TTL" not in os.environ
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A checkout with a developer's .env, as `make run` writes it plus a setting of their own."""
    root = copy_project(tmp_path_factory.mktemp("manage-py-test") / "items-api")
    (root / ".env").write_text(
        "DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=developer-key-from-dotenv\nCACHE_TTL=7\n"
    )
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "test_passing.py").write_text(TINY_TESTS.format(outcome="True"))
    (folder / "test_failing.py").write_text(TINY_TESTS.format(outcome="False"))
    (folder / "test_configuration.py").write_text(CONFIGURATION_TEST)
    return folder


def manage_py_test(project: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`manage.py test` in a terminal with nothing exported, as after `make run`."""
    return subprocess.run(
        [sys.executable, "manage.py", "test", *arguments],
        cwd=project,
        # This run's own servers, so a test that reaches them uses this run's database.
        env=bare_environment(project.parent)
        | {name: os.environ[name] for name in ("DATABASE_URL", "REDIS_URL") if name in os.environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def summary(result: subprocess.CompletedProcess) -> str:
    return result.stdout.strip().splitlines()[-1]


def test_a_fresh_clone_without_an_env_file_runs_the_suite(tmp_path, tiny):
    fresh = copy_project(tmp_path / "items-api")
    assert not (fresh / ".env").exists()

    result = manage_py_test(fresh, str(tiny / "test_passing.py"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in summary(result)


def test_a_passing_file_passes(project, tiny):
    result = manage_py_test(project, str(tiny / "test_passing.py"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in summary(result)


def test_a_failing_test_makes_the_command_fail(project, tiny):
    result = manage_py_test(project, str(tiny / "test_failing.py"))

    assert result.returncode == 1
    assert "1 failed, 1 passed" in summary(result)


def test_k_selects_tests_by_name(project, tiny):
    result = manage_py_test(project, str(tiny / "test_failing.py"), "-k", "one")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in summary(result)


def test_a_selection_that_runs_nothing_is_not_a_success(project, tiny):
    result = manage_py_test(project, str(tiny / "test_passing.py"), "-k", "no_such_test")

    assert result.returncode == 5  # pytest's "no tests ran"


def test_arguments_after_a_double_dash_reach_pytest(project, tiny):
    result = manage_py_test(
        project, "--", "--exitfirst", str(tiny / "test_failing.py"), str(tiny / "test_passing.py")
    )

    assert result.returncode == 1
    assert "stopping after 1 failures" in result.stdout
    assert "1 failed, 1 passed" in summary(result)


def test_the_run_uses_pytest_configuration_and_ignores_the_developer_env_file(project, tiny):
    result = manage_py_test(project, "-v", "2", str(tiny / "test_configuration.py"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_settings_come_from_pytest_configuration PASSED" in result.stdout


def test_django_options_become_their_pytest_equivalents(settings):
    runner = PytestTestRunner(verbosity=2, failfast=True, keyword="cache", markexpr="not browser")

    assert runner.pytest_arguments(["tests/test_models.py"]) == [
        "-c",
        str(settings.BASE_DIR / "pyproject.toml"),
        "--rootdir",
        str(settings.BASE_DIR),
        "--verbose",
        "--exitfirst",
        "-k",
        "cache",
        "-m",
        "not browser",
        "tests/test_models.py",
    ]
