"""DDP: two gloo processes on this CPU train to the same weights as one process, within
floating-point tolerance (the global batch and the loss scaling are the same)."""

from __future__ import annotations

import json

import pytest
import torch
from ml_testkit import CHURN, FAST, make_base_dir, run_train_subprocess, saved_weights

from ml.data import make_synthetic
from ml.distributed import launch, plan, torchrun_command
from ml.train import main

HP = {**FAST, "epochs": "3", "batch_size": "64", "dropout": "0", "patience": "0", "seed": "11"}


def test_two_processes_match_one(tmp_path):
    # Row counts not divisible by the world: 11 steps, the last one short; shards of 351 and 350.
    train, valid = make_synthetic(701, seed=5), make_synthetic(201, seed=6)
    single = make_base_dir(tmp_path / "single", train, valid, HP, schema=CHURN)
    double = make_base_dir(tmp_path / "double", train, valid, HP, schema=CHURN)

    assert main(["--base-dir", str(single)]) == 0
    result = run_train_subprocess(double, timeout=180, MLOPS_PROCS_PER_HOST="2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting 2 worker processes" in result.stdout
    assert "on cpu x2" in result.stdout

    a, b = saved_weights(single / "model"), saved_weights(double / "model")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=2e-5, rtol=1e-4), name
    metrics_a = json.loads((single / "model" / "metrics.json").read_text())
    metrics_b = json.loads((double / "model" / "metrics.json").read_text())
    assert metrics_a["log_loss"] == pytest.approx(metrics_b["log_loss"], abs=1e-4)
    training = json.loads((double / "model" / "lineage.json").read_text())["training"]
    assert training["world_size"] == 2
    # Each rank held and scored its own rows only; the metrics come from the gathered predictions.
    assert training["rows_per_rank"] == {"train": [351, 350], "validation": [101, 100]}
    curves_a = json.loads((single / "model" / "curves.json").read_text())
    curves_b = json.loads((double / "model" / "curves.json").read_text())
    assert curves_a["val_loss"] == pytest.approx(curves_b["val_loss"], abs=1e-5)
    assert curves_a["accuracy"] == curves_b["accuracy"]


def test_a_failing_worker_stops_the_others_and_fails_the_job():
    """Rank 1 exits with 3 at once; rank 0 would sleep for a minute but is stopped. (torchrun
    reports a failed worker with its own exit code, 1, and names the worker's code in its log.)"""
    import sys
    import time

    worker = "import os, sys, time; rank = os.environ['RANK']; (time.sleep(60) if rank == '0' else sys.exit(3))"
    started = time.monotonic()
    code = launch(plan(["algo-1"], "algo-1", 0, {"MLOPS_PROCS_PER_HOST": "2"}), [sys.executable, "-c", worker])
    assert code != 0
    assert time.monotonic() - started < 45


def test_workers_get_the_torch_distributed_environment_from_torchrun(tmp_path):
    import sys

    worker = (
        "import json, os, sys; json.dump({k: os.environ[k] for k in "
        "('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}, "
        "open(sys.argv[1] + os.environ['RANK'], 'w'))"
    )
    p = plan(["algo-1"], "algo-1", 0, {"MLOPS_PROCS_PER_HOST": "2"})
    assert launch(p, [sys.executable, "-c", worker, str(tmp_path / "rank")]) == 0
    seen = {r: json.loads((tmp_path / f"rank{r}").read_text()) for r in (0, 1)}
    assert seen[1] == {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(p.master_port),
    }


