"""Held-out evaluation and the champion/challenger gate.

`evaluate(model_dir, frame)` gives the same flat metric dict that training writes to
metrics.json, so a candidate's training metrics, a re-evaluation on fresh data and the live
champion's numbers can all be fed to `compare`, which says whether the candidate beats the
champion by the configured margin, and why not when it does not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The one definition of a metric's direction: these are better when smaller, every other metric
# when larger. Training's early stopping, the gate and permutation importance all read it.
LOWER_IS_BETTER = frozenset({"log_loss", "val_loss", "calibration_error", "brier_score", "rmse", "mae", "mape", "mse"})
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss", "calibration_error", "brier_score")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
METRIC_NAMES = CLASSIFICATION_METRICS + REGRESSION_METRICS
RESIDUAL_SAMPLE = 2000  # (actual, predicted) pairs kept in evaluation.json for the model card's plots


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def metrics_for_task(task: str | None) -> tuple[str, ...]:
    """The metrics a task reports (val_loss always)."""
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """rmse, mae, r2 (None when the target is constant), mape (None when some target is zero:
    a percentage of zero is undefined), mse (the loss), n_rows."""
    y = np.asarray(y, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    error = predicted - y
    mse = float(np.mean(error**2))
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else None,
        "mape": float(np.mean(np.abs(error / y))) if len(y) and np.all(y != 0) else None,
        "mse": mse,
        "n_rows": len(y),
    }


def task_metrics(task: str | None, y: np.ndarray, output: np.ndarray) -> dict[str, Any]:
    """Metrics of one model output (probabilities, or values for regression) with `val_loss`:
    log loss for a classifier, mean squared error for a regression."""
    if task == "regression":
        metrics = regression_metrics(y, output)
        metrics["val_loss"] = metrics["mse"]
    else:
        metrics = metrics_from_proba(y, output)
        metrics["val_loss"] = metrics["log_loss"]
    return metrics


# ---------------------------------------------------------------------------------------------
# Metrics from probabilities.
# ---------------------------------------------------------------------------------------------
def calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top label: the row-weighted gap between confidence and
    accuracy over `bins` equal-width confidence bins."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=correct, minlength=bins) - np.bincount(which, weights=confidence, minlength=bins)
    )
    return float(gap.sum() / max(len(y), 1)) if counts.sum() else float("nan")


def roc_auc_binary(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count half): the number
    scikit-learn's roc_auc_score gives, without its per-call overhead."""
    positive = positive.astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average; all NaN when a value is NaN (scipy's `rankdata`,
    whose import, scipy.stats, would cost a training process a second and a half of start-up)."""
    if np.isnan(values).any():
        return np.full(len(values), np.nan)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_tie = np.r_[True, ordered[1:] != ordered[:-1]]
    first = np.flatnonzero(starts_tie)  # 0-based position where each run of ties starts
    after = np.r_[first[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = ((first + 1 + after) / 2)[np.cumsum(starts_tie) - 1]
    return ranks


def f1_per_class(table: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix (rows true, columns predicted); 0 when undefined."""
    tp = np.diag(table).astype(np.float64)
    denominator = tp + 0.5 * (table.sum(axis=0) - tp) + 0.5 * (table.sum(axis=1) - tp)
    return np.divide(tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def metrics_from_proba(y: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """accuracy, f1 (positive class if binary, macro otherwise), roc_auc (one-vs-rest macro if
    multiclass; None unless every class is present), log_loss, calibration_error, brier_score
    (binary: mean squared error of P(positive); multiclass: summed over classes), n_rows.
    Plain numpy: training calls this every epoch and permutation importance many times; the
    tests hold it to scikit-learn's numbers."""
    y = np.asarray(y, dtype=np.int64)
    n, n_classes = proba.shape
    predicted = proba.argmax(axis=1)
    table = np.bincount(y * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    f1 = f1_per_class(table)
    present = np.bincount(y, minlength=n_classes) > 0
    if n_classes == 2:
        roc_auc = roc_auc_binary(y == 1, proba[:, 1]) if present.all() else None
        brier = float(np.mean((proba[:, 1] - y) ** 2))
    else:
        roc_auc = (
            float(np.mean([roc_auc_binary(y == k, proba[:, k]) for k in range(n_classes)])) if present.all() else None
        )
        brier = float(np.mean(np.sum((proba - np.eye(n_classes)[y]) ** 2, axis=1)))
    eps = np.finfo(proba.dtype).eps
    chosen = np.clip(proba[np.arange(n), y], eps, 1 - eps)
    return {
        "accuracy": float(np.mean(predicted == y)),
        "f1": float(f1[1] if n_classes == 2 else f1.mean()),
        "roc_auc": roc_auc,
        "log_loss": float(-np.mean(np.log(chosen))),
        "calibration_error": calibration_error(y, proba),
        "brier_score": brier,
        "n_rows": int(n),
    }


def confusion(y: np.ndarray, proba: np.ndarray) -> list[list[int]]:
    """rows: true class, columns: predicted class, both in `classes` order."""
    n = proba.shape[1]
    table = np.bincount(np.asarray(y, dtype=np.int64) * n + proba.argmax(axis=1), minlength=n * n)
    return table.reshape(n, n).astype(int).tolist()


def calibration_curve(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Reliability diagram data per equal-width bin: mean predicted probability, observed
    frequency and row count. Binary: P(positive class) against the positive rate; multiclass:
    top-label confidence against accuracy."""
    y = np.asarray(y, dtype=np.int64)
    if proba.shape[1] == 2:
        kind, predicted, observed = "positive class", proba[:, 1], (y == 1).astype(np.float64)
    else:
        kind, predicted, observed = "top label", proba.max(axis=1), (proba.argmax(axis=1) == y).astype(np.float64)
    which = np.minimum((predicted * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    keep = counts > 0
    mean_predicted = np.bincount(which, weights=predicted, minlength=bins)[keep] / counts[keep]
    frequency = np.bincount(which, weights=observed, minlength=bins)[keep] / counts[keep]
    return {
        "kind": kind,
        "predicted": mean_predicted.tolist(),
        "observed": frequency.tolist(),
        "count": counts[keep].astype(int).tolist(),
    }


# ---------------------------------------------------------------------------------------------
# Evaluating a model directory on a labelled frame.
# ---------------------------------------------------------------------------------------------
def _labelled(model, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    from ml.model import encode_labels

    label = model.schema.label
    missing = [c for c in model.feature_names + [label] if c not in frame.columns]
    if missing:
        raise ValueError(f"evaluation data: missing columns {missing}")
    if len(frame) == 0:
        raise ValueError("evaluation data: no rows")
    if model.schema.is_regression:
        values = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"evaluation data: label {label!r} holds values that are not finite numbers")
        return frame, values
    return frame, encode_labels(frame[label], model.classes)


def residual_sample(y: np.ndarray, predicted: np.ndarray, limit: int = RESIDUAL_SAMPLE) -> dict[str, list[float]]:
    """At most `limit` (actual, predicted) pairs, a seeded subsample: what the card plots."""
    keep = np.arange(len(y))
    if len(y) > limit:
        keep = np.sort(np.random.default_rng(0).choice(len(y), size=limit, replace=False))
    return {"actual": np.asarray(y)[keep].tolist(), "predicted": np.asarray(predicted)[keep].tolist()}


def evaluate_report(model_or_dir: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """Metrics plus, for a classifier, the confusion matrix, calibration curve and class names;
    for a regression, a sample of (actual, predicted) pairs."""
    from ml.model import load_model

    model = load_model(model_or_dir) if isinstance(model_or_dir, (str, Path)) else model_or_dir
    frame, y = _labelled(model, frame)
    output = model.predict_output(frame)
    metrics = task_metrics(model.task, y, output)
    metrics.pop("val_loss")
    if model.schema.is_regression:
        return {"task": model.task, "metrics": metrics, "residuals": residual_sample(y, output)}
    return {
        "task": model.task,
        "metrics": metrics,
        "classes": list(model.classes),
        "confusion_matrix": confusion(y, output),
        "calibration": calibration_curve(y, output),
    }


def evaluate(model_dir: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """Flat metrics of a model (directory or loaded model) on a labelled frame: the same keys
    training writes to metrics.json."""
    return evaluate_report(model_dir, frame)["metrics"]


# ---------------------------------------------------------------------------------------------
# The gate.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str
    metric: str
    candidate: float | None
    champion: float | None
    margin: float
    higher_is_better: bool
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(metrics: dict[str, Any] | None, name: str) -> float | None:
    if not metrics or name not in metrics or metrics[name] is None:
        return None
    try:
        value = float(metrics[name])
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def compare(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    metric: str,
    margin: float,
    minimums: dict[str, float] | None = None,
) -> GateResult:
    """Does the candidate beat the champion by at least `margin` on `metric` (both measured on the
    same data)? With no champion, the candidate passes if it meets `minimums` (metric -> floor,
    or ceiling for lower-is-better metrics such as log_loss)."""
    higher = not lower_is_better(metric)
    if margin < 0 or margin != margin:
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    failures: list[str] = []
    value = _value(candidate, metric)
    best = _value(champion, metric) if champion else None
    if value is None:
        failures.append(f"candidate has no value for {metric} (has: {', '.join(sorted(candidate or {})) or 'nothing'})")
    for name, bound in (minimums or {}).items():
        got = _value(candidate, name)
        lower = lower_is_better(name)
        if got is None:
            failures.append(
                f"candidate has no value for {name}, which has a required "
                f"{'maximum' if lower else 'minimum'} of {bound:g}"
            )
        elif (got > bound) if lower else (got < bound):
            failures.append(f"{name} {got:.4f} is {'above the maximum' if lower else 'below the minimum'} {bound:g}")
    if champion is not None and value is not None:
        if best is None:
            failures.append(f"champion has no value for {metric}, so the two cannot be compared")
        else:
            delta = (value - best) if higher else (best - value)
            if delta < margin:
                direction = "higher" if higher else "lower"
                failures.append(
                    f"{metric} {value:.4f} vs champion {best:.4f}: improvement {delta:+.4f} is less than the required "
                    f"margin {margin:g} ({direction} is better)"
                )
    if failures:
        return GateResult(False, "; ".join(failures), metric, value, best, margin, higher, failures)
    if champion is None:
        reason = f"no champion; {metric} {value:.4f}" + (" meets every minimum" if minimums else "")
    else:
        assert value is not None and best is not None  # else a failure above says which is missing
        reason = f"{metric} {value:.4f} beats champion {best:.4f} by {abs(value - best):.4f} (margin {margin:g})"
    return GateResult(True, reason, metric, value, best, margin, higher, [])
