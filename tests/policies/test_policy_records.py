"""Every source becomes the same Resource record: preview dicts, stack exports, CrossGuard objects."""

from __future__ import annotations

import json

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from kernel.aws_model import UNKNOWN
from kernel.wire import SECRET_SIG, SIG_KEY
from policies.graph import StackGraph
from policies.records import (
    StateFileError,
    canonical_type,
    from_policy_resource,
    from_preview,
    from_preview_graph,
    from_state_resource,
    from_validation_args,
    load_state,
    type_from_urn,
)

STACK_URN = "urn:pulumi:prod::mlops::pulumi:pulumi:Stack::mlops-prod"
PROVIDER_URN = "urn:pulumi:prod::mlops::pulumi:providers:aws::default_7_51_0"


def test_preview_record_keeps_every_field():
    r = from_preview(
        {
            "urn": "urn:pulumi:prod::mlops::mlops:storage:Storage$aws:s3/bucket:Bucket::storage-data",
            "type": "aws:s3/bucket:Bucket",
            "name": "storage-data",
            "custom": True,
            "id": "b",
            "parent": STACK_URN,
            "provider": "",
            "dependencies": ["urn:x"],
            "props": {"bucket": "b", "tags": {"owner": "me"}},
        }
    )
    assert (r.type, r.name, r.id, r.parent, r.dependencies) == (
        "aws:s3/bucket:Bucket",
        "storage-data",
        "b",
        STACK_URN,
        ("urn:x",),
    )
    assert r.props == {"bucket": "b", "tags": {"owner": "me"}}
    assert r.source == "preview" and r.observed_only == frozenset()


def test_preview_outputs_become_the_stack_records_props():
    records = from_preview_graph(
        [{"urn": STACK_URN, "type": "pulumi:pulumi:Stack", "name": "mlops-prod", "custom": False, "props": {}}],
        {"region": "us-east-1"},
    )
    assert StackGraph(records).outputs == {"region": "us-east-1"}


def _state_resource(**overrides):
    base = {
        "urn": "urn:pulumi:test::p::aws:kms/key:Key::a",
        "custom": True,
        "id": "k-1",
        "type": "aws:kms/key:Key",
        "inputs": {
            "__defaults": ["enableKeyRotation"],
            "enableKeyRotation": False,
            "tags": {"__defaults": [], "owner": "me"},
        },
        "outputs": {
            "__meta": "{}",
            "arn": "arn:aws:kms:us-west-2:1:key/k-1",
            "enableKeyRotation": True,
            "policy": "{}",
            "tags": {"owner": "me"},
        },
        "provider": PROVIDER_URN + "::0670132b",
        "dependencies": ["urn:dep"],
    }
    base.update(overrides)
    return base


def test_state_inputs_win_and_outputs_fill_what_inputs_lack():
    r = from_state_resource(_state_resource())
    assert r.props["enableKeyRotation"] is False  # declared input, not the output
    assert r.props["arn"] == "arn:aws:kms:us-west-2:1:key/k-1"  # only in outputs
    assert "__defaults" not in r.props and "__defaults" not in r.props["tags"] and "__meta" not in r.props
    assert r.observed_only == {"arn", "policy"}
    assert r.provider == PROVIDER_URN + "::0670132b" and r.source == "state" and r.name == "a"


def test_state_without_inputs_is_judged_on_its_outputs():
    r = from_state_resource(_state_resource(inputs=None))
    assert r.props["enableKeyRotation"] is True
    assert "enableKeyRotation" in r.observed_only


@pytest.mark.parametrize(
    "secret, expected",
    [
        ({SIG_KEY: SECRET_SIG, "plaintext": json.dumps({"a": 1})}, {"a": 1}),
        ({SIG_KEY: SECRET_SIG, "plaintext": json.dumps("text")}, "text"),
        ({SIG_KEY: SECRET_SIG, "value": "raw"}, "raw"),
        ({SIG_KEY: SECRET_SIG, "ciphertext": "AAAA"}, UNKNOWN),
    ],
)
def test_state_secrets_are_unwrapped(secret, expected):
    r = from_state_resource(_state_resource(inputs={"policy": secret, "nested": [{"k": secret}]}))
    assert r.props["policy"] == expected
    assert r.props["nested"] == [{"k": expected}]


