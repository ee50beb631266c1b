"""Training entry point, by SageMaker's container contract: `python ml/train.py` or
`python -m ml.train`, the same file in a SageMaker training job and on a laptop.

Reads what SageMaker gives a training container (ml/environment.py), settles the data set's
schema (its schema.json, or one inferred with the `label` and `task` hyperparameters), validates
the data before anything is trained, trains the model family the `model` hyperparameter names
(ml/families.py: a torch module in the loop below, or a scikit-learn estimator), and writes
the model directory: weights, preprocessing, schema, metrics, curves, drift baseline, feature
importance, lineage and a model card. On failure it writes
`<base>/output/failure` with the reason and exits non-zero.

The torch loop below is the whole story for every torch family: the data sit on the device as
tensors, each epoch is a seeded permutation of row indices sliced into batches (no DataLoader);
under DDP each rank holds its own shard of the rows, trains on its rows of each global batch
and scores its shard of the validation rows (metrics from the gathered predictions); the
precision the GPU does best (ml/precision.py: bf16 from compute capability 8.0, fp16 with a
gradient scaler on 7.x, fp32 on CPU) and a fused optimizer on GPUs, torch.compile where it
pays, DDP across processes (torchrun), a checkpoint every N steps with the RNG states and a
final one on SIGTERM, early stopping on validation.
"""

from __future__ import annotations

if not __package__:  # run as a script (python ml/train.py): make this folder the `ml` package
    import _standalone  # noqa: F401

import argparse
import inspect
import json
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ml import distributed, families, precision
from ml.checkpoint import CheckpointStore, fingerprint
from ml.data import (
    DEFAULT_SCHEMA,
    DataValidationError,
    coerce,
    find_data_files,
    load_channel,
    read_schema_beside,
    split,
    validate,
)
from ml.environment import ContainerLayoutError, TrainingEnvironment
from ml.evaluate import lower_is_better, metrics_for_task, task_metrics
from ml.hyperparameters import HyperparameterError, Hyperparameters, parse_hyperparameters
from ml.model import Preprocessor, encode_labels
from ml.schema import Schema, SchemaError, infer_schema, label_text

CHECKPOINT_KEYS = ("model", "optimizer", "state", "best_weights", "ranks")  # a complete checkpoint has them all
FAULT_ENV = "MLOPS_FAULT_KILL_AFTER_STEP"  # test hook: SIGKILL this process after global step K
WAIT_ENV = "MLOPS_FAULT_WAIT_AT_STEP"  # test hook: after global step K, wait (up to a minute) for SIGTERM
# Hyperparameters that do not change the weights: a run may resume with different values.
AFTER_TRAINING = {
    "checkpoint_every",
    "keep_checkpoints",
    "importance_repeats",
    "importance_max_rows",
    "baseline_sample",
    "model_card",
    "dist_timeout_seconds",
}


# Validation metrics logged every epoch and kept in curves.json (calibration and Brier are in
# the final evaluation only).
EPOCH_METRICS = ("accuracy", "f1", "roc_auc", "rmse", "mae", "r2")


class TrainingError(RuntimeError):
    """A failure with a reason meant for people (goes to output/failure as is)."""


def log(runtime: distributed.Runtime | None, message: str) -> None:
    if runtime is None or runtime.is_main:
        print(message, flush=True)


def metric_line(**values: float | int | None) -> str:
    """`metric: name=value; ...` -- SageMaker metric definitions match e.g. `val_loss=([0-9.]+)`."""
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        parts.append(f"{name}={value}" if isinstance(value, int) else f"{name}={value:.6f}")
    return "metric: " + "; ".join(parts) + ";"


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    schema: Schema
    classes: list[Any]
    train: pd.DataFrame
    valid: pd.DataFrame
    files: dict[str, list[Path]]
    roots: dict[str, Path]


NO_SCHEMA = (
    "the training data bring no schema.json and the hyperparameters do not say what to learn: "
    "set `label` (the target column) and `task` (binary, multiclass or regression), or put a "
    "schema.json beside the training files (docs/ml.md)"
)


