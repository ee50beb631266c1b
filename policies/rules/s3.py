"""S3: encryption with the environment's key, versioning, no public access, TLS only, logs, lifecycle.

pulumi-aws v7 declares a bucket's settings as separate resources (`BucketVersioning`,
`BucketServerSideEncryptionConfiguration`, ...); v5 declared them inline on `Bucket`
(`versioning`, `serverSideEncryptionConfiguration`, `loggings`, `lifecycleRules`), v6 on
`BucketV2` as one-element lists (`versionings`, `serverSideEncryptionConfigurations`). `S3View`
reads all three, so a state file from any provider is judged like the program's preview.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.aws_model import UNKNOWN
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, first, listify, truthy
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily, say

S3 = RuleFamily("s3")

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PAB = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ACL = "aws:s3/bucketAcl:BucketAcl"

PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
AWS_MANAGED_S3_KEY = "alias/aws/s3"
# Buckets whose data must expire or move: captured requests and model artifacts (by purpose tag or name).
LIFECYCLE_PURPOSES = ("capture", "artifact")


class S3View:
    """One bucket and every setting that applies to it, inline or as separate resources."""

    def __init__(self, bucket: Resource, graph: StackGraph):
        self.bucket = bucket
        self.graph = graph
        self.name = str(bucket.props.get("bucket") or bucket.id or bucket.name)

    def attached(self, type_token: str) -> list[Resource]:
        return self.graph.attached(self.bucket, (type_token,), "bucket", "bucket", "arn")

    # --- settings ---------------------------------------------------------------------------

    def versioning_enabled(self) -> bool:
        for v in self.attached(VERSIONING):
            for conf in listify(v.props.get("versioningConfiguration")):
                if (isinstance(conf, dict) and str(conf.get("status", "")).lower() == "enabled") or conf is UNKNOWN:
                    return True
        for inline in listify(first(self.bucket.props, "versioning", "versionings")):
            if isinstance(inline, dict) and truthy(inline.get("enabled")):
                return True
        return False

    def encryption_defaults(self) -> list[dict[str, Any]]:
        """Every `applyServerSideEncryptionByDefault` block that applies to the bucket."""
        rules: list[Any] = []
        for sse in self.attached(SSE):
            rules.extend(listify(first(sse.props, "rules", "rule")))
        for conf in listify(
            first(self.bucket.props, "serverSideEncryptionConfiguration", "serverSideEncryptionConfigurations")
        ):
            if isinstance(conf, dict):
                rules.extend(listify(first(conf, "rule", "rules")))
        defaults: list[dict[str, Any]] = []
        for rule in rules:
            if isinstance(rule, dict):
                for d in listify(
                    first(rule, "applyServerSideEncryptionByDefault", "applyServerSideEncryptionByDefaults")
                ):
                    if isinstance(d, dict):
                        defaults.append(d)
        return defaults

    def public_access_flags(self) -> dict[str, bool] | None:
        """The four flags from the bucket's (or the account's) public access block; None when absent."""
        blocks = self.attached(PAB) + self.graph.of_type(ACCOUNT_PAB)
        if not blocks:
            return None
        candidates = [{f: truthy(block.props.get(f, False)) for f in PAB_FLAGS} for block in blocks]
        return max(candidates, key=lambda flags: sum(flags.values()))

    def policy_statements(self) -> list[iam_docs.Statement] | None:
        """Statements of the bucket policy (separate resource or inline); None when unknowable."""
        documents = [p.props.get("policy") for p in self.attached(POLICY)]
        if "policy" in self.bucket.props:
            documents.append(self.bucket.props.get("policy"))
        statements: list[iam_docs.Statement] = []
        for doc in documents:
            parsed = iam_docs.parse(doc)
            if parsed is None and doc not in (None, ""):
                return None  # declared but unknown: cannot judge
            statements.extend(parsed or [])
        return statements

    def logging_targets(self) -> list[str]:
        targets = [str(log.props.get("targetBucket") or "") for log in self.attached(LOGGING)]
        for inline in listify(first(self.bucket.props, "logging", "loggings")):
            if isinstance(inline, dict) and inline.get("targetBucket"):
                targets.append(str(inline.get("targetBucket")))
        return [t for t in targets if t]

    def is_log_target(self) -> bool:
        """Is this bucket where other buckets deliver their server access logs?"""
        names = {self.name, self.bucket.id, str(self.bucket.props.get("arn") or "")} - {""}
        for logging in self.graph.of_type(LOGGING):
            if str(logging.props.get("targetBucket") or "") in names:
                return True
        for other in self.graph.of_type(BUCKET):
            for inline in listify(first(other.props, "logging", "loggings")):
                if isinstance(inline, dict) and str(inline.get("targetBucket") or "") in names:
                    return True
        return False

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        rules: list[Any] = []
        for lc in self.attached(LIFECYCLE):
            rules.extend(listify(lc.props.get("rules")))
        rules.extend(listify(self.bucket.props.get("lifecycleRules")))
        return [r for r in rules if isinstance(r, dict)]

    def purpose(self) -> str:
        tags = self.bucket.props.get("tags")
        if isinstance(tags, dict) and isinstance(purpose := tags.get("purpose"), str):
            return purpose
        return f"{self.bucket.name} {self.name}"

    def ownership(self) -> list[str]:
        values = []
        for oc in self.attached(OWNERSHIP):
            for rule in listify(oc.props.get("rule")):
                if isinstance(rule, dict):
                    values.append(str(rule.get("objectOwnership") or ""))
        return values


def _buckets(graph: StackGraph) -> Iterable[S3View]:
    for bucket in graph.of_type(BUCKET):
        yield S3View(bucket, graph)


@S3.stack(
    "s3-bucket-kms-encryption",
    severity="high",
    awsguard="(none; s3-bucket-server-side-encryption-enabled in AWS Config)",
    blind_spots=((SSE, "rules"),),
)
def s3_bucket_kms_encryption(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 buckets encrypt with a customer-managed KMS key (SSE-KMS).

    Why: SSE-S3 or the AWS-managed aws/s3 key cannot be scoped per environment or revoked; a customer-managed key makes
    every read of training data, artifacts and captured requests an auditable, deniable KMS call.

    Fix: declare aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' and kms_master_key_id=<the
    environment key ARN>. Server-access-log targets are exempt: S3 can only write access logs to SSE-S3 buckets.
    """
    out = Collected()
    for view in _buckets(graph):
        if view.is_log_target():
            continue  # S3 log delivery does not support SSE-KMS targets
        defaults = view.encryption_defaults()
        if not defaults:
            out.flag(
                view.bucket,
                f"bucket {view.name} declares no default encryption",
                "add a BucketServerSideEncryptionConfiguration with sse_algorithm='aws:kms' "
                "and the environment's KMS key",
            )
            continue
        for d in defaults:
            algorithm = d.get("sseAlgorithm")
            key = d.get("kmsMasterKeyId")
            if algorithm is UNKNOWN:
                continue
            if str(algorithm) not in ("aws:kms", "aws:kms:dsse"):
                out.flag(
                    view.bucket,
                    f"bucket {view.name} uses {algorithm} (S3-managed keys), not a customer-managed KMS key",
                    "set sse_algorithm='aws:kms' and kms_master_key_id to the environment key",
                )
            elif not key or str(key) == AWS_MANAGED_S3_KEY:
                out.flag(
                    view.bucket,
                    f"bucket {view.name} uses the AWS-managed aws/s3 key",
                    "set kms_master_key_id to the environment's customer-managed key ARN",
                )
    return out.items


