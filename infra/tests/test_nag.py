"""cdk-nag's AWS Solutions rules find nothing that is not suppressed with a reason.

Synthesizing from Python does not fail on cdk-nag's errors as the `cdk` CLI does, so
the findings are read back from the stack's annotations.
"""

from aws_cdk.assertions import Annotations, Match


def nag_findings(stack, kind: str) -> list[str]:
    annotations = Annotations.from_stack(stack)
    find = annotations.find_error if kind == "error" else annotations.find_warning
    return [
        f"{finding.id}: {str(finding.entry.data)[:160]}"
        for finding in find("*", Match.string_like_regexp(r"(AwsSolutions|CdkNag)"))
    ]


def test_no_unsuppressed_cdk_nag_error(synthesized):
    assert nag_findings(synthesized.stack, "error") == []


def test_no_unsuppressed_cdk_nag_warning(synthesized):
    assert nag_findings(synthesized.stack, "warning") == []


def test_every_suppression_gives_its_reason(synthesized):
    reasons = [
        suppression["reason"]
        for resource in synthesized.json["Resources"].values()
        for suppression in resource.get("Metadata", {})
        .get("cdk_nag", {})
        .get("rules_to_suppress", [])
    ]
    assert reasons
    assert all(len(reason) >= 20 for reason in reasons)