def test_a_second_host_joins_through_torchrun_at_the_first():
    """Multi-node by SageMaker's SM_HOSTS order: node rank from the host's place, rendezvous at
    hosts[0]. (Replaces a test that ran a second host's workers with no first host: torchrun,
    rightly, waits for the whole world to gather.)"""
    import sys

    p = plan(["algo-1", "algo-2"], "algo-2", 0, {"MLOPS_PROCS_PER_HOST": "2", "MASTER_PORT": "29600"})
    command = torchrun_command(p, ["python", "train.py"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert {
        "--nnodes=2",
        "--nproc-per-node=2",
        "--node-rank=1",
        "--master-addr=algo-1",
        "--master-port=29600",
        "--no-python",
    } <= set(command)
    assert command[-2:] == ["python", "train.py"]


def test_plan_numbers_hosts_and_processes():
    p = plan(["algo-1", "algo-2"], "algo-2", 4, {})
    assert (p.procs_per_host, p.n_hosts, p.node_rank, p.world_size, p.master_addr, p.master_port) == (
        4,
        2,
        1,
        8,
        "algo-1",
        29500,
    )
    assert plan(["algo-1"], "algo-1", 0, {}).world_size == 1
    assert plan(["algo-1"], "algo-1", 0, {"MLOPS_PROCS_PER_HOST": "2"}).master_addr == "127.0.0.1"


@pytest.mark.parametrize(("world", "n"), [(2, 700), (2, 701), (3, 701), (4, 5)])
def test_rank_shards_hold_every_row_once_and_together_take_each_global_batch(world, n):
    """Round robin: shard sizes differ by at most one (uneven counts included), and each rank's
    rows of every global batch of an epoch are exactly that batch between them."""
    from ml.distributed import Runtime
    from ml.train import epoch_order

    runtimes = [Runtime(rank, rank, world) for rank in range(world)]
    shards = [torch.arange(n)[r.rows] for r in runtimes]
    assert sorted(torch.cat(shards).tolist()) == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    order = epoch_order(n, 11, 0, torch.device("cpu"))
    for start in range(0, n, 64):
        batch = order[start : start + 64]
        taken = torch.cat([shard[r.own(batch)] for shard, r in zip(shards, runtimes, strict=True)])
        assert sorted(taken.tolist()) == sorted(batch.tolist())


def test_gathered_predictions_come_back_in_the_table_order(monkeypatch):
    import numpy as np

    from ml.distributed import Runtime

    table = np.arange(14.0).reshape(7, 2)  # 7 rows over 3 ranks: shards of 3, 2 and 2
    shards = [table[Runtime(rank, rank, 3).rows] for rank in range(3)]
    monkeypatch.setattr(Runtime, "gather", lambda self, value: shards)  # what all_gather_object returns
    assert np.array_equal(Runtime(1, 1, 3).gather_rows(table[1::3]), table)


def test_the_hosts_come_from_sm_hosts_and_sm_current_host(tmp_path):
    """SageMaker's multi-node contract: SM_HOSTS and SM_CURRENT_HOST (over resourceconfig.json)
    place this host in the world; a host not in the list is a clear error."""
    from ml.environment import ContainerLayoutError, TrainingEnvironment

    environ = {"SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-2", "SM_NUM_GPUS": "4"}
    env = TrainingEnvironment.from_env(tmp_path, environ)
    p = plan(env.hosts, env.current_host, env.num_gpus, {})
    assert (p.n_hosts, p.node_rank, p.world_size, p.master_addr) == (2, 1, 8, "algo-1")
    with pytest.raises(ContainerLayoutError, match="current_host 'algo-3' is not in hosts"):
        TrainingEnvironment.from_env(tmp_path, {**environ, "SM_CURRENT_HOST": "algo-3"})
    with pytest.raises(ContainerLayoutError, match="SM_HOSTS is not a JSON list"):
        TrainingEnvironment.from_env(tmp_path, {**environ, "SM_HOSTS": "algo-1,algo-2"})


def test_a_rank_with_no_validation_rows_scores_an_empty_shard():
    """Fewer validation rows than ranks: a rank's shard may be empty; its part of the gathered
    predictions is empty and of the right width."""
    from ml.model import TabularMLP
    from ml.train import Tensors, predict_tensors

    empty = Tensors(torch.zeros((0, 4)), torch.zeros((0, 0), dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    assert predict_tensors(TabularMLP(4, [], 2, (8,), 0.0), empty, amp=False).shape == (0, 2)
