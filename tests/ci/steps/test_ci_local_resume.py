"""`mlops train --local` killed with SIGKILL at a random moment resumes, on the next identical run,
from the newest checkpoint it synced, and ends with exactly the weights of an uninterrupted run.
Every run record ends terminal; no temporary folder outlives its run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest
import torch
from ci_testkit import REPO

pytestmark = pytest.mark.moto_server

BUCKET = "mlops-local-artifacts-123456789012"
# 1200 rows (840 to train) / batch 50 = 17 steps an epoch, 12 epochs; a checkpoint every step, synced every 0.1 s.
TRAIN = [
    "train", "--stack", "local", "--local", "--synthetic", "1200", "--json",
    "--hp", "epochs=12", "--hp", "batch_size=50", "--hp", "checkpoint_every=1", "--hp", "keep_checkpoints=2",
    "--hp", "hidden_sizes=16", "--hp", "patience=0", "--hp", "model_card=false", "--hp", "importance_repeats=1",
    "--hp", "importance_max_rows=50", "--hp", "baseline_sample=100",
]  # fmt: skip
_STEP = re.compile(r"-step(\d{9})\.pt$")
TOTAL_STEPS = 17 * 12
KILLS = int(os.environ.get("MLOPS_TEST_KILLS", "20"))


def _mlops(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "MLOPS_CHECKPOINT_SYNC_SECONDS": "0.1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ci", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # kill -9 takes the whole job, as a lost machine does
        **popen,
    )


def _weights_digest(s3, model_data_url: str) -> str:
    key = model_data_url.split(f"s3://{BUCKET}/", 1)[1]
    archive = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        state = torch.load(io.BytesIO(tar.extractfile("model.pt").read()), weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode() + state[name].cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)["run"]


def _temp_folders() -> set[str]:
    return {p.name for p in __import__("pathlib").Path(tempfile.gettempdir()).glob("mlops-local-run-*")}


def _synced_step(s3, prefix: str) -> int:
    """The newest checkpoint step the victim has synced to S3 so far (0 when none)."""
    steps = [int(m[1]) for o in _objects(s3, prefix) if (m := _STEP.search(o["Key"]))]
    return max(steps, default=0)


def _kill_at_random_moment(s3, prefix: str, rng: random.Random, duration: float) -> tuple[str, int]:
    """Start a run and SIGKILL its process group: mostly once a random, later checkpoint step has
    reached S3 (mid-training, the case that matters), sometimes at a random time of its life."""
    already = _synced_step(s3, prefix)  # what the runs before it left: it resumes from there
    victim = _mlops(*TRAIN)
    started = time.monotonic()
    if rng.random() < 0.3 or already >= TOTAL_STEPS - 1:  # (a finished lineage: no later step to aim at)
        how = "time"
        time.sleep(rng.uniform(0.2, duration))
    else:
        how = "step"
        target = rng.randint(already + 1, TOTAL_STEPS - 1)
        while victim.poll() is None and time.monotonic() - started < 3 * duration:
            if _synced_step(s3, prefix) >= target:
                time.sleep(rng.uniform(0, 0.2))
                break
            time.sleep(0.02)
    if victim.poll() is None:
        os.killpg(victim.pid, signal.SIGKILL)
    victim.communicate()
    return how, _synced_step(s3, prefix)


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_to_the_uninterrupted_weights(emulator, stacks, mlops, boto):
    """20 runs in a row, each killed with SIGKILL (its whole process group) at a random moment;
    each next run resumes the newest synced checkpoint; the 21st finishes. ~13 s a run here."""
    assert mlops("local", "up", "--stack", "local").code == 0
    s3 = boto("s3")
    started = time.monotonic()
    straight = _finish(_mlops(*TRAIN))
    duration = time.monotonic() - started
    expected = _weights_digest(s3, straight["modelDataUrl"])
    assert straight["status"] == "Completed" and "resumedFromJob" not in straight
    prefix = straight["checkpointS3Uri"].split(f"s3://{BUCKET}/", 1)[1]

    rng = random.Random(20261129)
    kinds: list[tuple[str, int]] = []
    survivors = []
    while len(kinds) < KILLS:
        if _synced_step(s3, prefix) >= TOTAL_STEPS - 1:  # the chain reached its end: let one finish
            survivors.append(_finish(_mlops(*TRAIN)))
        kinds.append(_kill_at_random_moment(s3, prefix, rng, duration))
    survivors.append(_finish(_mlops(*TRAIN)))
    for survivor in survivors:  # every run that finished, however often its lineage was killed
        assert survivor["status"] == "Completed"
        assert _weights_digest(s3, survivor["modelDataUrl"]) == expected, survivor
    survivor = survivors[-1]

    runs = [json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in _objects(s3, "runs/")]
    assert all(r["status"] in ("Completed", "Stopped") for r in runs), [(r["job"], r["status"]) for r in runs]
    mid_training = [step for _, step in kinds if 0 < step < TOTAL_STEPS]
    assert len(mid_training) >= max(1, KILLS // 5), f"too few kills landed mid-training: {kinds}"
    assert survivor.get("resumedFromStep") or kinds[-1][1] in (0, TOTAL_STEPS), (survivor, kinds)
    stopped = [r for r in runs if r["status"] == "Stopped"]
    assert stopped and all(r["resumedBy"] for r in stopped)  # each killed run names the run that took over
    assert not _temp_folders(), _temp_folders()  # swept by the next run, or removed on the way out


def _objects(s3, prefix: str) -> list[dict]:
    return s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
