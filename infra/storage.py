"""Encrypted, versioned storage: one KMS key and the data, artifact and capture buckets.

Each bucket gets, as separate v7 resources: versioning, SSE-KMS with a bucket key, a full
public access block, owner-enforced object ownership, a TLS-only policy, lifecycle rules and
server access logging into a log bucket (which must use SSE-S3: S3 cannot write access logs
into an SSE-KMS bucket).

AWS rule S3-VERSIONED-EXPIRY: every bucket is versioned, and in a versioned bucket expiring an
object only adds a delete marker; the data stays as a noncurrent version. So every rule that
expires current versions also expires noncurrent ones (a short grace period after they become
noncurrent), and delete markers left with no versions behind them are removed.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.common import Component, Statement, deny_insecure_transport, physical_name, policy_document
from infra.environment import Environment
from kernel.stack_config import RetentionConfig

# Days a version expired by a lifecycle rule stays recoverable before it is deleted for good.
NONCURRENT_GRACE_DAYS = 7
CHECKPOINT_DAYS = 30


# Data-plane object calls the network perimeter refuses off the VPC endpoint. GetObjectVersion too:
# every bucket is versioned, and a version read is a read.
PERIMETER_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject")


@dataclass(frozen=True)
class DataPerimeter:
    """Objects are read and written only through the network's S3 endpoint, by AWS services on
    our behalf, or by the stack's own roles (`mlops-<env>-*`), which CI runs outside the VPC.

    AWS rule S3-SOURCEVPCE-PERIMETER: `aws:SourceVpce` is present only on requests that come
    through a VPC endpoint, so a Deny on "not this endpoint" refuses every other network path.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html
    """

    s3_endpoint_id: pulumi.Input[str]
    environments: tuple[str, ...]  # whose roles are exempt: this one and, for artifacts, downstream ones
    downstream: tuple[str, ...] = ()

    def statement(self, bucket_arn: pulumi.Input[str], account: pulumi.Input[str], purpose: str) -> dict[str, Any]:
        envs = (*self.environments, *(self.downstream if purpose == ARTIFACTS else ()))
        return {
            "Sid": "DenyObjectAccessOffTheNetwork",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PERIMETER_ACTIONS),
            "Resource": pulumi.Output.concat(bucket_arn, "/*"),
            "Condition": {
                "StringNotEquals": {"aws:SourceVpce": self.s3_endpoint_id},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"},
                "ArnNotLike": {
                    "aws:PrincipalArn": [
                        pulumi.Output.concat("arn:aws:iam::", account, ":role/", physical_name(env), "-*")
                        for env in envs
                    ]
                },
            },
        }


@dataclass(frozen=True)
class StorageArgs:
    env: Environment
    retention: RetentionConfig
    perimeter: DataPerimeter | None = None  # with the stack's own network (infra/network.py)


class Storage(Component):
    """KMS key + data / artifact / capture buckets + their access-log bucket."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:Storage", name, opts)
        account = args.env.account_id

        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"mlops {args.env.stack}: data, artifacts, capture, topics and logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_document(
                [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account, ":root")},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        # Alarms, EventBridge rules and budgets publish to the KMS-encrypted alert topic.
                        "Sid": "AlertPublishersUseTheKey",
                        "Effect": "Allow",
                        "Principal": {
                            "Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com"]
                        },
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                        "Resource": "*",
                    },
                    {
                        # CloudWatch Logs encrypts this account's log groups, and only those.
                        "Sid": "LogsEncryptThisAccountsLogGroups",
                        "Effect": "Allow",
                        "Principal": {"Service": f"logs.{args.env.region}.amazonaws.com"},
                        "Action": [
                            "kms:Encrypt",
                            "kms:Decrypt",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:DescribeKey",
                        ],
                        "Resource": "*",
                        "Condition": {
                            "ArnLike": {
                                "kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                                    "arn:aws:logs:", args.env.region, ":", account, ":log-group:*"
                                )
                            }
                        },
                    },
                ]
            ),
            opts=self.child,
        )
        self.alias = aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{physical_name(args.env.stack)}",
            target_key_id=self.key.key_id,
            opts=self.child,
        )

        days = args.retention
        self.log_bucket = self._bucket(name, "access-logs", args, kms=False, expire_days=max(days.logDays, 90))
        self.data_bucket = self._bucket(name, "data", args, kms=True, noncurrent_days=days.artifactDays)
        self.artifact_bucket = self._bucket(
            name,
            ARTIFACTS,
            args,
            kms=True,
            noncurrent_days=days.artifactDays,
            expire_prefix=("checkpoints/", CHECKPOINT_DAYS),
        )
        self.capture_bucket = self._bucket(name, "capture", args, kms=True, expire_days=days.captureDays)

        self.register_outputs(
            {
                "kmsKeyArn": self.key.arn,
                "dataBucket": self.data_bucket.bucket,
                "artifactBucket": self.artifact_bucket.bucket,
                "captureBucket": self.capture_bucket.bucket,
                "accessLogBucket": self.log_bucket.bucket,
            }
        )

    def _bucket(
        self,
        name: str,
        purpose: str,
        args: StorageArgs,
        *,
        kms: bool,
        expire_days: int | None = None,
        noncurrent_days: int | None = None,
        expire_prefix: tuple[str, int] | None = None,
    ) -> aws.s3.Bucket:
        logical = f"{name}-{purpose}"
        bucket = aws.s3.Bucket(
            logical,
            bucket=pulumi.Output.concat(physical_name(args.env.stack, purpose), "-", args.env.account_id),
            force_destroy=False,
            tags={"purpose": purpose},
            opts=self.child,
        )
        aws.s3.BucketOwnershipControls(
            logical, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=self.child
        )
        aws.s3.BucketPublicAccessBlock(
            logical,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self.child,
        )
        aws.s3.BucketVersioning(
            logical, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=self.child
        )
        sse: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": self.key.arn} if kms else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            logical,
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": kms}],
            opts=self.child,
        )

        statements = [deny_insecure_transport(bucket.arn)]
        if kms and args.perimeter:
            statements.append(args.perimeter.statement(bucket.arn, args.env.account_id, purpose))
        statements += write_once_statements(bucket.arn) if purpose == ARTIFACTS else []
        if not kms:  # the access-log bucket: let S3's logging service deliver, from this account only
            statements.append(
                {
                    "Sid": "S3ServerAccessLogsDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.env.account_id}},
                }
            )
        aws.s3.BucketPolicy(logical, bucket=bucket.id, policy=policy_document(statements), opts=self.child)

        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = [
            {
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ]
        if expire_days:
            rules.append(_expiry("expire-objects", {"days": expire_days}, NONCURRENT_GRACE_DAYS))
        if noncurrent_days:
            # Current versions here never expire by age, so S3 would keep a deleted object's
            # last delete marker forever. (It cannot share an Expiration with Days.)
            rules.append(_expiry("expire-noncurrent-versions", {"expired_object_delete_marker": True}, noncurrent_days))
        if expire_prefix:
            prefix, days = expire_prefix
            # The grace period: without it, expired checkpoints would stay as noncurrent versions for
            # the bucket-wide noncurrent period (artifactDays: years in prod).
            rules.append(_expiry(f"expire-{prefix.strip('/')}", {"days": days}, NONCURRENT_GRACE_DAYS, prefix))
        aws.s3.BucketLifecycleConfiguration(logical, bucket=bucket.id, rules=rules, opts=self.child)

        if kms:
            aws.s3.BucketLogging(
                logical,
                bucket=bucket.id,
                target_bucket=self.log_bucket.id,
                target_prefix=f"{purpose}/",
                opts=self.child,
            )
        return bucket


def _expiry(
    rule_id: str,
    expiration: aws.s3.BucketLifecycleConfigurationRuleExpirationArgsDict,
    noncurrent_days: int,
    prefix: str = "",
) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
    """An enabled rule that expires the objects under `prefix` (all by default) and, after
    `noncurrent_days`, their noncurrent versions."""
    return {
        "id": rule_id,
        "status": "Enabled",
        "filter": {"prefix": prefix},
        "expiration": expiration,
        "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
    }


ARTIFACTS = "artifacts"
PROMOTED_PREFIX = "promoted/"  # promoted models: written once, never replaced or deleted (ci/steps/promotion_copy.py)


def write_once_statements(bucket_arn: pulumi.Input[str]) -> list[Statement]:
    """The artifact bucket's promoted/ prefix is write-once (AWS rule S3-CONDITIONAL-WRITE): a
    PutObject without `If-None-Match` (condition key s3:if-none-match absent) is denied, so an
    object there is never overwritten, and no object or version there is deleted. CopyObject and
    multipart uploads into the prefix are refused too (they carry no such header); promotion
    writes with one PutObject. Source: https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
    and the Service Authorization Reference for s3:PutObject's condition keys."""
    objects = pulumi.Output.concat(bucket_arn, "/", PROMOTED_PREFIX, "*")
    return [
        {
            "Sid": "PromotedModelsAreWrittenOnce",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"Null": {"s3:if-none-match": "true"}},
        },
        {
            "Sid": "PromotedModelsAreNeverDeleted",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": objects,
        },
    ]
