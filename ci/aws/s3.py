"""S3 the way lineage needs it: every object we write or read is pinned by version and SHA-256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from ci.errors import NotFoundError, UsageError
from kernel.records import Record, RecordError
from ml.lineage import sha256_file  # the container hashes its data files the same way

R = TypeVar("R", bound=Record)

SHA_META = "sha256"  # x-amz-meta-sha256 on every object the pipeline writes


def split_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise UsageError(f"{uri!r} is not an S3 URI (s3://bucket/key)")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise UsageError(f"{uri!r} is not an S3 URI (s3://bucket/key)")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ObjectVersion:
    uri: str
    version_id: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "versionId": self.version_id, "sha256": self.sha256, "size": self.size}


def put_bytes(
    s3, uri: str, data: bytes, content_type: str = "application/octet-stream", kms_key: str | None = None
) -> ObjectVersion:
    bucket, key = split_uri(uri)
    sha = sha256_bytes(data)
    extra: dict[str, Any] = {"ContentType": content_type, "Metadata": {SHA_META: sha}}
    if kms_key:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    response = s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
    return ObjectVersion(uri, response.get("VersionId") or "null", sha, len(data))


def put_json(s3, uri: str, document: Any, kms_key: str | None = None) -> ObjectVersion:
    data = json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    return put_bytes(s3, uri, data, "application/json", kms_key)


def upload_file(s3, path: Path, uri: str, kms_key: str | None = None) -> ObjectVersion:
    """Upload a file of any size (boto3's managed, multipart transfer), recording its SHA-256."""
    path = Path(path)
    bucket, key = split_uri(uri)
    sha = sha256_file(path)
    extra: dict[str, Any] = {"ContentType": _content_type(path), "Metadata": {SHA_META: sha}}
    if kms_key:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    try:
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
    except S3UploadFailedError as err:  # boto3 wraps the service's answer; callers handle ClientError
        original = err.__cause__ or err.__context__
        if isinstance(original, ClientError):
            raise original from err
        raise
    head = s3.head_object(Bucket=bucket, Key=key)
    return ObjectVersion(uri, head.get("VersionId") or "null", sha, int(head.get("ContentLength", path.stat().st_size)))


def _object(uri: str, version_id: str | None) -> dict[str, Any]:
    """Bucket, Key and, unless it is S3's `null` (an unversioned object), VersionId: one object's request."""
    bucket, key = split_uri(uri)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        kwargs["VersionId"] = version_id
    return kwargs


def get_bytes(s3, uri: str, version_id: str | None = None) -> bytes:
    try:
        return s3.get_object(**_object(uri, version_id))["Body"].read()
    except ClientError as err:
        if err.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404", "NoSuchBucket", "InvalidArgument"):
            suffix = f" (version {version_id})" if version_id else ""
            raise NotFoundError(f"{uri}{suffix} does not exist") from err
        raise


def get_json(s3, uri: str, version_id: str | None = None) -> Any:
    data = get_bytes(s3, uri, version_id)
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise UsageError(f"{uri} is not JSON: {err}") from err


def as_record(record_type: type[R], raw: dict[str, Any], uri: str) -> R:
    """A JSON document read from `uri`, parsed into its record type; a malformed one is a usage
    error that names the fields (as a document that is not JSON is)."""
    try:
        return record_type.from_dict(raw, uri)
    except RecordError as err:
        raise UsageError(str(err)) from None


def exists(s3, uri: str) -> bool:
    bucket, key = split_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def describe_object(s3, uri: str, version_id: str | None = None) -> ObjectVersion:
    """Version and SHA-256 of an object: from our metadata when present, else by reading it."""
    try:
        head = s3.head_object(**_object(uri, version_id))
    except ClientError as err:
        raise NotFoundError(f"{uri} does not exist") from err
    sha = (head.get("Metadata") or {}).get(SHA_META) or sha256_bytes(get_bytes(s3, uri, version_id))
    return ObjectVersion(uri, head.get("VersionId") or "null", sha, int(head.get("ContentLength", 0)))


def list_objects(s3, uri: str) -> Iterator[dict[str, Any]]:
    bucket, prefix = split_uri(uri)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def download(s3, uri: str, dest: Path, version_id: str | None = None, expected_sha256: str | None = None) -> Path:
    """Download one object (one version) of any size; refuse it if it does not hash as recorded."""
    bucket, key = split_uri(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    extra = {"VersionId": version_id} if version_id and version_id != "null" else None
    try:
        s3.download_file(bucket, key, str(dest), ExtraArgs=extra)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "400"):
            suffix = f" (version {version_id})" if version_id else ""
            raise NotFoundError(f"{uri}{suffix} does not exist") from err
        raise
    if expected_sha256 and sha256_file(dest) != expected_sha256:
        dest.unlink(missing_ok=True)
        raise UsageError(f"{uri} (version {version_id}) does not match its recorded SHA-256 {expected_sha256}")
    return dest


def _content_type(path: Path) -> str:
    return {
        ".csv": "text/csv",
        ".json": "application/json",
        ".parquet": "application/x-parquet",
        ".gz": "application/gzip",
        ".jsonl": "application/jsonlines",
    }.get(path.suffix, "application/octet-stream")