@S3.stack("s3-bucket-versioning", severity="medium")
def s3_bucket_versioning(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 buckets have versioning enabled.

    Why: Lineage records S3 object versions of training data; without versioning an overwrite silently changes what a
    recorded model was trained on, and a deleted artifact cannot be recovered.

    Fix: declare aws.s3.BucketVersioning(bucket=..., versioning_configuration={'status': 'Enabled'}).
    """
    return [
        (
            v.bucket,
            say(
                v.bucket,
                f"bucket {v.name} is not versioned",
                "add aws.s3.BucketVersioning with versioning_configuration status 'Enabled'",
            ),
        )
        for v in _buckets(graph)
        if not v.versioning_enabled()
    ]


@S3.stack("s3-public-access-block", severity="critical", blind_spots=tuple((PAB, flag) for flag in PAB_FLAGS))
def s3_public_access_block(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 buckets block public access with all four public-access-block flags.

    Why: One public ACL or policy exposes training data, models or captured customer requests to the internet; the block
    overrides any later mistake.

    Fix: declare aws.s3.BucketPublicAccessBlock with block_public_acls, block_public_policy, ignore_public_acls and
    restrict_public_buckets all True (or an account-level block).
    """
    out = Collected()
    for view in _buckets(graph):
        flags = view.public_access_flags()
        if flags is None:
            out.flag(
                view.bucket,
                f"bucket {view.name} has no public access block",
                "add aws.s3.BucketPublicAccessBlock with all four flags True",
            )
            continue
        off = [f for f, on in flags.items() if not on]
        if off:
            out.flag(
                view.bucket,
                f"bucket {view.name}'s public access block leaves {', '.join(off)} off",
                f"set {', '.join(off)} to True",
            )
    return out.items


@S3.stack("s3-tls-only", severity="high", blind_spots=((POLICY, "policy"),))
def s3_tls_only(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 bucket policies deny requests that do not use TLS.

    Why: Without an explicit deny on aws:SecureTransport=false, clients may read training data and artifacts over plain
    HTTP.

    Fix: add a bucket policy statement: Effect Deny, Principal *, Action s3:*, Resource [bucket, bucket/*], Condition
    Bool aws:SecureTransport 'false' (infra.common.deny_insecure_transport).
    """
    out = Collected()
    for view in _buckets(graph):
        statements = view.policy_statements()
        if statements is None:
            continue
        denies_http = any(
            not s.allows
            and s.effect.lower() == "deny"
            and "false" in [v.lower() for v in s.condition_values("aws:SecureTransport")]
            and any(a in ("s3:*", "*") for a in s.actions)
            for s in statements
        )
        if not denies_http:
            out.flag(
                view.bucket,
                f"bucket {view.name} has no policy denying non-TLS requests",
                "attach a BucketPolicy with a Deny on aws:SecureTransport = false for s3:*",
            )
    return out.items


@S3.stack("s3-access-logging", severity="medium", awsguard="s3-bucket-logging-enabled")
def s3_access_logging(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 buckets deliver server access logs (except the log bucket itself).

    Why: Access logs are the record of who read which training data or model; an incident without them has no timeline.

    Fix: declare aws.s3.BucketLogging(bucket=..., target_bucket=<the access-log bucket>, target_prefix='<purpose>/').
    """
    return [
        (
            v.bucket,
            say(
                v.bucket,
                f"bucket {v.name} does not log access",
                "add aws.s3.BucketLogging targeting the environment's access-log bucket",
            ),
        )
        for v in _buckets(graph)
        if not v.logging_targets() and not v.is_log_target()
    ]


def _rule_enabled(rule: dict[str, Any]) -> bool:
    status = rule.get("status")
    if status is not None:
        return status is UNKNOWN or str(status).lower() == "enabled"
    return truthy(rule.get("enabled", False))


def _rule_ages_data(rule: dict[str, Any]) -> bool:
    for key in (
        "expiration",
        "expirations",
        "noncurrentVersionExpiration",
        "noncurrentVersionExpirations",
        "transitions",
        "noncurrentVersionTransitions",
        "transition",
    ):
        for block in listify(rule.get(key)):
            if block is UNKNOWN or (
                isinstance(block, dict) and any(v not in (None, "", 0, False) for v in block.values())
            ):
                return True
    return False


@S3.stack("s3-lifecycle", severity="medium")
def s3_lifecycle(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Buckets holding captured data or model artifacts expire or transition old objects.

    Why: Data capture writes every sampled request forever, and checkpoints and old artifact versions pile up: without
    lifecycle rules, storage cost and the amount of retained customer data only grow.

    Fix: declare aws.s3.BucketLifecycleConfiguration with an enabled rule that sets expiration or
    noncurrent_version_expiration (retention.captureDays / retention.artifactDays in the stack config).
    """
    out = Collected()
    for view in _buckets(graph):
        purpose = view.purpose().lower()
        if not any(p in purpose for p in LIFECYCLE_PURPOSES):
            continue
        if not any(_rule_enabled(r) and _rule_ages_data(r) for r in view.lifecycle_rules()):
            out.flag(
                view.bucket,
                f"bucket {view.name} holds {view.purpose()} data but no enabled "
                "lifecycle rule expires or transitions it",
                "add a BucketLifecycleConfiguration rule with expiration or noncurrent_version_expiration",
            )
    return out.items


@S3.resource("s3-no-public-grants", severity="critical", types=(POLICY, BUCKET, ACL), blind_spots=("policy",))
def s3_no_public_grants(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No bucket policy or ACL grants access to everyone.

    Why: A policy statement with Principal '*' and no account or source condition, or a public ACL, publishes the bucket
    regardless of who holds credentials.

    Fix: remove the statement or scope it with aws:SourceAccount / aws:PrincipalOrgID / aws:SourceArn (a condition that
    matches everyone, such as aws:SourceIp 0.0.0.0/0, '*' or ...IfExists, scopes nothing); use BucketOwnerEnforced
    ownership so ACLs are ignored.
    """
    acl = resource.props.get("acl")
    if isinstance(acl, str) and acl in PUBLIC_ACLS:
        yield say(resource, f"grants the canned ACL '{acl}' to everyone", "remove the acl (use BucketOwnerEnforced)")
    for s in iam_docs.open_to_everyone(resource.props.get("policy")):
        yield say(
            resource,
            f"policy {s.label} allows {', '.join(s.actions) or 'actions'} to Principal '*' "
            "without a condition that restricts the caller's account or source",
            "remove the statement or add a Condition on aws:SourceAccount / aws:PrincipalOrgID",
        )


@S3.stack("s3-object-ownership-enforced", severity="low")
def s3_object_ownership_enforced(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """S3 buckets disable ACLs (object ownership BucketOwnerEnforced).

    Why: With ACLs enabled, an object written by another account (or a log delivery) may stay owned by it and escape the
    bucket policy; BucketOwnerEnforced makes the policy the only access control.

    Fix: declare aws.s3.BucketOwnershipControls(bucket=..., rule={'object_ownership': 'BucketOwnerEnforced'}).
    """
    out = Collected()
    for view in _buckets(graph):
        values = view.ownership()
        if not values:
            out.flag(
                view.bucket,
                f"bucket {view.name} declares no object ownership controls",
                "add BucketOwnershipControls with object_ownership='BucketOwnerEnforced'",
            )
        elif not any(v in ("BucketOwnerEnforced",) or v == str(UNKNOWN) for v in values):
            out.flag(
                view.bucket,
                f"bucket {view.name} keeps ACLs enabled ({', '.join(values)})",
                "set object_ownership='BucketOwnerEnforced'",
            )
    return out.items
