"""`make test` does its own set-up on a fresh machine: Debian's Chromium, for the browser tests,
is installed when it is missing. apt-get, the outside world here, is a fake on PATH that logs
its calls and, when asked to, leaves an executable where the package would put Chromium."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.project_copy import PROJECT_ROOT

FAKE_APT_GET = """#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> "$APT_LOG"
if [ "$1" = install ] && [ -n "$INSTALLS_TO" ]; then
    printf '#!/bin/sh\\n' > "$INSTALLS_TO" && chmod +x "$INSTALLS_TO"
fi
"""


@pytest.fixture
def fake_apt_get(tmp_path) -> dict[str, str]:
    """The environment that puts the fake apt-get first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    (bin_dir / "apt-get").chmod(0o755)
    return {
        **{name: value for name, value in os.environ.items() if name != "DEBIAN_FRONTEND"},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "APT_LOG": str(tmp_path / "apt.log"),
    }


def make(*arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def apt_calls(env: dict) -> list[str]:
    log = Path(env["APT_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_a_missing_chromium_is_installed_from_the_debian_package(tmp_path, fake_apt_get):
    chromium = tmp_path / "chromium"

    result = make(
        "install-chromium",
        f"CHROMIUM={chromium}",
        "SUDO=",
        env=fake_apt_get | {"INSTALLS_TO": str(chromium)},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert apt_calls(fake_apt_get) == [
        "DEBIAN_FRONTEND= update -qq",
        "DEBIAN_FRONTEND=noninteractive install -y -qq chromium",
    ]
    assert os.access(chromium, os.X_OK)


def test_an_installed_chromium_is_left_alone(fake_apt_get):
    existing = PROJECT_ROOT / "manage.py"

    result = make("install-chromium", f"CHROMIUM={existing}", "SUDO=", env=fake_apt_get)

    assert result.returncode == 0, result.stdout + result.stderr
    assert apt_calls(fake_apt_get) == []


def test_an_install_that_leaves_no_chromium_fails_and_says_so(tmp_path, fake_apt_get):
    chromium = tmp_path / "chromium"

    result = make("install-chromium", f"CHROMIUM={chromium}", "SUDO=", env=fake_apt_get)

    assert result.returncode != 0
    assert f"Chromium is still missing at {chromium}" in result.stderr


def test_make_test_installs_chromium_first_when_it_is_missing(tmp_path):
    dry_run = make("-n", "test", f"CHROMIUM={tmp_path / 'chromium'}", "SUDO=")

    assert dry_run.returncode == 0, dry_run.stderr
    install = dry_run.stdout.find("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium")
    assert 0 <= install < dry_run.stdout.find(".venv/bin/pytest")


def test_make_test_installs_nothing_when_the_browser_tests_are_skipped(tmp_path):
    dry_run = make("-n", "test", f"CHROMIUM={tmp_path / 'chromium'}", "SKIP_BROWSER_TESTS=1")

    assert dry_run.returncode == 0, dry_run.stderr
    assert "apt-get" not in dry_run.stdout
