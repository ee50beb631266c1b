"""The model's digests: recorded once at registration, checked by every loader after it.

Registration records the SHA-256 of `model.tar.gz` and of every file in it, in the lineage
record stored beside the model (itself pinned by its SHA-256 in the package's metadata) and as
two digests in the package's CustomerMetadataProperties. `mlops evaluate`, registration in the
target environment at promotion, and the serving container (ml.serve, through the
lineage.json digest set on the package's container) check them before a file is loaded: a
mismatch names the file with both digests and stops, leaving registry and stack files as
they were. See docs/security.md, "Model integrity".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.aws import registry
from ci.aws import s3 as s3util
from ci.errors import RefusedError
from ml.lineage import LINEAGE_FILE, ModelIntegrityError, file_digests, sha256_file, verify_digests


class ModelTamperedError(RefusedError):
    """A model file that does not hash as registration recorded it: nothing loads it."""


class UnverifiableModelError(RefusedError):
    """A package that records no digests (registered before they were): it cannot be checked."""


@dataclass(frozen=True)
class ModelDigests:
    archive_sha256: str
    files: dict[str, str]  # path in the archive -> SHA-256

    @property
    def files_sha256(self) -> str:
        """One SHA-256 over the file list, `sha256sum`'s format, sorted by path."""
        text = "".join(f"{digest}  {name}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def lineage_sha256(self) -> str:
        """The in-archive lineage.json's digest, which ml.serve checks the rest against."""
        return self.files.get(LINEAGE_FILE, "")

    def to_record(self) -> dict[str, Any]:
        return {"archiveSha256": self.archive_sha256, "filesSha256": self.files_sha256, "files": dict(self.files)}

    @classmethod
    def measure(cls, archive: Path, model_dir: Path) -> ModelDigests:
        return cls(sha256_file(archive), file_digests(model_dir))


def metadata(digests: ModelDigests) -> dict[str, str]:
    return {registry.K_MODEL_SHA: digests.archive_sha256, registry.K_MODEL_FILES_SHA: digests.files_sha256}


def recorded(s3, package: registry.Package) -> ModelDigests:
    """What registration recorded for the package, read through its pinned lineage record."""
    archive_sha = package.metadata.get(registry.K_MODEL_SHA)
    files_sha = package.metadata.get(registry.K_MODEL_FILES_SHA)
    lineage_uri = package.metadata.get(registry.K_LINEAGE)
    if not (archive_sha and files_sha and lineage_uri):
        raise UnverifiableModelError(
            f"package {package.arn} records no model digests ({registry.K_MODEL_SHA}); it was registered "
            "before digests were recorded, so its files cannot be verified and are not loaded"
        )
    data = s3util.get_bytes(s3, lineage_uri)
    actual = s3util.sha256_bytes(data)
    if actual != package.metadata.get(registry.K_LINEAGE_SHA):
        raise ModelTamperedError(
            f"{lineage_uri}: SHA-256 {actual}, expected {package.metadata.get(registry.K_LINEAGE_SHA)} "
            f"({registry.K_LINEAGE_SHA} of {package.arn}); the lineage record changed after registration"
        )
    files = (json.loads(data).get("model") or {}).get("files") or {}
    digests = ModelDigests(archive_sha, dict(files))
    if digests.files_sha256 != files_sha:
        raise ModelTamperedError(f"{lineage_uri}: its file list does not match {registry.K_MODEL_FILES_SHA}")
    return digests


def verify(archive: Path, model_dir: Path, expected: ModelDigests, where: str) -> None:
    """Every recorded file, no unrecorded one, then the archive itself; the first mismatch is
    named, with the expected and the actual SHA-256."""
    try:
        verify_digests(model_dir, expected.files, where)
    except ModelIntegrityError as err:
        raise ModelTamperedError(str(err)) from None
    extra = sorted(set(file_digests(model_dir)) - set(expected.files))
    if extra:
        raise ModelTamperedError(f"{', '.join(extra)}: not in the model registered as {where}; refused")
    actual = sha256_file(archive)
    if actual != expected.archive_sha256:
        raise ModelTamperedError(
            f"model.tar.gz: SHA-256 {actual}, expected {expected.archive_sha256} (recorded in {where}); refused"
        )
