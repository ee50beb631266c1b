"""Data set versions: upload or reference, and pin every object by S3 version and SHA-256.

A data set version lives under `s3://<dataBucket>/datasets/<model>/<id>/` with one folder per
split (`train/`, `validation/` for training, optionally `test/` held out for the gate) and a
`manifest.json` listing each object's URI, version id, SHA-256 and size. The data set's
`schema.json` (in `train/` or at the top, either layout) is uploaded as `train/schema.json`, where
the training container looks for it; the layouts are the ones `mlops data-check` reads
(`ml.data.find_splits`). Uploads are content
addressed (the id is a digest of the files), so the same files are one version, not two. The
manifest is what lineage records and what `mlops reproduce` reads back, version for version.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci.aws import s3 as s3util
from ci.errors import NotFoundError, UsageError
from ci.progress import QUIET, Progress
from ml.data import REQUIRED_SPLITS, SPLITS, find_splits

TRAINING_CHANNELS = ("train", "validation")
SCHEMA_FILE = "schema.json"


@dataclass(frozen=True)
class Manifest:
    uri: str  # the data set prefix, ending in /
    id: str
    created: str
    objects: list[dict[str, Any]]  # split, uri, versionId, sha256, size
    manifest_uri: str = ""
    manifest_version: str = ""

    def split_uri(self, split: str) -> str:
        return s3util.join(self.uri, split) + "/"

    def objects_in(self, split: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["split"] == split]

    @property
    def sha256(self) -> str:
        """One digest for the whole data set version (its objects' digests, in order)."""
        canonical = json.dumps(sorted((o["split"], o["uri"], o["sha256"]) for o in self.objects))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "id": self.id,
            "created": self.created,
            "sha256": self.sha256,
            "manifestUri": self.manifest_uri,
            "manifestVersionId": self.manifest_version,
            "objects": self.objects,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Manifest:
        try:
            return cls(
                uri=raw["uri"],
                id=raw["id"],
                created=raw["created"],
                objects=list(raw["objects"]),
                manifest_uri=raw.get("manifestUri", ""),
                manifest_version=raw.get("manifestVersionId", ""),
            )
        except KeyError as err:
            raise UsageError(f"data manifest lacks {err.args[0]!r}") from err


def find_split_files(directory: Path) -> dict[str, list[Path]]:
    """`train/ validation/ [test/]` folders, or `train.csv validation.csv [test.csv]` files; the
    data set's schema.json is listed with the train split."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"--data {directory}: not a directory")
    try:
        layout = find_splits(directory)
    except FileNotFoundError as err:
        raise UsageError(f"--data {err}") from None
    found = {split: list(files) for split, files in layout.splits.items()}
    if layout.schema is not None:
        found["train"].append(layout.schema)
    return found


def _object_name(directory: Path, split: str, path: Path) -> str:
    """The key of a file under its split's prefix: its path inside the split folder, its name
    for the flat layout; the schema is always `train/schema.json`."""
    if path.name == SCHEMA_FILE and split == "train":
        return SCHEMA_FILE
    root = directory / split
    return path.relative_to(root).as_posix() if root.is_dir() and path.is_relative_to(root) else path.name


def upload(
    s3, data_bucket: str, model: str, directory: Path, kms_key: str | None = None, progress: Progress = QUIET
) -> Manifest:
    """Upload a local data set as a new version (or find the identical one already there)."""
    files, content_id, prefix = local_version(directory, data_bucket, model)
    manifest_uri = prefix + "manifest.json"
    if s3util.exists(s3, manifest_uri):
        progress.info(f"data set {content_id} already uploaded: {prefix}")
        return read_manifest(s3, manifest_uri)
    targets = upload_targets(directory, files, prefix)
    objects = []
    with progress.task(f"uploading data set {content_id} to {prefix}", total=len(targets)) as uploading:
        if "test" not in files:
            progress.info("no test split: the gate will score candidates on the validation split")
        for split, path, uri in targets:
            version = s3util.upload_file(s3, path, uri, kms_key)
            objects.append({"split": split, **version.to_dict()})
            progress.info(f"{split}: {uri[len(prefix) :]} ({version.size} bytes, sha256 {version.sha256[:12]}...)")
            uploading.advance()
    manifest = Manifest(prefix, content_id, _now(), objects)
    return write_manifest(s3, manifest, manifest_uri, kms_key)


def local_version(directory: Path, data_bucket: str, model: str) -> tuple[dict[str, list[Path]], str, str]:
    """A local data set's files per split, its content id and the prefix `upload` puts it under (no S3 call)."""
    files = find_split_files(directory)
    digests = {
        (split, _object_name(directory, split, p)): s3util.sha256_file(p)
        for split, paths in files.items()
        for p in paths
    }
    content_id = hashlib.sha256(json.dumps(sorted(digests.items())).encode()).hexdigest()[:16]
    return files, content_id, f"s3://{data_bucket}/datasets/{model}/{content_id}/"


def upload_targets(directory: Path, files: dict[str, list[Path]], prefix: str) -> list[tuple[str, Path, str]]:
    """(split, local file, S3 URI) of every file `upload` writes."""
    targets = []
    for split, paths in files.items():
        for path in paths:
            targets.append((split, path, f"{prefix}{split}/{_object_name(directory, split, path)}"))
    return targets


def reference(
    s3, uri: str, artifact_bucket: str, model: str, kms_key: str | None = None, progress: Progress = QUIET
) -> Manifest:
    """Pin data already in S3 (a prefix with train/ validation/ [test/]): record versions and digests."""
    if not uri.endswith("/"):
        uri += "/"
    objects = []
    for split in SPLITS:
        listed = [o for o in s3util.list_objects(s3, f"{uri}{split}/") if not o["Key"].endswith("/")]
        if not listed and split in REQUIRED_SPLITS:
            raise NotFoundError(f"--data-uri {uri}: nothing under {split}/ (expected train/ validation/ [test/])")
        for obj in listed:
            bucket, _ = s3util.split_uri(uri)
            version = s3util.describe_object(s3, f"s3://{bucket}/{obj['Key']}")
            objects.append({"split": split, **version.to_dict()})
    existing = uri + "manifest.json"
    if s3util.exists(s3, existing):
        recorded = read_manifest(s3, existing)
        if sorted(o["sha256"] for o in recorded.objects) == sorted(o["sha256"] for o in objects):
            return recorded
    content_id = hashlib.sha256(json.dumps(sorted(o["sha256"] for o in objects)).encode()).hexdigest()[:16]
    manifest = Manifest(uri, content_id, _now(), objects)
    progress.info(f"pinned {len(objects)} objects of {uri} (data set {content_id})")
    return write_manifest(s3, manifest, f"s3://{artifact_bucket}/datasets/{model}/{content_id}/manifest.json", kms_key)


def write_manifest(s3, manifest: Manifest, uri: str, kms_key: str | None = None) -> Manifest:
    body = {k: v for k, v in manifest.to_dict().items() if k not in ("manifestUri", "manifestVersionId")}
    version = s3util.put_json(s3, uri, body, kms_key)
    return Manifest(manifest.uri, manifest.id, manifest.created, manifest.objects, uri, version.version_id)


def read_manifest(s3, uri: str, version_id: str | None = None) -> Manifest:
    raw = s3util.get_json(s3, uri, version_id)
    head = s3util.describe_object(s3, uri, version_id)
    manifest = Manifest.from_dict(raw)
    return Manifest(manifest.uri, manifest.id, manifest.created, manifest.objects, uri, head.version_id)


def latest(s3, data_bucket: str, model: str) -> Manifest:
    """The newest data set version of a model: what drift-triggered retraining trains on."""
    manifests = [
        o
        for o in s3util.list_objects(s3, f"s3://{data_bucket}/datasets/{model}/")
        if o["Key"].endswith("/manifest.json")
    ]
    if not manifests:
        raise NotFoundError(
            f"no data set versions for model {model!r} under s3://{data_bucket}/datasets/{model}/; "
            "upload one with `mlops train --data DIR`"
        )
    newest = max(manifests, key=lambda o: (o["LastModified"], o["Key"]))
    return read_manifest(s3, f"s3://{data_bucket}/{newest['Key']}")


def download_split(s3, manifest: Manifest, split: str, dest: Path) -> Path:
    """The exact recorded versions of one split, checked against their SHA-256."""
    dest.mkdir(parents=True, exist_ok=True)
    prefix = manifest.split_uri(split)
    objects = manifest.objects_in(split)
    if not objects:
        raise NotFoundError(f"data set {manifest.id} has no {split} split")
    for obj in objects:
        rel = obj["uri"][len(prefix) :] if obj["uri"].startswith(prefix) else obj["uri"].rsplit("/", 1)[-1]
        s3util.download(s3, obj["uri"], dest / rel, obj.get("versionId"), obj.get("sha256"))
    return dest


def synthetic(model: str, rows: int, seed: int, drift: float = 0.0) -> Path:
    """A small synthetic data set from `ml.data`, written as train/validation/test CSVs (70/15/15)
    with its schema.json, like any data set that brings its own."""
    from ml.data import DEFAULT_SCHEMA, make_synthetic

    frame = make_synthetic(rows, seed=seed, drift=drift)
    directory = Path(tempfile.mkdtemp(prefix=f"mlops-{model}-data-"))
    n_train, n_val = int(rows * 0.7), int(rows * 0.15)
    frame.iloc[:n_train].to_csv(directory / "train.csv", index=False)
    frame.iloc[n_train : n_train + n_val].to_csv(directory / "validation.csv", index=False)
    frame.iloc[n_train + n_val :].to_csv(directory / "test.csv", index=False)
    DEFAULT_SCHEMA.save(directory / SCHEMA_FILE)
    return directory


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
