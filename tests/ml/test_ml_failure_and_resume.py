"""The training container's two last-resort paths: the failure file SageMaker shows, and resuming
when the newest checkpoint is corrupt."""

from __future__ import annotations

from ml_testkit import CHURN, FAST, make_base_dir

import ml.train
from ml.checkpoint import CheckpointStore
from ml.data import make_synthetic
from ml.train import FAILURE_REASON_LIMIT, main, write_failure

# 600 rows / batch 50 = 12 steps per epoch; 2 epochs = 24 steps; checkpoints at 10 and 20.
HP = {**FAST, "epochs": "2", "batch_size": "50", "checkpoint_every": "10", "keep_checkpoints": "2", "patience": "0"}


def test_a_long_reason_is_cut_to_what_sagemaker_keeps(tmp_path):
    """AWS rule: SM-FAILURE-REASON-1024. SageMaker keeps the first 1,024 characters of output/failure."""
    reason = "column 'age': 5000 values below the minimum 18 " + "é" * 3000
    write_failure(None, tmp_path, reason)
    text = (tmp_path / "output" / "failure").read_text()
    assert text.startswith("column 'age': 5000 values below the minimum 18")
    assert len(text) <= FAILURE_REASON_LIMIT and len(text.encode()) <= FAILURE_REASON_LIMIT
    assert text.endswith("[...]")


def test_an_unexpected_error_puts_the_reason_first_and_the_traceback_in_the_logs(tmp_path, monkeypatch, capsys):
    """AWS rule: SM-FAILURE-REASON-1024. The traceback would push the reason past 1,024 characters: logs only."""
    make_base_dir(tmp_path, make_synthetic(200, seed=1), make_synthetic(100, seed=2), FAST, schema=CHURN)

    def deep(depth: int):
        if depth == 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        deep(depth - 1)

    monkeypatch.setattr(ml.train, "run", lambda env, hp: deep(60))
    assert main(["--base-dir", str(tmp_path)]) == 1
    text = (tmp_path / "output" / "failure").read_text()
    assert text.startswith("unexpected error: RuntimeError: CUDA error: an illegal memory access was encountered at ")
    assert "Traceback" not in text and len(text) <= FAILURE_REASON_LIMIT
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_complete_one(tmp_path, capsys):
    train, valid = make_synthetic(600, seed=1), make_synthetic(200, seed=2)
    base = make_base_dir(tmp_path, train, valid, HP, schema=CHURN)
    assert main(["--base-dir", str(base)]) == 0
    store_dir = base / "checkpoints"
    names = sorted(p.name for p in store_dir.iterdir())
    assert [n[-16:] for n in names] == ["step000000010.pt", "step000000020.pt"], names
    (store_dir / names[-1]).write_bytes(b"PK\x03\x04 truncated by an interrupted sync")
    (base / "model" / "model.pt").unlink()
    capsys.readouterr()

    assert main(["--base-dir", str(base)]) == 0, (base / "output" / "failure").read_text()
    captured = capsys.readouterr()
    assert f"warning: checkpoint {names[-1]} is unusable" in captured.err
    assert "resuming from checkpoint at step 10" in captured.out
    assert (base / "model" / "model.pt").exists()


def test_an_incomplete_checkpoint_is_skipped_like_a_corrupt_one(tmp_path, capsys):
    store = CheckpointStore(tmp_path, "abcdef012345", keep=3)
    store.save(10, {"model": {}, "optimizer": {}})
    store.save(20, {"model": {}})  # written by an older version, or half a state
    step, _ = store.load_latest(required=("model", "optimizer"))
    assert step == 10
    assert "lacks optimizer" in capsys.readouterr().err
