"""`manage.py test` runs the pytest suite, as `pytest` and `make test` do.

pytest-django's FAQ gives a TEST_RUNNER that calls pytest.main() in manage.py's own process.
Here pytest runs as a child process instead: manage.py has loaded the settings before any
runner starts (from the environment and .env), and pytest's configuration in pyproject.toml
(pytest-env's test database and Redis, addopts) must decide them, as it does for `pytest`.
"""

import os
import subprocess  # nosec B404
import sys

from django.conf import settings

VERBOSITY_FLAGS = {0: ["--quiet"], 1: [], 2: ["--verbose"], 3: ["-vv"]}

# What `manage.py test` sets for its own process when nothing else did (a fresh clone, no
# .env yet): enough for its settings to load; the key signs nothing. pytest never sees
# them: its configuration decides the suite's settings.
PLACEHOLDER_KEY = "manage-py-test-starts-pytest-only"
STARTER_ONLY = {"DJANGO_SECRET_KEY": PLACEHOLDER_KEY, "DJANGO_ALLOW_NO_DATABASE": "1"}


def prepare_the_starter() -> None:
    """Called by manage.py before the settings load, for `manage.py test` only."""
    for name, value in STARTER_ONLY.items():
        os.environ.setdefault(name, value)


class PytestTestRunner:
    """Hand the labels and options of `manage.py test` to pytest and exit with its status.

    Labels are pytest's: paths and node ids (`tests/test_models.py::test_x`). Any other pytest
    option goes after `--`, with the paths after it: `manage.py test -k cache -- -x tests/`.
    """

    def __init__(self, verbosity=1, failfast=False, keyword=None, markexpr=None, **kwargs):
        self.verbosity = verbosity
        self.failfast = failfast
        self.keyword = keyword
        self.markexpr = markexpr

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument(
            "-k", dest="keyword", help="Only tests matching pytest's -k expression."
        )
        parser.add_argument(
            "-m", dest="markexpr", help="Only tests matching pytest's -m expression."
        )
        parser.add_argument(
            "--failfast", action="store_true", help="Stop at the first failure (pytest's -x)."
        )

    def pytest_arguments(self, test_labels) -> list[str]:
        """pytest's command line for these labels and options, with the project's configuration."""
        arguments = [
            "-c",
            str(settings.BASE_DIR / "pyproject.toml"),
            "--rootdir",
            str(settings.BASE_DIR),
        ]
        arguments += VERBOSITY_FLAGS.get(self.verbosity, ["-vv"])
        if self.failfast:
            arguments.append("--exitfirst")
        if self.keyword:
            arguments += ["-k", self.keyword]
        if self.markexpr:
            arguments += ["-m", self.markexpr]
        return [*arguments, *test_labels]

    def run_tests(self, test_labels, **kwargs) -> int:
        # This interpreter, pytest, and the caller's own labels: nothing from elsewhere.
        status = subprocess.call(  # nosec B603
            [sys.executable, "-m", "pytest", *self.pytest_arguments(test_labels)],
            env={
                name: value for name, value in os.environ.items() if STARTER_ONLY.get(name) != value
            },
        )
        if status:
            # pytest's own status (1 failed, 2 interrupted, 5 no tests), not Django's blanket 1.
            sys.exit(status)
        return 0