def resolve_schema(hp: Hyperparameters, train_dir: Path, content_type: str | None) -> tuple[Schema, str]:
    """The data set's schema and where it came from. schema.json beside the training files wins
    (hyperparameters `label`/`task` may only agree with it); otherwise `label` and `task` are
    required and the schema is inferred from the train channel, read as text so that codes such
    as "01" keep their spelling. The example churn schema is used only when asked for by name
    (`schema=example`), never as a fallback."""
    if hp.schema == "example":
        return DEFAULT_SCHEMA, "the example churn schema (schema=example)"
    beside = read_schema_beside(train_dir) if hp.schema == "auto" else None
    if beside is not None:
        if hp.label and hp.label != beside.label:
            raise TrainingError(
                f"label={hp.label!r} disagrees with schema.json, whose label is {beside.label!r}; drop one"
            )
        if hp.task and beside.task and hp.task != beside.task:
            raise TrainingError(f"task={hp.task!r} disagrees with schema.json, whose task is {beside.task!r}; drop one")
        if hp.task and beside.task is None:
            beside = Schema(beside.features, beside.label, beside.classes, beside.name, hp.task)
        return beside, f"{train_dir / 'schema.json'}"
    if not hp.label or not hp.task:
        missing = " and ".join(k for k, v in (("label", hp.label), ("task", hp.task)) if not v)
        raise TrainingError(f"{missing} not set: {NO_SCHEMA}")
    raw = load_channel(train_dir, None, content_type, as_text=True)
    return infer_schema(
        raw, label=hp.label, task=hp.task
    ), f"inferred from the train channel (label {hp.label!r}, task {hp.task})"


def load_data(env: TrainingEnvironment, hp: Hyperparameters, runtime: distributed.Runtime) -> Dataset:
    train_dir = env.channel("train")
    if train_dir is None:
        raise TrainingError(
            "channel 'train' is missing: expected data in "
            f"{env.channels.get('train') or env.base_dir / 'input/data/train'}"
        )
    schema, source = resolve_schema(hp, train_dir, env.content_type("train"))
    log(
        runtime,
        f"schema: {source}; {len(schema.features)} features, label {schema.label!r}, "
        f"task {schema.task or 'classification'}",
    )
    files = {"train": find_data_files(train_dir, env.content_type("train"))}
    roots = {"train": train_dir}
    train = load_channel(train_dir, schema, env.content_type("train"))
    report = validate(
        train,
        schema,
        min_rows=hp.min_rows,
        min_class_fraction=hp.min_class_fraction,
        max_duplicate_fraction=hp.max_duplicate_fraction,
    )
    reports = {"train": report.to_dict()}
    valid_dir = env.channel("validation")
    valid_report = None
    if valid_dir is not None:
        files["validation"] = find_data_files(valid_dir, env.content_type("validation"))
        roots["validation"] = valid_dir
        valid = load_channel(valid_dir, schema, env.content_type("validation"))
        valid_report = validate(valid, schema, min_rows=1, min_class_fraction=0.0, max_duplicate_fraction=1.0)
        reports["validation"] = valid_report.to_dict()
    if runtime.is_main:
        env.output_data_dir.mkdir(parents=True, exist_ok=True)
        (env.output_data_dir / "validation.json").write_text(json.dumps(reports, indent=2) + "\n")
    if not report.ok:
        raise DataValidationError(report, "training data")
    if valid_report is not None and not valid_report.ok:
        raise DataValidationError(valid_report, "validation data")
    for line in report.to_text().splitlines():
        log(runtime, line)

    train = coerce(train, schema)
    classes: list[Any] = []
    if not schema.is_regression:
        classes = (
            list(schema.classes) if schema.classes is not None else sorted(pd.unique(train[schema.label]).tolist())
        )
        classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
        schema = schema.with_classes(classes)
    if valid_dir is not None:
        valid = coerce(valid, schema)
    else:
        try:
            train, valid = split(
                train, schema.label, hp.validation_fraction, hp.seed, stratify=not schema.is_regression
            )
        except ValueError as err:  # e.g. a class with a single row cannot be stratified
            raise TrainingError(
                f"cannot hold out validation_fraction={hp.validation_fraction} of train: {err}; "
                "add a validation channel or more rows of the rare class"
            ) from None
        log(
            runtime,
            f"no validation channel: holding out {hp.validation_fraction:.0%} of train (seed {hp.seed})",
        )
    if not schema.is_regression:
        unknown = set(valid[schema.label].map(label_text)) - {label_text(c) for c in classes}
        if unknown:
            raise TrainingError(
                f"validation data: labels {sorted(unknown)} never occur in training data (classes {classes})"
            )
    return Dataset(schema, classes, train, valid, files, roots)