def test_provider_reference_with_id_resolves_to_the_provider_record():
    provider = from_state_resource(
        {
            "urn": PROVIDER_URN,
            "type": "pulumi:providers:aws",
            "custom": True,
            "id": "0670132b",
            "inputs": {"defaultTags": {"tags": {"owner": "me"}}},
        }
    )
    key = from_state_resource(_state_resource())
    assert StackGraph([provider, key]).provider_of(key) is provider


def test_load_state_reads_stack_and_project(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(
        json.dumps(
            {
                "version": 3,
                "deployment": {
                    "manifest": {"version": "v3.92.0"},
                    "resources": [
                        {
                            "urn": "urn:pulumi:prod::mlops::pulumi:pulumi:Stack::mlops-prod",
                            "type": "pulumi:pulumi:Stack",
                            "custom": False,
                            "outputs": {"region": "eu-west-1"},
                        },
                        _state_resource(),
                    ],
                },
            }
        )
    )
    state = load_state(path)
    assert (state.stack, state.project, state.pulumi_version, len(state.resources)) == ("prod", "mlops", "v3.92.0", 2)
    assert StackGraph(state.resources).outputs == {"region": "eu-west-1"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not JSON"),
        (json.dumps({"version": 3}), "no 'deployment' key"),
        (json.dumps({"version": 2, "deployment": {}}), "version 2 is not supported"),
        (json.dumps({"version": 3, "deployment": {"resources": {}}}), "deployment.resources is not a list"),
        (json.dumps({"version": 3, "deployment": {"resources": [{"type": "x"}]}}), "has no 'urn'"),
    ],
)
def test_bad_state_files_are_named_errors(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(StateFileError, match=message):
        load_state(tmp_path / "bad.json")


def test_missing_state_file_is_an_error(tmp_path):
    with pytest.raises(StateFileError, match="no such file"):
        load_state(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "token, canonical",
    [
        ("aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket"),
        ("aws:s3/bucketVersioningV2:BucketVersioningV2", "aws:s3/bucketVersioning:BucketVersioning"),
        ("aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl"),
        ("aws:s3/bucket:Bucket", "aws:s3/bucket:Bucket"),
        ("aws:sagemaker/endpoint:Endpoint", "aws:sagemaker/endpoint:Endpoint"),
    ],
)
def test_v2_type_tokens_fold_onto_v7_names(token, canonical):
    assert canonical_type(token) == canonical


def test_type_from_nested_urn():
    assert type_from_urn("urn:pulumi:s::p::mlops:storage:Storage$aws:s3/bucket:Bucket::b") == "aws:s3/bucket:Bucket"


def _opts(parent=None):
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def test_crossguard_validation_args_become_records_with_unknowns_marked():
    props = unknown_checking_proxy(
        {"bucket": UNKNOWN_STRING_VALUE, "tags": {"owner": "me"}, "rules": [{"status": "Enabled"}]}
    )
    provider = PolicyProviderResource("pulumi:providers:aws", {"region": "us-east-1"}, PROVIDER_URN, "default")
    args = ResourceValidationArgs(
        "aws:s3/bucketVersioning:BucketVersioning",
        props,
        "urn:pulumi:s::p::aws:s3/bucketVersioning:BucketVersioning::v",
        "v",
        _opts(STACK_URN),
        provider,
        {},
    )
    r = from_validation_args(args)
    assert r.props == {"bucket": UNKNOWN, "tags": {"owner": "me"}, "rules": [{"status": "Enabled"}]}
    assert isinstance(r.props["rules"], list) and isinstance(r.props["tags"], dict)
    assert (r.parent, r.provider, r.source) == (STACK_URN, PROVIDER_URN, "crossguard")


def test_crossguard_policy_resources_keep_parent_and_dependencies():
    stack = PolicyResource("pulumi:pulumi:Stack", {}, STACK_URN, "mlops-prod", _opts(), None, None, [], {})
    bucket = PolicyResource(
        "aws:s3/bucket:Bucket", unknown_checking_proxy({"bucket": "b"}), "urn:b", "b", _opts(), None, stack, [stack], {}
    )
    r = from_policy_resource(bucket)
    assert (r.parent, r.dependencies, r.props, r.custom) == (STACK_URN, (STACK_URN,), {"bucket": "b"}, True)
    assert from_policy_resource(stack).custom is False
