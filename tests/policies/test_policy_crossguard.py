"""The CrossGuard pack: every rule wired as a pulumi_policy policy, validated with the SDK's own argument objects."""

from __future__ import annotations

import ast
import json

from policy_testkit import REPO, deployed, edit, stack_records
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, unknown_checking_proxy

from policies.crossguard import PACK_NAME, build_policies, pack_config
from policies.rules import RULES

OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
KEY_URN = "urn:pulumi:prod::mlops::aws:kms/key:Key::storage-key"


def _policies():
    return {p.name: p for p in build_policies()}


def _resource_args(type_, props, config=None, name="storage-key", provider=None):
    return ResourceValidationArgs(
        type_,
        unknown_checking_proxy(props),
        f"urn:pulumi:prod::mlops::{type_}::{name}",
        name,
        OPTS,
        provider,
        config or {},
    )


def _validate(policy, args):
    reported = []
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    return reported


def test_one_policy_per_rule_of_the_right_kind():
    policies = _policies()
    assert set(policies) == {r.id for r in RULES}
    for rule in RULES:
        kind = ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy
        assert isinstance(policies[rule.id], kind)
        assert policies[rule.id].config_schema is not None and policies[rule.id].remediation_steps


def test_default_levels_without_config():
    policies = _policies()
    assert policies["s3-public-access-block"].enforcement_level == EnforcementLevel.MANDATORY
    assert policies["kms-key-rotation"].enforcement_level == EnforcementLevel.ADVISORY
    assert policies["iam-training-instance-type-condition"].enforcement_level == EnforcementLevel.ADVISORY


def test_resource_policy_reports_and_passes():
    rotation = _policies()["kms-key-rotation"]
    assert _validate(rotation, _resource_args("aws:kms/key:Key", {"enableKeyRotation": False}))
    assert _validate(rotation, _resource_args("aws:kms/key:Key", {"enableKeyRotation": True})) == []
    assert _validate(rotation, _resource_args("aws:kms/key:Key", {"enableKeyRotation": UNKNOWN_BOOLEAN_VALUE})) == []
    assert _validate(rotation, _resource_args("aws:s3/bucket:Bucket", {})) == []  # other types are not its business


def test_resource_policy_reads_provider_default_tags_and_config():
    tags = _policies()["tags-required"]
    config = {"requiredTags": ["owner", "environment"], "environment": "prod"}
    provider = PolicyProviderResource(
        "pulumi:providers:aws",
        {"defaultTags": {"tags": {"owner": "me"}}},
        "urn:pulumi:prod::mlops::pulumi:providers:aws::default",
        "default",
    )
    args = _resource_args("aws:kms/key:Key", {"tags": {"environment": "prod"}}, config, provider=provider)
    assert _validate(tags, args) == []
    bare = _resource_args("aws:kms/key:Key", {"tags": {"environment": "prod"}}, config)
    assert "owner" in _validate(tags, bare)[0][0]
    assert _validate(tags, _resource_args("aws:kms/key:Key", {}, {})) == []  # no required tags configured


def test_environment_scoped_policy_needs_the_environment_in_config():
    capture = _policies()["sagemaker-endpoint-data-capture"]
    props = {"productionVariants": [{"variantName": "primary", "instanceType": "ml.m5.large"}]}
    type_ = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    assert _validate(capture, _resource_args(type_, props, {"environment": "prod"}))
    assert _validate(capture, _resource_args(type_, props, {"environment": "dev"})) == []
    assert _validate(capture, _resource_args(type_, props, {})) == []


def test_suppressions_in_config_silence_a_resource():
    rotation = _policies()["kms-key-rotation"]
    config = {
        "suppressions": [
            {"rule": "kms-key-rotation", "resource": "storage-key", "reason": "HSM", "expires": "2999-01-01"}
        ]
    }
    assert _validate(rotation, _resource_args("aws:kms/key:Key", {"enableKeyRotation": False}, config)) == []


def _policy_resources(records):
    """PolicyResource objects as the analyzer builds them, from a preview's records (parents and deps linked)."""
    by_urn = {}
    for r in records:
        by_urn[r.urn] = PolicyResource(
            r.type,
            unknown_checking_proxy(json.loads(json.dumps(dict(r.props)))),
            r.urn,
            r.name,
            OPTS,
            None,
            None,
            [],
            {},
        )
    for r in records:
        pr = by_urn[r.urn]
        pr.parent = by_urn.get(r.parent)
        pr.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
    return list(by_urn.values())


def test_stack_policies_judge_a_whole_preview_like_the_auditor():
    records, ctx = stack_records("prod", deployed("prod"))
    resources = _policy_resources(records)
    config = ctx.to_pack_config()
    policies = _policies()
    clean = [
        name
        for name, p in policies.items()
        if isinstance(p, StackValidationPolicy) and _validate(p, StackValidationArgs(resources, config))
    ]
    assert clean == []

    # break the 5xx alarm's dimensions: the stack policy reports it against the endpoint
    broken = edit(
        records,
        "MetricAlarm",
        "monitoring-churn-5xx",
        lambda props: props.update(dimensions={"EndpointName": "mlops-prod-churn"}),
    )
    reported = _validate(
        policies["sagemaker-endpoint-5xx-alarm"], StackValidationArgs(_policy_resources(broken), config)
    )
    assert len(reported) == 1 and reported[0][1].endswith("::serving-churn-endpoint")
    assert "VariantName" in reported[0][0]


def test_pack_config_sets_each_rule_level_for_the_stack():
    _, prod = stack_records("prod")
    _, dev = stack_records("dev")
    prod_config, dev_config = pack_config(prod), pack_config(dev)
    assert set(prod_config) == {r.id for r in RULES}
    assert prod_config["kms-key-rotation"]["enforcementLevel"] == "mandatory"
    assert dev_config["kms-key-rotation"]["enforcementLevel"] == "advisory"
    assert dev_config["s3-public-access-block"]["enforcementLevel"] == "mandatory"
    assert prod_config["tags-required"]["environment"] == "prod"


def test_policy_pack_is_constructed_only_in_main():
    pack_dir = REPO / "policies"
    calls = {}
    for path in pack_dir.rglob("*.py"):
        tree = ast.parse(path.read_text())
        n = sum(
            isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "PolicyPack"
            for node in ast.walk(tree)
        )
        if n:
            calls[path.relative_to(pack_dir).as_posix()] = n
    assert calls == {"__main__.py": 1}
    assert PACK_NAME in (pack_dir / "__main__.py").read_text() or "PACK_NAME" in (pack_dir / "__main__.py").read_text()
    yaml_text = (pack_dir / "PulumiPolicy.yaml").read_text()
    assert "name: python" in yaml_text and "version:" in yaml_text
