"""The GPU path, exercised on CPU: precision by compute capability (capability queries
monkeypatched), torch.compile only where it pays, the GPU-count check, per-worker threads, and
SIGTERM writing a final checkpoint that a restart resumes from."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from ml_testkit import CHURN, FAST, REPO, make_base_dir, subprocess_env

from ml import distributed, precision
from ml.data import make_synthetic
from ml.distributed import Runtime
from ml.hyperparameters import parse_hyperparameters
from ml.model import TabularMLP
from ml.train import Tensors, fit_torch

CUDA = torch.device("cuda", 0)  # a device object needs no GPU; only the queries below are faked


def fake_gpu(monkeypatch, capability: tuple[int, int], bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize(
    "gpu, capability, bf16, expected",
    [
        ("A10G (g5), L4 (g6), H100 (p5)", (8, 6), True, "bf16"),
        ("T4 (g4dn)", (7, 5), False, "fp16"),
        ("V100 (p3)", (7, 0), False, "fp16"),
        ("K80 (p2)", (3, 7), False, "fp32"),
    ],
)
def test_auto_precision_follows_the_compute_capability(monkeypatch, gpu, capability, bf16, expected):
    fake_gpu(monkeypatch, capability, bf16)
    chosen = precision.choose(CUDA, "auto")
    assert chosen.name == expected, gpu
    assert chosen.needs_scaler == (expected == "fp16")  # loss scaling for fp16 only


def test_cpu_trains_in_fp32_and_an_impossible_request_is_a_clear_error(monkeypatch):
    assert precision.choose(torch.device("cpu"), "auto").name == "fp32"
    assert precision.choose(torch.device("cpu"), "bf16").name == "fp32"
    fake_gpu(monkeypatch, (7, 5), False)
    with pytest.raises(precision.PrecisionError, match=r"amp=bf16: .*compute capability 7.5.*amp=fp16"):
        precision.choose(CUDA, "bf16")
    assert precision.choose(CUDA, "off").name == "fp32"


def test_compile_only_on_a_gpu_and_for_a_model_big_enough():
    cpu = torch.device("cpu")
    assert not precision.should_compile("auto", cpu, 10**9, 10**6)
    assert not precision.should_compile("auto", CUDA, 20_000, 10**6)  # a tabular MLP: compile costs more
    assert precision.should_compile("auto", CUDA, 2 * 10**6, 10**6)
    assert precision.should_compile("true", cpu, 1, 10**6) and not precision.should_compile("false", CUDA, 10**9, 1)
    assert parse_hyperparameters({}).compile_min_params == 1_000_000


def _tiny_tensors(n: int, seed: int) -> Tensors:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return Tensors(x, torch.empty(n, 0, dtype=torch.long), (x[:, 0] > 0).long())


def test_the_fp16_branch_scales_the_loss_and_reports_its_precision(monkeypatch):
    """The T4 path (fp16 autocast + GradScaler) run on CPU: CPU autocast does fp16 too."""
    monkeypatch.setattr(precision, "choose", lambda device, requested: precision.Precision("fp16", "cpu"))
    scalers = []
    real = precision.Precision.scaler

    def spy(self):
        scalers.append(real(self))
        return scalers[-1]

    monkeypatch.setattr(precision.Precision, "scaler", spy)
    torch.manual_seed(0)
    model = TabularMLP(4, [], 2, (8,), 0.0)
    hp = parse_hyperparameters({"epochs": "2", "batch_size": "32", "checkpoint_every": "0", "patience": "0"})
    result = fit_torch(model, _tiny_tensors(256, 1), _tiny_tensors(64, 2), hp, Runtime())
    assert result.precision == "fp16" and not result.compiled
    assert scalers[0].is_enabled() and scalers[0].get_scale() > 1  # the loss was scaled
    assert result.curves["val_loss"][-1] < result.curves["val_loss"][0] + 0.1


def test_the_precision_is_recorded_in_the_lineage(mlp_model_dir):
    training = json.loads((mlp_model_dir / "lineage.json").read_text())["training"]
    assert training["precision"] == "fp32" and training["compiled"] is False


def test_more_gpus_announced_than_torch_sees_is_a_clear_error():
    with pytest.raises(
        distributed.GpuCountError, match=r"SM_NUM_GPUS=4 but torch.cuda.device_count\(\) is 0: .*CPU build"
    ):
        distributed.check_gpus(4, 0, cuda_build=False)
    with pytest.raises(distributed.GpuCountError, match="CUDA_VISIBLE_DEVICES"):
        distributed.check_gpus(8, 4, cuda_build=True)
    distributed.check_gpus(4, 4, cuda_build=True)


def test_the_gpu_count_check_fails_the_job_with_the_reason(tmp_path):
    base = make_base_dir(tmp_path, make_synthetic(300, seed=1), None, FAST, schema=CHURN)
    done = subprocess.run(
        [sys.executable, str(REPO / "ml" / "train.py"), "--base-dir", str(base)],
        env=subprocess_env(SM_NUM_GPUS="2"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "SM_NUM_GPUS=2 but torch.cuda.device_count() is 0" in (base / "output" / "failure").read_text()


def test_each_worker_gets_its_share_of_the_cores():
    assert distributed.threads_per_worker({"SM_NUM_CPUS": "48", "LOCAL_WORLD_SIZE": "8"}) == 6
    assert distributed.threads_per_worker({"SM_NUM_CPUS": "2", "LOCAL_WORLD_SIZE": "4"}) == 1
    assert distributed.threads_per_worker({"SM_NUM_CPUS": "16"}) == 16


def test_a_worker_joins_with_the_timeout_asked_for_and_its_share_of_the_cores(monkeypatch):
    """The process group's timeout bounds every collective, the barrier where ranks 1.. wait while
    rank 0 writes the model directory included: it is `dist_timeout_seconds`, not NCCL's 10 minutes."""
    from datetime import timedelta

    joined, threads = {}, []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda **kwargs: joined.update(kwargs))
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    environ = {"WORLD_SIZE": "8", "RANK": "3", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "8", "SM_NUM_CPUS": "48"}
    runtime = distributed.start(environ, use_cuda=False, timeout_seconds=5400)
    assert joined == {"backend": "gloo", "rank": 3, "world_size": 8, "timeout": timedelta(seconds=5400)}
    assert threads == [6] and (runtime.rank, runtime.world_size) == (3, 8)