def targets(data: Dataset, frame: pd.DataFrame) -> np.ndarray:
    """Class codes of a classification label, float values of a regression one."""
    if data.schema.is_regression:
        return frame[data.schema.label].to_numpy(dtype=np.float64)
    return encode_labels(frame[data.schema.label], data.classes)


# ---------------------------------------------------------------------------------------------
# The torch training loop
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """What a torch network's outputs mean. A classifier: one logit per class, cross entropy. A
    regression: one value, squared error on the target standardised with the training mean and
    standard deviation (so the learning rate means the same whatever the target's units);
    predictions and losses are reported back in the target's own units."""

    task: str | None = "binary"  # None: a classifier whose schema names no task
    mean: float = 0.0
    std: float = 1.0

    @property
    def regression(self) -> bool:
        return self.task == "regression"

    @classmethod
    def for_data(cls, task: str | None, y_train: np.ndarray) -> Objective:
        if task != "regression":
            return cls(task)
        std = float(np.std(y_train))
        return cls(task, float(np.mean(y_train)), std if std > 1e-12 else 1.0)

    def encode(self, y: np.ndarray) -> np.ndarray:
        if self.regression:
            return ((np.asarray(y, dtype=np.float64) - self.mean) / self.std).astype(np.float32)
        return np.array(y, dtype=np.int64)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The summed per-row loss of a batch."""
        if self.regression:
            return F.mse_loss(outputs.float()[:, 0], targets, reduction="sum")
        return F.cross_entropy(outputs.float(), targets, reduction="sum")

    @property
    def loss_scale(self) -> float:
        """Standardised squared error back to the target's units."""
        return self.std**2 if self.regression else 1.0

    def output(self, raw: torch.Tensor) -> np.ndarray:
        """Probabilities of a classifier, values of a regression."""
        raw = raw.double()
        if self.regression:
            return (raw[:, 0] * self.std + self.mean).cpu().numpy()
        return torch.softmax(raw, dim=1).cpu().numpy()


@dataclass
class Tensors:
    numeric: torch.Tensor
    codes: torch.Tensor
    labels: torch.Tensor  # class codes, or standardised regression targets

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def build(
        cls,
        preprocessor: Preprocessor,
        frame: pd.DataFrame,
        labels: np.ndarray,
        device: torch.device,
        objective: Objective = Objective(),
    ) -> Tensors:
        numeric, codes = preprocessor.transform(frame)
        return cls(
            torch.from_numpy(numeric).to(device),
            torch.from_numpy(codes).to(device),
            torch.from_numpy(objective.encode(labels)).to(device),
        )


