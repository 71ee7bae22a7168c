"""bin/check-copilot-version: the deploy refuses a Copilot CLI older than the floor."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.copilot.workspace import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "bin" / "check-copilot-version"
MINIMUM = runpy.run_path(str(SCRIPT), run_name="check_copilot_version")["MINIMUM"]


def check(tmp_path: Path, copilot_prints: str | None) -> subprocess.CompletedProcess:
    """Run the script with a stand-in `copilot` that prints `copilot_prints` (none if None)."""
    if copilot_prints is not None:
        copilot = tmp_path / "copilot"
        copilot.write_text(f"#!/bin/sh\necho '{copilot_prints}'\n")
        copilot.chmod(0o755)
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("version", ["v1.33.0", "v1.33.4", "v1.34.0", "v2.0.0"])
def test_a_copilot_at_or_above_the_floor_passes(tmp_path, version):
    result = check(tmp_path, f"copilot version: {version}")

    assert (result.returncode, result.stdout) == (0, "")


@pytest.mark.parametrize("version", ["v1.32.1", "v1.26.0", "v1.25.0", "v0.99.0"])
def test_a_copilot_below_the_floor_is_refused_with_the_version_needed(tmp_path, version):
    result = check(tmp_path, f"copilot version: {version}")

    assert result.returncode == 1
    assert f"copilot {version} is too old: v1.33.0 or later is needed" in result.stdout


@pytest.mark.parametrize("output", [None, "copilot version: unknown"])
def test_a_missing_or_unreadable_copilot_is_refused(tmp_path, output):
    result = check(tmp_path, output)

    assert result.returncode == 1
    assert "v1.33.0 or later is needed" in result.stdout


def test_the_floor_is_the_first_release_without_the_aws_sdk_v2_handlers():
    assert MINIMUM == (1, 33, 0)
    assert os.access(SCRIPT, os.X_OK)


def test_the_guide_states_the_same_floor_and_checks_it_before_the_first_command():
    guide = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    first_deploy = guide.split("## First deploy, in order", 1)[1]

    assert "v1.33.0 or later" in guide.split("## First deploy, in order", 1)[0]
    assert first_deploy.index("bin/check-copilot-version") < first_deploy.index("copilot app init")
