"""The checkpoint-sync thread survives checkpoint rotation and S3's transient errors; a local run's
record always ends terminal and its temporary folder is always removed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ci.steps import training
from ci.steps.training import CheckpointSync


class FakeS3:
    """The three calls CheckpointSync makes, recorded; `on_upload` runs inside each upload."""

    def __init__(self, failures: int = 0, on_upload=None):
        self.objects: dict[str, bytes] = {}
        self.failures, self.on_upload = failures, on_upload

    def upload_file(self, filename, bucket, key, ExtraArgs=None):
        if self.on_upload:
            self.on_upload(key)
        if self.failures:
            self.failures -= 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "PutObject")
        self.objects[key] = Path(filename).read_bytes()

    def head_object(self, Bucket, Key):
        return {"VersionId": "1", "ContentLength": len(self.objects[Key])}

    def delete_object(self, Bucket, Key):
        self.objects.pop(Key, None)


def _checkpoints(directory: Path, *steps: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for step in steps:
        path = directory / f"ckpt-0123456789ab-step{step:09d}.pt"
        path.write_bytes(b"weights %d" % step)
        paths.append(path)
    return paths


def test_a_checkpoint_rotated_away_between_listing_and_upload_is_skipped(tmp_path):
    _, second, third = _checkpoints(tmp_path / "ckpt", 1, 2, 3)

    def rotate(key):  # the trainer saves step 4 and deletes steps 2 and 3 while step 1 uploads
        if key.endswith("step000000001.pt"):
            _checkpoints(tmp_path / "ckpt", 4)
            second.unlink()
            third.unlink()

    s3 = FakeS3(on_upload=rotate)
    sync = CheckpointSync(s3, "s3://bucket/ckpt/", None, backoff_s=0)
    sync(tmp_path / "ckpt")  # the old code raised FileNotFoundError here and the thread died
    assert set(s3.objects) == {"ckpt/ckpt-0123456789ab-step000000001.pt"}
    sync(tmp_path / "ckpt")  # the next sync picks up the new one
    assert set(s3.objects) == {f"ckpt/{p.name}" for p in (tmp_path / "ckpt").iterdir()}
    assert not sync.problems


def test_a_transient_s3_error_is_retried(tmp_path):
    _checkpoints(tmp_path / "ckpt", 1)
    s3 = FakeS3(failures=2)
    sync = CheckpointSync(s3, "s3://bucket/ckpt/", None, attempts=3, backoff_s=0)
    sync(tmp_path / "ckpt")
    assert list(s3.objects) == ["ckpt/ckpt-0123456789ab-step000000001.pt"] and not sync.problems


def test_errors_past_every_retry_are_reported_and_left_for_the_next_sync(tmp_path, capsys):
    _checkpoints(tmp_path / "ckpt", 1)
    s3 = FakeS3(failures=3)
    sync = CheckpointSync(s3, "s3://bucket/ckpt/", None, attempts=3, backoff_s=0)
    sync(tmp_path / "ckpt")  # never raises: the training job goes on
    assert not s3.objects and len(sync.problems) == 1 and "SlowDown" in sync.problems[0]
    assert "warning:" in capsys.readouterr().err
    sync(tmp_path / "ckpt")
    assert list(s3.objects) == ["ckpt/ckpt-0123456789ab-step000000001.pt"]


def test_a_checkpoint_being_written_is_never_uploaded(tmp_path):
    _checkpoints(tmp_path / "ckpt", 1)
    (tmp_path / "ckpt" / ".ckpt-0123456789ab-step000000002.pt.77.tmp").write_bytes(b"half")
    s3 = FakeS3()
    CheckpointSync(s3, "s3://bucket/ckpt/", None)(tmp_path / "ckpt")
    assert list(s3.objects) == ["ckpt/ckpt-0123456789ab-step000000001.pt"]


# --- run records and temporary folders, through `mlops train --local` -------------------------

LOCAL = ["train", "--stack", "local", "--local", "--synthetic", "200", "--json"]


def _runs(boto) -> list[dict]:
    s3 = boto("s3")
    bucket = "mlops-local-artifacts-123456789012"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="runs/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]


def _leftovers() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(f"{training.TEMP_PREFIX}*"))


@pytest.mark.moto_server
@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (KeyboardInterrupt(), "Stopped", 130),
        (RuntimeError("a bug"), "Failed", 1),
        (OSError(28, "No space left on device"), "Failed", 1),
    ],
)
def test_a_local_run_ends_terminal_and_tidy_however_it_ends(
    emulator, stacks, mlops, boto, monkeypatch, raised, status, code
):
    """Before: the record stayed InProgress forever on Ctrl-C or an exception."""
    assert mlops("local", "up", "--stack", "local").code == 0
    before = _leftovers()

    def explode(base, *args, **kwargs):
        assert base.is_dir() and base.name.startswith(training.TEMP_PREFIX)
        raise raised

    monkeypatch.setattr(training, "run_training", explode)
    result = mlops(*LOCAL)
    assert result.code == code, result
    assert "Traceback" not in result.err
    (run,) = _runs(boto)
    assert run["status"] == status and run["finishedAt"] and run["failureReason"]
    assert _leftovers() <= before  # the temporary folder went with it
