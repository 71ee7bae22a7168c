"""cfn-lint and checkov, the same offline checks as the Copilot addons, on every
synthesized template; and CDK's own validation at synthesis."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from items_infra.config import PROJECT_ROOT

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CHECKOV = Path(os.environ.get("CHECKOV", PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))
# W3005: CDK writes DependsOn beside a Ref that implies it; harmless and not ours to change.
CFN_LINT_IGNORED = ["W3005"]


@pytest.fixture
def template_file(synthesized, tmp_path) -> Path:
    path = tmp_path / f"{synthesized.stack.stack_name}.json"
    path.write_text(json.dumps(synthesized.json))
    return path


def test_cfn_lint_finds_nothing(template_file):
    result = subprocess.run(
        [str(CFN_LINT), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(template_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_synthesis_validation_reports_nothing_unacknowledged(synthesized):
    """What `make synth` would print as "Template validation found issues"."""
    report = Path(synthesized.stack.node.root.outdir) / "validation-report.json"
    plugins = json.loads(report.read_text())["pluginReports"] if report.exists() else []

    assert [v["description"][:120] for p in plugins for v in p["violations"]] == []


def test_checkov_fails_nothing_and_every_skip_gives_its_reason(template_file):
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install-checkov`"
    result = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--file",
            str(template_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    results = json.loads(result.stdout)["results"]

    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    assert results["passed_checks"]
    assert all(
        (c.get("check_result", {}).get("suppress_comment") or "").strip()
        for c in results["skipped_checks"]
    )
