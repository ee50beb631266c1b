"""The lineage record: everything needed to say where a model came from and to train it again.

Built from what the training container can see: hyperparameters and seed, SHA-256 of every
channel file, the data manifest the pipeline passes in (S3 object versions and hashes), git
commit and dirty flag, stack name and image URI (from the environment the pipeline sets),
library versions, hardware, metrics and the hashes of the model files. Written as
`lineage.json` beside the model; `customer_metadata` flattens it into SageMaker's
CustomerMetadataProperties (string keys and values, bounded lengths).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RECORD_VERSION = 1
LIBRARIES = ("torch", "scikit-learn", "skops", "numpy", "pandas", "scipy", "pyarrow")
ENV_GIT_COMMIT = "MLOPS_GIT_COMMIT"
ENV_GIT_DIRTY = "MLOPS_GIT_DIRTY"
ENV_STACK = "MLOPS_STACK"
ENV_IMAGE_URI = "MLOPS_IMAGE_URI"

# SageMaker CustomerMetadataProperties limits (per the CreateModelPackage API reference).
METADATA_MAX_KEY = 128
METADATA_MAX_VALUE = 256
METADATA_MAX_ENTRIES = 50

LINEAGE_FILE = "lineage.json"
# The SHA-256 of a model's own lineage.json, set by registration on the package's container:
# the serving container checks lineage.json against it, then every file against lineage.json.
ENV_MODEL_DIGEST = "MLOPS_MODEL_LINEAGE_SHA256"


class ModelIntegrityError(RuntimeError):
    """A model file whose SHA-256 is not the one recorded for it: it is not loaded."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def hash_files(root: str | Path, files: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """[{path (relative to root), bytes, sha256}] for every file under `root` (or the given ones)."""
    base = Path(root)
    chosen = sorted(files) if files is not None else sorted(p for p in base.rglob("*") if p.is_file())
    return [
        {"path": p.relative_to(base).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in chosen
    ]


def file_digests(root: str | Path) -> dict[str, str]:
    """{path relative to root: SHA-256} of every file under root (what registration records)."""
    base = Path(root)
    return {p.relative_to(base).as_posix(): sha256_file(p) for p in sorted(base.rglob("*")) if p.is_file()}


def verify_digests(root: str | Path, expected: Mapping[str, str], recorded_in: str) -> None:
    """Every file in `expected` has its recorded SHA-256; the first that does not is named, with
    both digests (a missing file counts as a mismatch)."""
    base = Path(root)
    for name, digest in sorted(expected.items()):
        path = base / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != digest:
            raise ModelIntegrityError(
                f"{name}: SHA-256 {actual}, expected {digest} (recorded in {recorded_in}); "
                "the model changed after it was recorded, so it is not loaded"
            )


def verify_model_dir(root: str | Path, lineage_sha256: str | None = None, needed: Iterable[str] = ()) -> None:
    """Check a model directory before loading it: lineage.json against `lineage_sha256` (the
    digest registration recorded outside the archive), then every file lineage.json lists, and
    the `needed` files (what the loader will read) must be among them. Without a lineage.json
    and without a recorded digest there is nothing to check against (a model saved by hand)."""
    base = Path(root)
    path = base / LINEAGE_FILE
    if lineage_sha256:
        verify_digests(base, {LINEAGE_FILE: lineage_sha256}, f"${ENV_MODEL_DIGEST}, set at registration")
    elif not path.is_file():
        return
    try:
        files = json.loads(path.read_text()).get("model_files") or {}
    except (OSError, ValueError, AttributeError) as err:
        raise ModelIntegrityError(f"{LINEAGE_FILE}: unreadable ({err}); the model is not loaded") from None
    unlisted = sorted(set(needed) - set(files))
    if unlisted:
        raise ModelIntegrityError(
            f"{', '.join(unlisted)}: no SHA-256 recorded in {LINEAGE_FILE}; an unrecorded file is not loaded"
        )
    verify_digests(base, files, LINEAGE_FILE)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _dirty(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "dirty")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_record(
    *,
    hyperparameters: Mapping[str, Any],
    seed: int,
    data_files: Mapping[str, list[dict[str, Any]]],
    data_manifest: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    model_files: Mapping[str, str] | None = None,
    training: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The lineage record (DESIGN §3). `data_files`: channel -> hash_files(...) entries;
    `model_files`: file name -> sha256; `training`: hosts, device, world size, timings."""
    import os

    env = os.environ if environ is None else environ
    return {
        "version": RECORD_VERSION,
        "created_at": now(),
        "git": {"commit": env.get(ENV_GIT_COMMIT) or None, "dirty": _dirty(env.get(ENV_GIT_DIRTY))},
        "stack": env.get(ENV_STACK) or None,
        "image_uri": env.get(ENV_IMAGE_URI) or None,
        "training_job": {"name": env.get("TRAINING_JOB_NAME") or None, "arn": env.get("TRAINING_JOB_ARN") or None},
        "hyperparameters": dict(hyperparameters),
        "seed": seed,
        "data": {
            "manifest": dict(data_manifest) if data_manifest else None,
            "files": {k: list(v) for k, v in data_files.items()},
        },
        "libraries": library_versions(),
        "platform": {"system": platform.system(), "machine": platform.machine(), "python": sys.version.split()[0]},
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "model_files": dict(model_files or {}),
    }


