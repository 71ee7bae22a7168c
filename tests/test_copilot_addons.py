"""The environment addons (copilot/environments/addons): linted, scanned, and wired to the
workloads the way Copilot wires them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cfnlint
import environ
import pytest

from backend.connections import database_config
from tests.copilot.workspace import (
    ADDONS_PARAMETERS_FILE,
    ENV_ADDONS_DIR,
    EXPORT_PREFIX_IN_MANIFEST,
    EXPORT_PREFIX_IN_TEMPLATE,
    PROJECT_ROOT,
    SERVICE_ADDONS_DIR,
    WORKLOADS,
    addon_template_paths,
    export_name,
    from_cfn_references,
    load_template,
    merged_addons,
    output_resource_type,
    to_snake_case,
    workload_manifest,
)

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
RDS_CLUSTER_SCHEMAS = (
    Path(cfnlint.__file__).parent / "data" / "schemas" / "extensions" / "aws_rds_dbcluster"
)
CHECKOV = Path(os.environ.get("CHECKOV", PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))
# Fields a SecretTargetAttachment adds to the secret of an Aurora cluster.
ATTACHMENT_FIELDS = {"host", "port", "engine", "dbClusterIdentifier"}
COPILOT_TAGS = {"copilot-application": {"Ref": "App"}, "copilot-environment": {"Ref": "Env"}}
SECRET = "AWS::SecretsManager::Secret"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
# The environment's addons and the service's (copilot/api/addons, its monitoring).
ADDONS_DIRS = [ENV_ADDONS_DIR, SERVICE_ADDONS_DIR]
# What an environment stack passes to its addons besides the parameters file's values.
ENV_ADDON_RESERVED_PARAMETERS = {"App", "Env"}


def template_ids(path: Path) -> str:
    return path.name


def addons_dir_id(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--format", "parseable", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def tags_of(resource: dict) -> dict:
    return {tag["Key"]: tag["Value"] for tag in resource["Properties"].get("Tags", [])}


def resources_of_type(template: dict, resource_type: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def imports_by_kind() -> dict[str, set[str]]:
    """Export names (without the app-env prefix) imported by all workloads, by kind."""
    found: dict[str, set[str]] = {"variables": set(), "secrets": set(), "security_groups": set()}
    for workload in WORKLOADS:
        for kind, names in from_cfn_references(workload_manifest(workload)).items():
            found[kind] |= {n.removeprefix(EXPORT_PREFIX_IN_MANIFEST) for n in names}
    return found


def ingress_rules_into(template: dict, group: str) -> list[dict]:
    """Every ingress rule of a security group: inline ones and separate resources."""
    inline = template["Resources"][group]["Properties"].get("SecurityGroupIngress", [])
    separate = [
        r["Properties"]
        for r in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": group}
    ]
    return [*inline, *separate]


def iam_statements(template: dict) -> list[dict]:
    """Allow statements of every IAM policy the addons define (KMS key policies excluded:
    in a key policy, Resource "*" means the key itself)."""
    documents = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"}:
            documents.append(properties["PolicyDocument"])
    return [s for d in documents for s in d["Statement"] if s["Effect"] == "Allow"]


@pytest.fixture(scope="module")
def merged() -> dict:
    return merged_addons()


@pytest.fixture(scope="module")
def aurora() -> dict:
    return load_template(ENV_ADDONS_DIR / "aurora.yml")


@pytest.fixture(scope="module")
def redis() -> dict:
    return load_template(ENV_ADDONS_DIR / "redis.yml")


# --- Offline tools --------------------------------------------------------------------


@pytest.mark.parametrize("addons_dir", ADDONS_DIRS, ids=addons_dir_id)
def test_cfn_lint_reports_nothing_for_any_addon_template(addons_dir):
    result = lint(*addon_template_paths(addons_dir))

    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_cfn_lint_reports_nothing_for_the_merged_stack_copilot_deploys(merged, tmp_path):
    template = tmp_path / "addons.json"
    template.write_text(json.dumps(merged))

    result = lint(template)

    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_cfn_lint_flags_a_deprecated_aurora_engine_so_the_check_above_can_fail(tmp_path):
    """Copilot's own default, 14.4, is deprecated; the linter run above must notice such a thing."""
    aurora = load_template(ENV_ADDONS_DIR / "aurora.yml")
    aurora["Resources"]["DBCluster"]["Properties"]["EngineVersion"] = "14.4"
    aurora["Resources"]["DBClusterParameterGroup"]["Properties"]["Family"] = "aurora-postgresql14"
    template = tmp_path / "aurora-14.json"
    template.write_text(json.dumps(aurora))

    assert "W3690" in lint(template).stdout