def test_the_training_run_starts_its_process_group_with_dist_timeout_seconds(tmp_path, monkeypatch):
    from ml import train

    asked = []

    def start(environ, use_cuda, timeout_seconds):
        asked.append(timeout_seconds)
        raise train.TrainingError("stopped here by the test")

    monkeypatch.setattr(train.distributed, "start", start)
    base = make_base_dir(tmp_path, make_synthetic(50, seed=1), None, {**FAST, "dist_timeout_seconds": "5400"})
    assert train.main(["--base-dir", str(base)]) == 1
    assert asked == [5400]


def test_sigterm_writes_a_final_checkpoint_and_a_restart_resumes_there(tmp_path):
    """SageMaker (a spot interruption, StopTrainingJob) sends SIGTERM, then SIGKILL after a grace
    period: the loop writes a checkpoint at the step it is on, and the next run resumes there."""
    hp = {**FAST, "epochs": "3", "checkpoint_every": "100000", "patience": "0"}  # no periodic checkpoint
    base = make_base_dir(tmp_path, make_synthetic(600, seed=1), make_synthetic(200, seed=2), hp, schema=CHURN)
    command = [sys.executable, str(REPO / "ml" / "train.py"), "--base-dir", str(base)]
    proc = subprocess.Popen(
        command,
        env=subprocess_env(MLOPS_FAULT_WAIT_AT_STEP="13"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "waiting for SIGTERM at step 13" in line:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1, "".join(lines)
    assert any("final checkpoint written at step 13" in line for line in lines), "".join(lines)
    assert "stopped by SIGTERM at step 13" in (base / "output" / "failure").read_text()

    (base / "output" / "failure").unlink()
    resumed = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from checkpoint at step 13" in resumed.stdout
    assert json.loads((base / "model" / "lineage.json").read_text())["training"]["resumed_from_step"] == 13


def test_a_scikit_learn_family_under_torchrun_trains_on_rank_0_alone(tmp_path, monkeypatch):
    """SageMaker's torchrun driver starts one process per GPU whatever the family: gbdt's rank 0
    must train without waiting for a process group whose other ranks have nothing to do."""
    from ml.train import main

    hp = {**FAST, "model": "gbdt", "gbdt_max_iter": "20"}
    base = make_base_dir(tmp_path / "r0", make_synthetic(400, seed=1), make_synthetic(100, seed=2), hp, schema=CHURN)
    other = make_base_dir(tmp_path / "r1", make_synthetic(400, seed=1), None, hp, schema=CHURN)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["--base-dir", str(other)]) == 0 and not (other / "model" / "metrics.json").exists()
    monkeypatch.setenv("RANK", "0")
    assert main(["--base-dir", str(base)]) == 0
    assert json.loads((base / "model" / "lineage.json").read_text())["training"]["world_size"] == 1
