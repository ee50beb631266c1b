"""KMS: keys rotate, and no key policy hands the key to everyone."""

from __future__ import annotations

from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, truthy
from policies.records import UNKNOWN, Resource
from policies.rules.base import resource_rule, say

KEY = "aws:kms/key:Key"


@resource_rule(
    "kms-key-rotation",
    "Customer-managed symmetric KMS keys rotate their key material.",
    severity="high",
    family="kms",
    types=(KEY,),
    awsguard="cmk-backing-key-rotation-enabled",
    why="The environment key encrypts data, artifacts, capture, topics and logs; yearly rotation limits what one "
    "leaked key version can decrypt and is required by most compliance baselines.",
    fix="set enable_key_rotation=True on aws.kms.Key.",
)
def kms_key_rotation(resource: Resource, ctx: PolicyContext, graph: StackGraph):
    spec = resource.props.get("customerMasterKeySpec") or resource.props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec is not UNKNOWN and str(spec) != "SYMMETRIC_DEFAULT":
        return  # AWS rotates only symmetric keys
    if not truthy(resource.props.get("enableKeyRotation", False)):
        yield say(resource, "key rotation is off", "set enable_key_rotation=True")


@resource_rule(
    "kms-key-policy-no-public",
    "No KMS key policy grants kms:* (or any KMS action, unscoped) to Principal '*'.",
    severity="critical",
    family="kms",
    types=(KEY,),
    why="A key policy is the key's root of trust: Principal '*' with kms:* lets any AWS account administer, use "
    "or schedule deletion of the key that protects every dataset of the environment.",
    fix="grant kms:* only to the account root (arn:aws:iam::<account>:root) and scope service principals with "
    "aws:SourceAccount.",
)
def kms_key_policy_no_public(resource: Resource, ctx: PolicyContext, graph: StackGraph):
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