@pytest.mark.parametrize("addons_dir", ADDONS_DIRS, ids=addons_dir_id)
def test_checkov_passes_every_check_on_the_addons_without_network(addons_dir):
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install-checkov`"
    result = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--directory",
            str(addons_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    results = report["results"]

    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    unexplained_skips = [
        (c["check_id"], c["resource"])
        for c in results["skipped_checks"]
        if not (c.get("check_result", {}).get("suppress_comment") or "").strip()
    ]
    scanned = {Path(c["file_path"]).name for c in results["passed_checks"]}
    assert failed == []
    assert unexplained_skips == []
    assert scanned == {path.name for path in addon_template_paths(addons_dir)}


# --- Copilot's addon conventions ------------------------------------------------------


@pytest.mark.parametrize("path", addon_template_paths(), ids=template_ids)
def test_each_template_declares_the_parameters_copilot_passes_and_no_other_reserved_one(path):
    """An environment stack passes App and Env to its addons (Copilot's
    envAddonsParameterReservedKeys); Name belongs to workload addons only."""
    parameters = load_template(path)["Parameters"]

    assert {"App", "Env"} <= set(parameters)
    assert "Name" not in parameters


@pytest.mark.parametrize("path", addon_template_paths(), ids=template_ids)
def test_no_template_silences_a_cfn_lint_check(path):
    assert "cfn-lint" not in load_template(path).get("Metadata", {})


def test_the_parameters_file_feeds_only_declared_non_reserved_parameters(merged):
    passed = set(load_template(ADDONS_PARAMETERS_FILE)["Parameters"])

    assert passed <= set(merged["Parameters"])
    assert passed.isdisjoint(ENV_ADDON_RESERVED_PARAMETERS)


def test_every_parameter_without_a_default_is_passed_by_copilot_or_the_parameters_file(merged):
    """Copilot refuses an addon whose parameter has neither a default nor a value."""
    passed = set(load_template(ADDONS_PARAMETERS_FILE)["Parameters"])
    required = {name for name, p in merged["Parameters"].items() if "Default" not in p}

    assert required <= passed | ENV_ADDON_RESERVED_PARAMETERS


def test_every_output_is_exported_under_the_app_and_env_namespace(merged):
    names = {name: export_name(output) for name, output in merged["Outputs"].items()}

    assert names == {name: f"{EXPORT_PREFIX_IN_TEMPLATE}{name}" for name in merged["Outputs"]}


def test_every_export_is_imported_by_a_workload_and_every_import_is_exported(merged):
    imported = set().union(*imports_by_kind().values())

    assert imported == set(merged["Outputs"])


def test_secrets_are_injected_as_secrets_and_security_groups_attached_as_groups(merged):
    expected = {"variables": set(), "secrets": set(), "security_groups": set()}
    for name, output in merged["Outputs"].items():
        kind = {SECRET: "secrets", SECURITY_GROUP: "security_groups"}.get(
            output_resource_type(merged, output), "variables"
        )
        expected[kind].add(name)

    assert imports_by_kind() == expected


@pytest.mark.parametrize("workload", WORKLOADS)
def test_each_import_lands_in_the_variable_copilot_would_name_after_the_output(workload):
    """Copilot injects a workload addon's output `RedisHost` as REDIS_HOST; the imports keep
    that convention, so the names match Copilot's whichever way the data tier is attached."""
    manifest = workload_manifest(workload)
    entries = {**manifest.get("variables", {}), **manifest.get("secrets", {})}

    mismatched = {
        variable: value["from_cfn"]
        for variable, value in entries.items()
        if isinstance(value, dict)
        and to_snake_case(value["from_cfn"].removeprefix(EXPORT_PREFIX_IN_MANIFEST)) != variable
    }

    assert mismatched == {}


def test_copilots_snake_case_conversion_is_reproduced():
    assert [to_snake_case(n) for n in ("DBSecret", "RedisAuthToken", "usersDdbTableName")] == [
        "DB_SECRET",
        "REDIS_AUTH_TOKEN",
        "USERS_DDB_TABLE_NAME",
    ]


def test_every_secret_and_key_carries_the_tags_copilots_execution_role_requires(merged):
    tagged = {**resources_of_type(merged, SECRET), **resources_of_type(merged, "AWS::KMS::Key")}

    untagged = [
        name
        for name, resource in tagged.items()
        if any(tags_of(resource).get(key) != value for key, value in COPILOT_TAGS.items())
    ]

    assert len(tagged) == 6
    assert untagged == []


# --- IAM ---------------------------------------------------------------------------------


def test_no_iam_statement_allows_every_action_or_every_resource(merged):
    too_wide = [
        s
        for s in iam_statements(merged)
        if "*" in str(s.get("Action")) or s.get("Resource") in ("*", ["*"])
    ]

    assert too_wide == []


def test_the_addons_grant_the_task_role_nothing(merged):
    """Secrets reach the container through Copilot's execution role at task start; the
    application itself calls no AWS API, so its task role needs no policy from here."""
    policies = [
        name
        for name, r in merged["Resources"].items()
        if r["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"}
    ]

    assert policies == []


# --- Aurora --------------------------------------------------------------------------------


def test_the_database_secret_holds_every_field_the_settings_read(aurora):
    generated = aurora["Resources"]["DBSecret"]["Properties"]["GenerateSecretString"]
    db_name = aurora["Parameters"]["DBName"]["Default"]
    template = json.loads(
        generated["SecretStringTemplate"]["Fn::Sub"].replace("${DBName}", db_name)
    )
    # What the secret holds once generated and attached to the cluster.
    secret = {
        **template,
        generated["GenerateStringKey"]: "generated-password",
        **{field: f"attached-{field}" for field in ATTACHMENT_FIELDS},
    }
    env = environ.Env()
    env.ENVIRON = {"DB_SECRET": json.dumps(secret)}

    config = database_config(env, default_sqlite=Path("unused.sqlite3"))

    assert {k: config[k] for k in ("HOST", "NAME", "USER", "PASSWORD")} == {
        "HOST": "attached-host",
        "NAME": "items",
        "USER": "items_admin",
        "PASSWORD": "generated-password",
    }


def test_aurora_is_encrypted_tls_only_and_snapshotted_on_delete(aurora):
    cluster = aurora["Resources"]["DBCluster"]
    properties = cluster["Properties"]

    assert (cluster["DeletionPolicy"], cluster["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    assert properties["StorageEncrypted"] is True
    assert properties["Engine"] == "aurora-postgresql"
    family = aurora["Resources"]["DBClusterParameterGroup"]["Properties"]
    assert family["Family"] == f"aurora-postgresql{properties['EngineVersion'].split('.')[0]}"
    assert family["Parameters"]["rds.force_ssl"] == "1"


def aurora_postgresql_branch(schema_file: str) -> dict:
    """The if/then branch of one of cfn-lint's RDS cluster schemas for aurora-postgresql."""
    schema = json.loads((RDS_CLUSTER_SCHEMAS / schema_file).read_text())
    return next(
        branch
        for branch in schema["allOf"]
        if branch["if"]["properties"].get("Engine", {}).get("const") == "aurora-postgresql"
    )


def test_aurora_runs_the_newest_postgresql_17_release_cfn_lint_knows(aurora):
    # engine_version.json allows these versions; engine_version_deprecated.json warns on those.
    known = aurora_postgresql_branch("engine_version.json")["then"]["properties"]
    deprecated = aurora_postgresql_branch("engine_version_deprecated.json")["if"]["properties"]
    releases = [
        v
        for v in known["EngineVersion"]["enum"]
        if re.fullmatch(r"17\.\d+", v) and v not in deprecated["EngineVersion"]["enum"]
    ]

    newest = max(releases, key=lambda v: int(v.split(".")[1]))

    assert aurora["Resources"]["DBCluster"]["Properties"]["EngineVersion"] == newest


def test_every_log_aurora_exports_goes_to_a_log_group_of_the_stack_with_a_retention(aurora):
    """RDS creates a missing /aws/rds/cluster/<id>/<log> group itself, with no retention and
    outside the stack; the group must exist first, under the cluster's fixed name."""
    cluster = aurora["Resources"]["DBCluster"]
    condition, cluster_name, unnamed = cluster["Properties"]["DBClusterIdentifier"]["Fn::If"]
    cluster_id = cluster_name["Fn::Sub"]
    groups = {
        name: resource["Properties"]
        for name, resource in resources_of_type(aurora, "AWS::Logs::LogGroup").items()
    }
    by_path = {group["LogGroupName"]["Fn::Sub"]: name for name, group in groups.items()}

    exported = cluster["Properties"]["EnableCloudwatchLogsExports"]
    needed = [by_path.get(f"/aws/rds/cluster/{cluster_id}/{log}") for log in exported]

    assert exported == ["postgresql"]
    assert None not in needed, by_path
    # Created before the cluster, or RDS would have made the group by then: the cluster
    # refers to it, where it is named.
    [tag] = cluster["Properties"]["Tags"]
    assert tag["Value"]["Fn::If"][:2] == [condition, {"Ref": needed[0]}]
    assert (condition, unnamed) == ("Named", {"Ref": "AWS::NoValue"})
    assert all(groups_conditions(aurora)[name] == condition for name in needed)
    for name in needed:
        assert groups[name]["RetentionInDays"] == {"Fn::If": ["IsProd", 365, 30]}
        assert groups[name]["KmsKeyId"] == {"Fn::GetAtt": ["DBKey", "Arn"]}


def groups_conditions(template) -> dict:
    return {
        name: resource.get("Condition")
        for name, resource in resources_of_type(template, "AWS::Logs::LogGroup").items()
    }


def test_an_environment_created_before_the_cluster_was_named_keeps_its_cluster(aurora):
    """A name or a zone added to an existing cluster or instance makes CloudFormation replace
    it with an empty one: NamedCluster=false leaves both out."""
    resources = aurora["Resources"]
    unnamed = {"Ref": "AWS::NoValue"}

    assert aurora["Parameters"]["NamedCluster"]["Default"] == "true"
    assert aurora["Conditions"]["Named"] == {"Fn::Equals": [{"Ref": "NamedCluster"}, "true"]}
    for resource, field in [
        ("DBCluster", "DBClusterIdentifier"),
        ("DBWriterInstance", "AvailabilityZone"),
        ("DBReaderInstance", "AvailabilityZone"),
    ]:
        condition, _, otherwise = resources[resource]["Properties"][field]["Fn::If"]
        assert (condition, otherwise) == ("Named", unnamed)


def test_the_prod_reader_runs_in_the_other_private_subnets_zone_than_the_writer(aurora):
    resources = aurora["Resources"]
    passed = load_template(ADDONS_PARAMETERS_FILE)["Parameters"]

    zones = {
        instance: passed[resources[instance]["Properties"]["AvailabilityZone"]["Fn::If"][1]["Ref"]]
        for instance in ("DBWriterInstance", "DBReaderInstance")
    }

    assert zones == {
        "DBWriterInstance": {"Fn::GetAtt": ["PrivateSubnet1", "AvailabilityZone"]},
        "DBReaderInstance": {"Fn::GetAtt": ["PrivateSubnet2", "AvailabilityZone"]},
    }
    assert passed["PrivateSubnets"]["Fn::Join"][1] == [
        {"Ref": "PrivateSubnet1"},
        {"Ref": "PrivateSubnet2"},
    ]


def test_aurora_capacity_comes_from_parameters(aurora):
    scaling = aurora["Resources"]["DBCluster"]["Properties"]["ServerlessV2ScalingConfiguration"]

    assert scaling == {
        "MinCapacity": {
            "Fn::If": ["IsProd", {"Ref": "ProdDBMinCapacity"}, {"Ref": "DBMinCapacity"}]
        },
        "MaxCapacity": {
            "Fn::If": ["IsProd", {"Ref": "ProdDBMaxCapacity"}, {"Ref": "DBMaxCapacity"}]
        },
    }


@pytest.mark.parametrize(
    ("template_name", "server_group", "client_group", "port"),
    [
        ("aurora.yml", "DBClusterSecurityGroup", "DBClientSecurityGroup", 5432),
        ("redis.yml", "CacheSecurityGroup", "CacheClientSecurityGroup", 6379),
    ],
)
def test_the_data_tier_admits_only_the_workload_client_group_on_its_port(
    template_name, server_group, client_group, port
):
    template = load_template(ENV_ADDONS_DIR / template_name)

    rules = [
        (
            r["IpProtocol"],
            r["FromPort"],
            r["ToPort"],
            r.get("SourceSecurityGroupId"),
            r.get("CidrIp"),
        )
        for r in ingress_rules_into(template, server_group)
    ]

    assert rules == [("tcp", port, port, {"Ref": client_group}, None)]


# --- ElastiCache ---------------------------------------------------------------------------


def test_the_cache_is_encrypted_and_authenticated_with_the_secret_token(redis):
    group = redis["Resources"]["ReplicationGroup"]["Properties"]

    assert group["AtRestEncryptionEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    assert group["AuthToken"] == {"Fn::Sub": "{{resolve:secretsmanager:${RedisAuthToken}}}"}
    assert group["CacheSubnetGroupName"] == {"Ref": "CacheSubnetGroup"}
    subnets = redis["Resources"]["CacheSubnetGroup"]["Properties"]["SubnetIds"]
    assert subnets == {"Ref": "PrivateSubnets"}


def test_the_cache_fails_over_across_zones_in_prod(redis):
    group = redis["Resources"]["ReplicationGroup"]["Properties"]
    prod_replicas = redis["Parameters"]["ProdCacheReplicas"]["AllowedValues"]

    assert group["AutomaticFailoverEnabled"] == {"Fn::If": ["HasReplicas", True, False]}
    assert group["MultiAZEnabled"] == {"Fn::If": ["HasReplicas", True, False]}
    assert {"Condition": "IsProd"} in redis["Conditions"]["HasReplicas"]["Fn::Or"]
    assert min(int(n) for n in prod_replicas) >= 1


def test_node_type_replicas_and_eviction_are_tunable_parameters(redis):
    group = redis["Resources"]["ReplicationGroup"]["Properties"]
    eviction = redis["Resources"]["CacheParameterGroup"]["Properties"]["Properties"]

    assert group["CacheNodeType"] == {
        "Fn::If": ["IsProd", {"Ref": "ProdCacheNodeType"}, {"Ref": "CacheNodeType"}]
    }
    assert eviction == {"maxmemory-policy": {"Ref": "CacheEvictionPolicy"}}
    # Every entry the cache writes has a TTL, so evicting among keys with one is enough.
    assert redis["Parameters"]["CacheEvictionPolicy"]["Default"] == "volatile-lru"
