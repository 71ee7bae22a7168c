"""The pinned requirements carry no known vulnerability (pip-audit).

pip-audit asks the package index's vulnerability data about each pinned version.
Where that data cannot be reached (an offline machine, a mirror without it), the
test is skipped with the reason rather than passed: nothing was checked.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).parent / "pip-audit"


def audit(requirements: str) -> dict:
    result = subprocess.run(
        [
            str(PIP_AUDIT),
            "--requirement",
            requirements,
            # Every line is pinned with ==: nothing to resolve, nothing to install.
            "--no-deps",
            "--disable-pip",
            "--format",
            "json",
            "--progress-spinner",
            "off",
            "--timeout",
            "15",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip-audit could not reach the vulnerability data: {reason}")


@pytest.mark.parametrize("requirements", ["requirements.txt", "requirements-dev.txt"])
def test_no_pinned_requirement_has_a_known_vulnerability(requirements):
    report = audit(requirements)

    audited = [package for package in report["dependencies"] if "skip_reason" not in package]
    if not audited:
        reasons = {package["skip_reason"].split(":")[0] for package in report["dependencies"]}
        pytest.skip(f"no vulnerability data for any pinned package: {'; '.join(sorted(reasons))}")
    vulnerable = {
        f"{package['name']}=={package['version']}": [vuln["id"] for vuln in package["vulns"]]
        for package in audited
        if package["vulns"]
    }
    assert vulnerable == {}, "upgrade these pins, or record why a finding does not apply"
