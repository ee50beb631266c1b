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
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
import torch
from ci_testkit import REPO

from ci.errors import NotFoundError
from ci.steps.training import RESUME_OWNER, TEMP_PREFIX, load_run

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
SYNC_SECONDS = 0.1  # how often a run mirrors its checkpoints to S3, and how often the test looks


def _mlops(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "MLOPS_CHECKPOINT_SYNC_SECONDS": str(SYNC_SECONDS), "OMP_NUM_THREADS": "1"}
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


@pytest.fixture
def runs_tmpdir(tmp_path, monkeypatch) -> Path:
    """The runs' TMPDIR: their own, so that no other session's runs share it, and in memory where
    there is /dev/shm (a checkpoint every step is an fsync every step)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="mlops-resume-test-", dir=shm if shm.is_dir() else tmp_path))
    monkeypatch.setenv("TMPDIR", str(folder))  # what _mlops hands the runs
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _temp_folders(tmpdir: Path) -> set[str]:
    return {p.name for p in tmpdir.glob(f"{TEMP_PREFIX}*")}


def _synced_step(s3, prefix: str) -> int:
    """The newest checkpoint step the victim has synced to S3 so far (0 when none)."""
    steps = [int(m[1]) for o in _objects(s3, prefix) if (m := _STEP.search(o["Key"]))]
    return max(steps, default=0)


def _finished(s3, prefix: str) -> bool:
    """Whether the run that last claimed the resume prefix completed (the next run starts over)."""
    try:
        owner = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + RESUME_OWNER)["Body"].read())["job"]
    except s3.exceptions.NoSuchKey:
        return False
    try:
        return load_run(s3, BUCKET, owner)["status"] == "Completed"
    except NotFoundError:  # killed between claiming the prefix and writing its record
        return False


def _first_sync_seconds(s3, proc: subprocess.Popen, started: float) -> float:
    """How long the first run took to sync its first checkpoint: its start-up (processes, imports,
    data), the part of a run's life that does not shrink when it resumes."""
    while proc.poll() is None and _synced_step(s3, "checkpoints/") == 0:
        time.sleep(SYNC_SECONDS)
    return time.monotonic() - started


def _kill_at_random_moment(
    s3, prefix: str, rng: random.Random, life: tuple[float, float], kills_left: int, fresh: bool
) -> tuple[str, int, dict | None]:
    """Start a run and SIGKILL its process group: mostly once a random, later checkpoint step has
    reached S3 (mid-training, the case that matters), sometimes at a random time of its life.
    The later step is a random share of the way on, about 1/kills_left of what is left on
    average: the kills spread over the whole of training rather than crowding its end (each
    lineage that reaches the end costs a finishing run and a fresh start). `fresh`: the prefix holds
    a finished run's checkpoints, which the run clears when it starts: no later step to aim at.
    `life`: a whole run's start-up and duration; a resumed run lives the start-up and its share
    of the rest. Returns how, the step synced when it died, and the run's record if it finished."""
    already = _synced_step(s3, prefix)  # what the runs before it left: it resumes from there
    victim = _mlops(*TRAIN)
    started = time.monotonic()
    startup, duration = life
    if rng.random() < 0.3 or fresh or already >= TOTAL_STEPS - 1:
        how = "time"
        left = 1.0 if fresh else (TOTAL_STEPS - already) / TOTAL_STEPS
        time.sleep(rng.uniform(0.2, startup + left * (duration - startup)))
    else:
        how = "step"
        reach = max(1, 2 * (TOTAL_STEPS - 1 - already) // kills_left)
        target = rng.randint(already + 1, min(TOTAL_STEPS - 1, already + reach))
        while victim.poll() is None and time.monotonic() - started < 3 * duration:
            if _synced_step(s3, prefix) >= target:
                time.sleep(rng.uniform(0, 0.2))
                break
            time.sleep(SYNC_SECONDS)  # no sooner on S3 than the run's next sync
    if victim.poll() is None:
        os.killpg(victim.pid, signal.SIGKILL)
    out, _ = victim.communicate()
    return how, _synced_step(s3, prefix), json.loads(out)["run"] if victim.returncode == 0 else None


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_to_the_uninterrupted_weights(emulator, stacks, mlops, boto, runs_tmpdir):
    """20 runs in a row, each killed with SIGKILL (its whole process group) at a random moment;
    each next run resumes the newest synced checkpoint; the last finishes, as does any run a late
    kill missed, each with the uninterrupted weights. A run is ~8 s here, ~6 s of it start-up
    (two interpreters, torch)."""
    assert mlops("local", "up", "--stack", "local").code == 0
    s3 = boto("s3")
    started = time.monotonic()
    first = _mlops(*TRAIN)
    startup = _first_sync_seconds(s3, first, started)
    straight = _finish(first)
    duration = time.monotonic() - started
    expected = _weights_digest(s3, straight["modelDataUrl"])
    assert straight["status"] == "Completed" and "resumedFromJob" not in straight
    prefix = straight["checkpointS3Uri"].split(f"s3://{BUCKET}/", 1)[1]

    rng = random.Random(20261129)
    kinds: list[tuple[str, int]] = []
    survivors = []
    while len(kinds) < KILLS:
        fresh = _finished(s3, prefix)
        if not fresh and _synced_step(s3, prefix) >= TOTAL_STEPS - 1:  # the chain reached its end: let one finish
            survivors.append(_finish(_mlops(*TRAIN)))
            fresh = True
        how, step, finished_first = _kill_at_random_moment(
            s3, prefix, rng, (startup, duration), KILLS - len(kinds), fresh
        )
        kinds.append((how, step))
        survivors += [finished_first] if finished_first else []  # a late moment: the run had ended
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
    leftovers = _temp_folders(runs_tmpdir)
    assert not leftovers, leftovers  # swept by the next run, or removed on the way out


def _objects(s3, prefix: str) -> list[dict]:
    return s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
