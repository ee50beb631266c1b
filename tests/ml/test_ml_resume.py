"""A job killed mid-training (SIGKILL, as a spot interruption ends it) resumes from its newest
checkpoint and ends with exactly the weights of a run that was never interrupted."""

from __future__ import annotations

import json
import signal

import torch
from ml_testkit import CHURN, FAST, make_base_dir, run_train_subprocess, saved_weights

from ml.checkpoint import CheckpointStore
from ml.data import make_synthetic
from ml.train import main

# 600 rows / batch 50 = 12 steps per epoch, 4 epochs = 48 steps; checkpoints every 10 steps.
HP = {
    **FAST,
    "epochs": "4",
    "batch_size": "50",
    "checkpoint_every": "10",
    "dropout": "0.3",
    "patience": "0",
    "seed": "3",
}
KILL_AFTER = 27  # mid-epoch 3, seven steps after the checkpoint at step 20


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    train, valid = make_synthetic(600, seed=1), make_synthetic(200, seed=2)
    straight = make_base_dir(tmp_path / "straight", train, valid, HP, schema=CHURN)
    interrupted = make_base_dir(tmp_path / "interrupted", train, valid, HP, schema=CHURN)

    assert main(["--base-dir", str(straight)]) == 0  # in this process: one thread, like the subprocesses

    killed = run_train_subprocess(interrupted, MLOPS_FAULT_KILL_AFTER_STEP=str(KILL_AFTER))
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    assert not (interrupted / "model" / "model.pt").exists()
    checkpoints = sorted(p.name for p in (interrupted / "checkpoints").iterdir())
    assert checkpoints and checkpoints[-1].endswith("step000000020.pt"), checkpoints
    assert not any(name.endswith(".tmp") for name in checkpoints)

    resumed = run_train_subprocess(interrupted)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint at step 20 (epoch 2, step 8 of 12)" in resumed.stdout

    a, b = saved_weights(straight / "model"), saved_weights(interrupted / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the curves are the same too: the epoch's running loss was in the checkpoint
    curves_a = json.loads((straight / "model" / "curves.json").read_text())
    curves_b = json.loads((interrupted / "model" / "curves.json").read_text())
    assert curves_a["train_loss"] == curves_b["train_loss"] and curves_a["val_loss"] == curves_b["val_loss"]
    lineage = json.loads((interrupted / "model" / "lineage.json").read_text())
    assert lineage["training"]["resumed_from_step"] == 20


def test_checkpoints_are_written_atomically_and_pruned(tmp_path):
    store = CheckpointStore(tmp_path, "abcdef012345", keep=2)
    for step in (10, 20, 30):
        store.save(step, {"step": step, "weights": torch.arange(3)})
    assert store.steps() == [20, 30]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-abcdef012345-step000000020.pt",
        "ckpt-abcdef012345-step000000030.pt",
    ]
    step, state = store.load_latest()
    assert step == 30 and state["step"] == 30


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    store = CheckpointStore(tmp_path, "abcdef012345", keep=3)
    store.save(10, {"step": 10})
    store.save(20, {"step": 20})
    store.path_for(20).write_bytes(b"truncated by a failed copy")
    step, state = store.load_latest()
    assert step == 10 and state == {"step": 10}


def test_checkpoints_of_another_configuration_are_never_resumed(tmp_path):
    CheckpointStore(tmp_path, "111111111111").save(50, {"step": 50})
    mine = CheckpointStore(tmp_path, "222222222222")
    assert mine.steps() == [] and mine.load_latest() is None
    assert mine.others() == ["ckpt-111111111111-step000000050.pt"]