def write_record(record: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def data_digest(record: Mapping[str, Any]) -> str:
    """One SHA-256 over every channel file's hash: a short name for "the same data"."""
    files = record.get("data", {}).get("files", {})
    text = json.dumps(
        {ch: [(f["path"], f["sha256"]) for f in entries] for ch, entries in sorted(files.items())}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


METADATA_PUNCTUATION = set("_.:/=+-@ ")


def metadata_text(value: Any) -> str:
    """A value in the characters CustomerMetadataProperties allows (letters, digits, spaces and
    _.:/=+-@): lists joined with "/", objects as "key=value" pairs, anything else replaced by "_"."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = "/".join(metadata_text(v) for v in value)
    elif isinstance(value, dict):
        text = " ".join(f"{k}={metadata_text(v)}" for k, v in sorted(value.items()))
    else:
        text = str(value)
    return "".join(c if c.isalnum() or c in METADATA_PUNCTUATION else "_" for c in text)


def customer_metadata(record: Mapping[str, Any]) -> dict[str, str]:
    """The record flattened for CustomerMetadataProperties (at most 50 entries, keys up to 128 and
    values up to 256 characters from a restricted set): dotted keys, plain-text values, longer
    values cut and marked "...". The full record's SHA-256 is included so the complete JSON
    (stored beside the model) can be checked against it."""
    flat: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if value is None or len(flat) >= METADATA_MAX_ENTRIES - 1:
            return
        text = metadata_text(value)
        if not text:
            return
        if len(text) > METADATA_MAX_VALUE:
            text = text[: METADATA_MAX_VALUE - 3] + "..."
        flat[metadata_text(key)[:METADATA_MAX_KEY]] = text

    put("lineage.version", str(record.get("version")))
    put("git.commit", record.get("git", {}).get("commit"))
    dirty = record.get("git", {}).get("dirty")
    put("git.dirty", None if dirty is None else str(dirty).lower())
    put("stack", record.get("stack"))
    put("image.uri", record.get("image_uri"))
    put("training.job", record.get("training_job", {}).get("name"))
    put("seed", str(record.get("seed")))
    put("data.sha256", data_digest(record))
    manifest = (record.get("data") or {}).get("manifest") or {}
    for i, entry in enumerate(manifest.get("objects", []) if isinstance(manifest, dict) else []):
        put(f"data.object.{i}", entry)
    for name, value in sorted((record.get("hyperparameters") or {}).items()):
        put(f"hp.{name}", value)
    for name, value in sorted((record.get("libraries") or {}).items()):
        put(f"lib.{name}", value)
    full = json.dumps(record, sort_keys=True, default=str)
    flat["lineage.sha256"] = hashlib.sha256(full.encode()).hexdigest()
    return flat
