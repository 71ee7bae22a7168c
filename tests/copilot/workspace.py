"""The Copilot workspace under copilot/, read the way Copilot reads it.

Manifests are YAML 1.2 (Copilot parses them with a YAML 1.2 library): `on:` is the string
"on", never the boolean PyYAML 1.1 would make of it. Addon templates are CloudFormation and
are read with cfn-lint's own decoder, which understands the short-form intrinsic tags.
"""

import re
from pathlib import Path

from cfnlint.decode import decode
from ruamel.yaml import YAML

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COPILOT_DIR = PROJECT_ROOT / "copilot"
ENV_ADDONS_DIR = COPILOT_DIR / "environments" / "addons"
ADDONS_PARAMETERS_FILE = ENV_ADDONS_DIR / "addons.parameters.yml"
SERVICE_ADDONS_DIR = COPILOT_DIR / "api" / "addons"
WORKLOADS = ("api", "migrate")
ENVIRONMENTS = ("test", "prod")

# Copilot substitutes these itself; any other ${VAR} must be set in the deploying shell.
PREDEFINED_MANIFEST_VARIABLES = frozenset({"COPILOT_APPLICATION_NAME", "COPILOT_ENVIRONMENT_NAME"})
INTERPOLATION = re.compile(r"\$\{([_a-zA-Z][_a-zA-Z0-9]*)\}")
EXPORT_PREFIX_IN_MANIFEST = "${COPILOT_APPLICATION_NAME}-${COPILOT_ENVIRONMENT_NAME}-"
EXPORT_PREFIX_IN_TEMPLATE = "${App}-${Env}-"


def load_yaml(path: Path):
    """Parse a manifest as YAML 1.2 into plain dicts and lists."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def workload_manifest(name: str) -> dict:
    return load_yaml(COPILOT_DIR / name / "manifest.yml")


def environment_manifest(name: str) -> dict:
    return load_yaml(COPILOT_DIR / "environments" / name / "manifest.yml")


def manifest_paths() -> list[Path]:
    return sorted(COPILOT_DIR.glob("**/manifest.yml"))


def addon_template_paths(addons_dir: Path = ENV_ADDONS_DIR) -> list[Path]:
    """Every addon template: each YAML file in an addons folder but the parameters file."""
    return sorted(p for p in addons_dir.glob("*.yml") if p.name != ADDONS_PARAMETERS_FILE.name)


def load_template(path: Path) -> dict:
    template, problems = decode(str(path))
    assert not problems, f"{path.name} does not parse: {problems}"
    return template


def merged_addons() -> dict:
    """Merge the addon templates as Copilot does before deploying them as one nested stack.

    A section key defined in two templates must be identical in both; Mappings merge one
    level deeper. Description and AWSTemplateFormatVersion are not carried over.
    """
    merged: dict = {"AWSTemplateFormatVersion": "2010-09-09"}
    for path in addon_template_paths():
        template = load_template(path)
        for section in ("Metadata", "Parameters", "Conditions", "Resources", "Outputs"):
            _merge_level(merged.setdefault(section, {}), template.get(section, {}), path, section)
        for name, mapping in template.get("Mappings", {}).items():
            target = merged.setdefault("Mappings", {}).setdefault(name, {})
            _merge_level(target, mapping, path, f"Mappings.{name}")
    return merged


def _merge_level(target: dict, source: dict, path: Path, section: str) -> None:
    for key, value in source.items():
        assert key not in target or target[key] == value, (
            f"{path.name}: {section}.{key} differs from its definition in another addon; "
            "Copilot refuses to merge the templates."
        )
        target[key] = value


def to_snake_case(name: str) -> str:
    """Copilot's CamelCase to SCREAMING_SNAKE_CASE (template.ToSnakeCaseFunc)."""
    snake = re.sub(r"([a-z0-9]+)([A-Z])", r"\1_\2", name)
    return re.sub(r"([A-Z0-9])([A-Z][a-z])", r"\1_\2", snake).upper()


def interpolated_variables(text: str) -> set[str]:
    return set(INTERPOLATION.findall(text))


def export_name(output: dict) -> str:
    """The export name of an addon output, in its `!Sub` form."""
    return output["Export"]["Name"]["Fn::Sub"]


def output_resource_type(template: dict, output: dict) -> str | None:
    """The resource type an output refers to with `!Ref`, the test Copilot itself applies."""
    reference = output["Value"].get("Ref") if isinstance(output["Value"], dict) else None
    return template["Resources"].get(reference, {}).get("Type")


def from_cfn_references(manifest: dict) -> dict[str, set[str]]:
    """Export names a workload manifest imports, grouped by where: variables, secrets,
    security_groups; per-environment overrides included."""
    found: dict[str, set[str]] = {"variables": set(), "secrets": set(), "security_groups": set()}
    blocks = [manifest, *manifest.get("environments", {}).values()]
    for block in blocks:
        for kind in ("variables", "secrets"):
            for value in (block.get(kind) or {}).values():
                if isinstance(value, dict) and "from_cfn" in value:
                    found[kind].add(value["from_cfn"])
        groups = block.get("network", {}).get("vpc", {}).get("security_groups", [])
        if isinstance(groups, dict):
            groups = groups.get("groups", [])
        found["security_groups"].update(g["from_cfn"] for g in groups if isinstance(g, dict))
    return found
