"""KMS: keys rotate, and no key policy hands the key to everyone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kernel.aws_model import UNKNOWN
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, arn_account, listify, truthy
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily, say

KMS = RuleFamily("kms")

KEY = "aws:kms/key:Key"


@KMS.resource("kms-key-rotation", severity="high", types=(KEY,), awsguard="cmk-backing-key-rotation-enabled")
def kms_key_rotation(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Customer-managed symmetric KMS keys rotate their key material.

    Why: The environment key encrypts data, artifacts, capture, topics and logs; yearly rotation limits what one leaked
    key version can decrypt and is required by most compliance baselines.

    Fix: set enable_key_rotation=True on aws.kms.Key.
    """
    spec = resource.props.get("customerMasterKeySpec") or resource.props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec is not UNKNOWN and str(spec) != "SYMMETRIC_DEFAULT":
        return  # AWS rotates only symmetric keys
    if not truthy(resource.props.get("enableKeyRotation", False)):
        yield say(resource, "key rotation is off", "set enable_key_rotation=True")


@KMS.resource("kms-key-policy-no-public", severity="critical", types=(KEY,), blind_spots=("policy",))
def kms_key_policy_no_public(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No KMS key policy grants kms:* (or any KMS action, unscoped) to Principal '*'.

    Why: A key policy is the key's root of trust: Principal '*' with kms:* lets any AWS account administer, use or
    schedule deletion of the key that protects every dataset of the environment.

    Fix: grant kms:* only to the account root (arn:aws:iam::<account>:root) and scope service principals with
    aws:SourceAccount.
    """
    for s in iam_docs.parse(resource.props.get("policy")) or []:
        if not (s.allows and s.wildcard_principal):
            continue
        full = [a for a in s.actions if a.lower() in ("kms:*", "*")] or (["NotAction"] if s.not_actions else [])
        if full:
            yield say(
                resource,
                f"key policy {s.label} grants {full[0]} to Principal '*'",
                "name the account root or specific roles as principal",
            )
        elif not s.is_scoped_by_condition:
            yield say(
                resource,
                f"key policy {s.label} grants {', '.join(s.actions)} to Principal '*' without an account condition",
                "add Condition StringEquals kms:CallerAccount (or aws:SourceAccount)",
            )


# --- which key protects the stack's data -----------------------------------------------------

ALIAS = "aws:kms/alias:Alias"


def key_token(ref: Any) -> str | None:
    """`key/<id>` or `alias/<name>` for a key reference in any of its forms (id, ARN, alias, alias ARN)."""
    if not isinstance(ref, str) or not ref:
        return None
    if ref.startswith("arn:"):
        parts = ref.split(":", 5)
        return parts[5] if len(parts) == 6 else None
    return ref if ref.startswith(("alias/", "key/")) else f"key/{ref}"


def stack_key_tokens(graph: StackGraph) -> set[str]:
    """Every way this stack's own keys can be named: the keys it declares, their aliases, its kmsKeyArn output.

    An alias alone does not count: when no key can be named (its ARN unknown during a preview), the
    set is empty and nothing is judged, rather than flagging the key's own ARN as foreign.
    """
    refs: list[Any] = [graph.outputs.get("kmsKeyArn")]
    for key in graph.of_type(KEY):
        refs += [key.props.get("arn"), key.props.get("keyId"), key.id]
    keys = {t for t in map(key_token, refs) if t}
    if not keys:
        return set()
    aliases = [r for alias in graph.of_type(ALIAS) for r in (alias.props.get("name"), alias.props.get("arn"))]
    return keys | {t for t in map(key_token, aliases) if t}


def _key_references(graph: StackGraph) -> Iterable[tuple[Resource | None, str, Any]]:
    """(resource, what, key reference) for every place the stack chooses a key for its data."""
    from policies.rules.ecr import REPOSITORY
    from policies.rules.monitoring import LOG_GROUP, TOPIC
    from policies.rules.s3 import BUCKET, S3View
    from policies.sagemaker_graph import ENDPOINT_CONFIG

    for bucket in graph.of_type(BUCKET):
        view = S3View(bucket, graph)
        for d in view.encryption_defaults():
            yield bucket, f"bucket {view.name}'s default encryption", d.get("kmsMasterKeyId")
    for config in graph.of_type(ENDPOINT_CONFIG):
        yield config, "the endpoint's storage volumes", config.props.get("kmsKeyArn")
        for capture in listify(config.props.get("dataCaptureConfig")):
            if isinstance(capture, Mapping):
                yield config, "captured requests", capture.get("kmsKeyId")
        for async_config in listify(config.props.get("asyncInferenceConfig")):
            for output in listify(async_config.get("outputConfig") if isinstance(async_config, Mapping) else None):
                if isinstance(output, Mapping):
                    yield config, "asynchronous results", output.get("kmsKeyId")
    for topic in graph.of_type(TOPIC):
        yield topic, "topic messages", topic.props.get("kmsMasterKeyId")
    for group in graph.of_type(LOG_GROUP):
        yield group, "log events", group.props.get("kmsKeyId")
    for repo in graph.of_type(REPOSITORY):
        for conf in listify(repo.props.get("encryptionConfigurations")):
            if isinstance(conf, Mapping):
                yield repo, "images", conf.get("kmsKey")
    training = graph.outputs.get("trainingDefaults")
    if isinstance(training, Mapping):
        yield None, "training volumes (trainingDefaults.volumeKmsKeyArn)", training.get("volumeKmsKeyArn")


@KMS.stack(
    "kms-stack-key-only",
    severity="high",
    blind_spots=(
        ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "rules"),
        ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "kmsKeyArn"),
        ("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "dataCaptureConfig"),
        ("aws:sns/topic:Topic", "kmsMasterKeyId"),
    ),
)
def kms_stack_key_only(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """The stack's data, captures, messages, logs and images are encrypted under the stack's own KMS key.

    Why: Environments are separated by their keys: prod data under staging's key (or another account's) can be decrypted
    by whoever holds that key, and is lost when that environment is torn down; the key policy of this stack no longer
    decides who reads its data.

    Fix: point kms_master_key_id / kms_key_arn / kms_key_id at the stack's own key (infra/storage.py's key, exported as
    kmsKeyArn), never at an alias or ARN of another environment or account.
    """
    own = stack_key_tokens(graph)
    if not own:
        return []  # the stack declares no key we could compare with
    out = Collected()
    for resource, what, ref in _key_references(graph):
        token = key_token(ref)
        if token is None or token.startswith("alias/aws/"):
            continue  # absent, unknown, or AWS-managed: the encryption rules' findings
        account = arn_account(ref)
        if token in own and account in (None, graph.account_id):
            continue
        target = resource or graph.stack
        label = target.label if target is not None else "the stack"
        out.add(
            resource,
            f"{label}: {what} use KMS key {ref}, which is not this stack's key (another environment's or "
            "another account's). Fix: use the stack's own key (kmsKeyArn)",
        )
    return out.items