def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The row order of one epoch: a function of (seed, epoch) only, so a resumed run replays it."""
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch))
    return torch.randperm(n, generator=generator).to(device)


@torch.no_grad()
def predict_tensors(
    model: torch.nn.Module,
    data: Tensors,
    amp: bool | precision.Precision,
    chunk: int = 65536,
    objective: Objective = Objective(),
) -> np.ndarray:
    """Outputs for every row, in chunks; `amp` the training precision (True: bf16, as before)."""
    device_type = data.numeric.device.type
    mode = amp if isinstance(amp, precision.Precision) else precision.Precision("bf16" if amp else "fp32", device_type)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, max(len(data), 1), chunk):  # an empty shard still gives outputs of the right width
        with mode.context():
            raw = model(data.numeric[start : start + chunk], data.codes[start : start + chunk])
        out.append(objective.output(raw))
    model.train(was_training)
    return np.concatenate(out)


@dataclass
class FitResult:
    model: torch.nn.Module
    curves: dict[str, list]
    best_epoch: int
    steps: int
    resumed_from: int | None
    seconds: float
    precision: str = "fp32"
    compiled: bool = False
    stopped_by_signal: bool = False


class StopRequested:
    """SIGTERM (SageMaker stopping the job, a spot interruption, a local Ctrl-C of the launcher)
    sets a flag; the loop then writes a final checkpoint at the step it is on and exits, so a
    restarted job resumes there instead of at the last periodic checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> StopRequested:
        try:
            self.previous = signal.signal(signal.SIGTERM, self._on_signal)
        except ValueError:  # not the main thread (a test calling fit_torch from a worker thread)
            self.previous = None
        return self

    def _on_signal(self, _signum, _frame) -> None:
        self.requested = True

    def __exit__(self, *_exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


class Stopped(TrainingError):
    """Training stopped on SIGTERM after its final checkpoint."""


def fit_torch(
    model: torch.nn.Module,
    train: Tensors,
    valid: Tensors,
    hp: Hyperparameters,
    runtime: distributed.Runtime = distributed.Runtime(),  # noqa: B008 - a frozen single-process default
    store: CheckpointStore | None = None,
    on_step: Callable[[int], None] | None = None,
    objective: Objective = Objective(),
    valid_truth: np.ndarray | None = None,
) -> FitResult:
    """Train `model` (any torch family: forward(numeric, codes) -> outputs) in place; returns it
    holding the best validation weights. `train` and `valid` are this rank's shards of the
    tables (`runtime.rows`; the whole tables in one process). `valid_truth`: the whole
    validation table's targets in their own units (default: the class codes in `valid`)."""
    truth = runtime.gather_rows(valid.labels.cpu().numpy()) if valid_truth is None else valid_truth
    device = runtime.device
    cuda = device.type == "cuda"
    mode = precision.choose(device, hp.amp)
    scaler = mode.scaler()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, fused=cuda or None)
    torch.manual_seed(derived_seed(hp.seed, 1, runtime.rank))  # dropout stream, one per rank

    n = sum(runtime.gather(len(train)))  # the whole table: every rank's shard
    batch_size, world = hp.batch_size, runtime.world_size
    steps_per_epoch = math.ceil(n / batch_size)
    lower_better = lower_is_better(hp.target_metric)
    state: dict[str, Any] = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "best_score": None,
        "best_epoch": -1,
        "bad_epochs": 0,
    }
    best_weights = None
    running = torch.zeros((), dtype=torch.float64, device=device)  # sum of per-row losses this epoch

    resumed_from = None
    if store is not None:
        # The main process picks the newest checkpoint that loads whole (a corrupt newest one falls
        # back to the one before it); every process then resumes from that same step.
        found = store.load_latest(required=CHECKPOINT_KEYS) if runtime.is_main else None
        chosen = runtime.from_main(found[0] if found else -1)
        if chosen >= 0:
            checkpoint = found[1] if found and found[0] == chosen else store.load(chosen)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            if checkpoint.get("scaler"):
                scaler.load_state_dict(checkpoint["scaler"])
            state.update(checkpoint["state"])
            best_weights = checkpoint["best_weights"]
            mine = checkpoint["ranks"][runtime.rank]
            torch.set_rng_state(mine["cpu_rng"])
            if cuda and mine["cuda_rng"] is not None:
                torch.cuda.set_rng_state(mine["cuda_rng"], device)
            running.fill_(mine["running"])
            resumed_from = chosen
            log(
                runtime,
                f"resuming from checkpoint at step {chosen} (epoch {state['epoch'] + 1}, step "
                f"{state['step_in_epoch']} of {steps_per_epoch})",
            )
        elif runtime.is_main and store.others():
            log(runtime, f"ignoring {len(store.others())} checkpoint(s) of other runs in {store.directory}")

    net: torch.nn.Module = model
    if runtime.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    n_parameters = sum(p.numel() for p in model.parameters())
    compiled = precision.should_compile(hp.compile, device, n_parameters, hp.compile_min_params)
    if compiled:
        net = cast(torch.nn.Module, torch.compile(net))  # an OptimizedModule
    log(
        runtime,
        f"precision {mode.name}" + (" with loss scaling" if mode.needs_scaler else "") + f" on {device}; "
        f"torch.compile {'on' if compiled else 'off'} ({n_parameters:,} parameters)",
    )

    def save_checkpoint() -> None:
        assert store is not None  # called only with a store
        mine = {
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if cuda else None,
            "running": float(running.item()),
        }
        ranks = runtime.gather(mine)
        if runtime.is_main:
            store.save(
                state["global_step"],
                {
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if mode.needs_scaler else None,
                    "state": dict(state),
                    "best_weights": best_weights,
                    "ranks": ranks,
                    "fingerprint": store.fingerprint,
                },
            )

    fault_step = int(os.environ.get(FAULT_ENV) or 0)
    wait_step = int(os.environ.get(WAIT_ENV) or 0)
    started = time.perf_counter()
    stop_signal = StopRequested()
    net.train()
    stop_every = 1 if world == 1 else 10  # a collective per check: ranks agree where to stop
    with stop_signal:
        for epoch in range(state["epoch"], hp.epochs):
            state["epoch"] = epoch
            order = epoch_order(n, hp.seed, epoch, device)
            for step in range(state["step_in_epoch"], steps_per_epoch):
                batch = order[step * batch_size : (step + 1) * batch_size]
                mine = runtime.own(batch)  # the rows of the global batch this rank holds
                with mode.context():
                    outputs = net(train.numeric[mine], train.codes[mine])
                losses = objective.loss(outputs, train.labels[mine])
                # DDP averages gradients over processes: scaling by world/len(batch) makes the result
                # the mean over the whole global batch, the same as one process would compute.
                loss = losses * (world / len(batch))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # a pass-through unless fp16
                scaler.step(optimizer)
                scaler.update()
                running += losses.detach()
                state["global_step"] += 1
                state["step_in_epoch"] = step + 1
                if store is not None and hp.checkpoint_every and state["global_step"] % hp.checkpoint_every == 0:
                    save_checkpoint()
                if fault_step and state["global_step"] == fault_step:
                    print(f"fault injection: killing the process after step {fault_step}", flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
                if on_step is not None:
                    on_step(state["global_step"])
                if wait_step and state["global_step"] == wait_step:
                    print(f"fault injection: waiting for SIGTERM at step {wait_step}", flush=True)
                    deadline = time.monotonic() + 60
                    while not stop_signal.requested and time.monotonic() < deadline:
                        time.sleep(0.01)
                if state["global_step"] % stop_every == 0 and runtime.any(stop_signal.requested):
                    if store is not None:
                        save_checkpoint()
                    log(runtime, f"SIGTERM: final checkpoint written at step {state['global_step']}; stopping")
                    raise Stopped(
                        f"stopped by SIGTERM at step {state['global_step']}"
                        + ("; a final checkpoint was written, a restart resumes there" if store is not None else "")
                    )

            # End of epoch: validation, early stopping.
            train_loss = float(runtime.all_reduce_sum(running.clone()).item()) / n * objective.loss_scale
            scores = runtime.gather_rows(predict_tensors(model, valid, mode, objective=objective))
            metrics = task_metrics(objective.task, truth, scores)
            score = metrics.get(hp.target_metric)
            improved = score is not None and (
                state["best_score"] is None
                or (
                    state["best_score"] - score > hp.min_delta
                    if lower_better
                    else score - state["best_score"] > hp.min_delta
                )
            )
            if improved:
                state.update(best_score=score, best_epoch=epoch, bad_epochs=0)
                best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                state["bad_epochs"] += 1
            state["history"].append(
                {
                    "epoch": epoch + 1,
                    "step": state["global_step"],
                    "train_loss": train_loss,
                    **{k: v for k, v in metrics.items() if k != "n_rows"},
                }
            )
            log(
                runtime,
                metric_line(
                    epoch=epoch + 1,
                    train_loss=train_loss,
                    val_loss=metrics["val_loss"],
                    **{f"val_{k}": metrics.get(k) for k in metrics_for_task(objective.task) if k in EPOCH_METRICS},
                ),
            )
            state["step_in_epoch"] = 0
            running.zero_()
            stop = runtime.from_main(int(hp.patience > 0 and state["bad_epochs"] >= hp.patience))
            if stop:
                log(
                    runtime,
                    f"early stopping: no {hp.target_metric} improvement for {hp.patience} epochs (best "
                    f"epoch {state['best_epoch'] + 1})",
                )
                break

    if best_weights is not None:
        model.load_state_dict(best_weights)
    history = state["history"]
    curves = {
        key: [h.get(key) for h in history]
        for key in ("epoch", "step", "train_loss", "val_loss", *metrics_for_task(objective.task))
        if key in ("epoch", "step", "train_loss", "val_loss") or key in EPOCH_METRICS
    }
    return FitResult(
        model.cpu().eval(),
        curves,
        state["best_epoch"] + 1,
        state["global_step"],
        resumed_from,
        time.perf_counter() - started,
        mode.name,
        compiled,
    )


fit_mlp = fit_torch  # the name bench/bench_train.py knows


# ---------------------------------------------------------------------------------------------
# scikit-learn families
# ---------------------------------------------------------------------------------------------
def fit_sklearn(estimator: Any, preprocessor: Preprocessor, data: Dataset, y_train: np.ndarray, y_valid: np.ndarray):
    """Fit on `Preprocessor.matrix`; estimators that take a validation set (gradient boosting's
    early stopping) get it. Curves: the estimator's own per-iteration scores when it keeps
    them, else the validation loss after fitting."""
    X, X_valid = preprocessor.matrix(data.train), preprocessor.matrix(data.valid)
    takes_validation = "X_val" in inspect.signature(estimator.fit).parameters
    estimator.fit(X, y_train, **({"X_val": X_valid, "y_val": y_valid} if takes_validation else {}))
    task = data.schema.task
    if len(getattr(estimator, "validation_score_", [])):
        sign = -1.0  # scoring="loss" keeps minus the loss
        val_loss = (sign * np.asarray(estimator.validation_score_)).tolist()
        train_loss = (sign * np.asarray(estimator.train_score_)).tolist()
        if task == "regression":  # scikit-learn's squared-error loss is half the mean squared error
            val_loss, train_loss = [2 * v for v in val_loss], [2 * v for v in train_loss]
    else:
        output = estimator.predict(X_valid) if task == "regression" else estimator.predict_proba(X_valid)
        val_loss = [task_metrics(task, y_valid, np.asarray(output, dtype=np.float64))["val_loss"]]
        train_loss = [None]
    curves = {"iteration": list(range(len(val_loss))), "train_loss": train_loss, "val_loss": val_loss}
    for i in range(0, len(val_loss), max(1, len(val_loss) // 10)):
        print(metric_line(iteration=i, train_loss=train_loss[i], val_loss=val_loss[i]), flush=True)
    return estimator, curves


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def configure_determinism(hp: Hyperparameters, cuda: bool) -> None:
    """CPU kernels are deterministic for a fixed thread count already; on CUDA some are not
    unless asked (and cuBLAS needs its workspace setting before CUDA starts)."""
    if hp.deterministic and cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def check_target_metric(hp: Hyperparameters, task: str | None) -> None:
    allowed = ("val_loss", *metrics_for_task(task))
    if hp.target_metric not in allowed:
        raise TrainingError(
            f"target_metric={hp.target_metric!r} does not apply to a {task} task; use one of {', '.join(allowed)}"
        )


def run(env: TrainingEnvironment, hp: Hyperparameters) -> dict[str, Any]:
    """Train and write the model directory; returns the validation metrics."""
    from ml.artifacts import write_model_dir  # after training; keeps matplotlib out of workers' start-up

    started = time.time()
    family = families.resolve(hp.model)
    use_cuda = family.kind == families.TORCH and env.num_gpus > 0 and torch.cuda.is_available()
    configure_determinism(hp, use_cuda)
    # A scikit-learn family trains in one process: under torchrun (SageMaker's driver starts one
    # per GPU) rank 0 trains alone and joins no process group, whose other ranks have left.
    environ = os.environ if family.kind == families.TORCH else {}
    runtime = distributed.start(environ, use_cuda, hp.dist_timeout_seconds)
    try:
        log(
            runtime,
            f"training {hp.model} ({family.kind}) on {runtime.device} x{runtime.world_size} "
            f"(hosts {env.hosts}, seed {hp.seed})",
        )
        data = load_data(env, hp, runtime)
        check_target_metric(hp, data.schema.task)
        preprocessor = Preprocessor.fit(data.train, data.schema)
        y_train, y_valid = targets(data, data.train), targets(data, data.valid)
        from ml.lineage import hash_files

        data_files = {ch: hash_files(data.roots[ch], data.files[ch]) for ch in data.files}
        summary: dict[str, Any] = {"device": str(runtime.device), "world_size": runtime.world_size}
        spec = families.ModelSpec(
            n_numeric=len(preprocessor.numeric),
            cardinalities=preprocessor.cardinalities,
            n_outputs=1 if data.schema.is_regression else len(data.classes),
            task=data.schema.task,
            seed=hp.seed,
            hyperparameters=hp.to_dict(),
        )
        extra: dict[str, Any] = {}
        if family.kind == families.TORCH:
            torch.manual_seed(hp.seed)
            model = family.build(spec, hp.model_options)
            objective = Objective.for_data(data.schema.task, y_train)
            if objective.regression:
                extra["target_scale"] = {"mean": objective.mean, "std": objective.std}
            store = CheckpointStore(
                env.checkpoint_dir,
                fingerprint(
                    {k: v for k, v in hp.to_dict().items() if k not in AFTER_TRAINING},
                    data_files,
                    runtime.world_size,
                ),
                hp.keep_checkpoints,
            )
            # Each rank holds its own rows only (runtime.rows); the preprocessor and the target's
            # scale above were fitted on the whole table, the same on every rank. Rank 0 keeps the
            # whole frames for the model directory, the other ranks let them go.
            mine = runtime.rows
            train_rows = Tensors.build(preprocessor, data.train.iloc[mine], y_train[mine], runtime.device, objective)
            valid_rows = Tensors.build(preprocessor, data.valid.iloc[mine], y_valid[mine], runtime.device, objective)
            if not runtime.is_main:
                data.train, data.valid = data.train.iloc[mine], data.valid.iloc[mine]
            summary["rows_per_rank"] = {
                "train": runtime.gather(len(train_rows)),
                "validation": runtime.gather(len(valid_rows)),
            }
            result = fit_torch(
                model,
                train_rows,
                valid_rows,
                hp,
                runtime,
                store if hp.checkpoint_every else None,
                objective=objective,
                valid_truth=y_valid,
            )
            estimator, curves = result.model, result.curves
            summary.update(
                best_epoch=result.best_epoch,
                steps=result.steps,
                resumed_from_step=result.resumed_from,
                loop_seconds=round(result.seconds, 3),
                precision=result.precision,
                compiled=result.compiled,
            )
        else:
            estimator = family.build(spec, hp.model_options)
            estimator, curves = fit_sklearn(estimator, preprocessor, data, y_train, y_valid)
            summary.update(iterations=int(getattr(estimator, "n_iter_", 0) or 0), precision="fp64", compiled=False)
        metrics: dict[str, Any] = {}
        if runtime.is_main:
            summary.update(hosts=env.hosts, instance_type=env.instance_type, num_gpus=env.num_gpus, started_at=started)
            metrics = write_model_dir(
                env, hp, data, preprocessor, estimator, curves, y_valid, data_files, summary, family, spec, extra
            )
            log(runtime, metric_line(**{f"final_{k}": v for k, v in metrics.items() if k != "n_rows"}))
            log(runtime, f"model written to {env.model_dir}")
        runtime.barrier()
        return metrics
    finally:
        distributed.stop(runtime)


# SageMaker keeps only the first 1,024 characters of /opt/ml/output/failure as the job's
# FailureReason (AWS rule SM-FAILURE-REASON-1024, docs/aws-rules.md):
# https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-output.html
FAILURE_REASON_LIMIT = 1024


def failure_text(reason: str, limit: int = FAILURE_REASON_LIMIT) -> str:
    """The reason, first and whole where it fits; cut to `limit` characters and bytes, marked when cut."""
    text = reason.strip() or "training failed (no reason given)"
    if len(text) <= limit and len(text.encode()) <= limit:
        return text
    marker = " [...]"
    cut = text.encode()[: limit - len(marker)].decode(errors="ignore")
    return cut + marker


def write_failure(env: TrainingEnvironment | None, base_dir: Path, reason: str, details: str = "") -> None:
    """Reason to output/failure (what SageMaker shows as FailureReason); the details (a traceback) to
    stderr only, where CloudWatch Logs keeps them whole."""
    output = env.output_dir if env is not None else base_dir / "output"
    text = failure_text(reason)
    try:
        output.mkdir(parents=True, exist_ok=True)
        failure = output / "failure"
        if not failure.exists() or int(os.environ.get("RANK", "0")) == 0:
            failure.write_text(text)
    except OSError as err:
        print(f"could not write the failure file in {output}: {err}", file=sys.stderr)
    if details:
        print(details.rstrip(), file=sys.stderr)
    print(f"training failed: {reason}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ml.train", description="Train a tabular classifier by the SageMaker training container contract."
    )
    parser.add_argument("--base-dir", help="SageMaker-style base directory (default: $SM_BASE_DIR or /opt/ml)")
    # SageMaker's torchrun driver appends the hyperparameters as `--name value`; they are read from
    # hyperparameters.json (the container contract), so the copies on the command line are ignored.
    args, _ = parser.parse_known_args(argv)
    base_dir = Path(args.base_dir or os.environ.get("SM_BASE_DIR") or "/opt/ml")
    env = None
    try:
        env = TrainingEnvironment.from_env(base_dir)
        env.check_input_modes()
        hp = parse_hyperparameters(env.hyperparameters)
        kind = families.resolve(hp.model).kind
        if kind == families.TORCH:
            distributed.check_gpus(env.num_gpus, torch.cuda.device_count(), torch.version.cuda is not None)
        plan = distributed.plan(
            env.hosts, env.current_host, env.num_gpus if torch.cuda.is_available() else 0, os.environ
        )
        if kind == families.TORCH and plan.world_size > 1 and not distributed.is_worker(os.environ):
            print(
                f"starting {plan.procs_per_host} worker processes on {env.current_host} (world size {plan.world_size})",
                flush=True,
            )
            code = distributed.launch(
                plan, [sys.executable, str(Path(__file__).resolve()), "--base-dir", str(base_dir)]
            )
            if code != 0 and not env.failure_file.exists():
                write_failure(env, base_dir, f"a worker process exited with code {code}")
            return 0 if code == 0 else 1
        if kind == families.SKLEARN and (plan.node_rank > 0 or int(os.environ.get("RANK", "0")) > 0):
            print(f"{hp.model} trains in one process on the first host; this one has nothing to do", flush=True)
            return 0
        run(env, hp)
        return 0
    except (
        HyperparameterError,
        families.ModelPluginError,
        distributed.GpuCountError,
        precision.PrecisionError,
        DataValidationError,
        ContainerLayoutError,
        SchemaError,
        TrainingError,
        FileNotFoundError,
    ) as err:
        write_failure(env, base_dir, str(err))
        return 1
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
        write_failure(env, base_dir, f"unexpected error: {type(err).__name__}: {err}{at}", traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())
