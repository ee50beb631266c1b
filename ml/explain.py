"""What drives a model: permutation importance, saved with every model, and cheap per-prediction
attributions for serving.

Permutation importance: shuffle one column of held-out data, see how much the metric drops;
model-agnostic, so the torch network and the gradient-boosting baseline are explained the same
way. Attributions: for one row, how much the predicted class's probability changes when a feature
is replaced by a typical value (the training median or most frequent category), one batched call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.evaluate import lower_is_better, task_metrics


def _score(model, frame: pd.DataFrame, y: np.ndarray, metric: str) -> float:
    """Larger is better: the metric, negated when smaller is better (one definition of which,
    ml.evaluate.LOWER_IS_BETTER)."""
    value = task_metrics(model.task, y, model.predict_output(frame)).get(metric)
    if value is None:
        return float("nan")
    return -float(value) if lower_is_better(metric) else float(value)


def _usable(model, metric: str) -> str:
    """The metric to measure importance with: the target metric, or the task's loss."""
    from ml.evaluate import metrics_for_task

    if metric in metrics_for_task(model.task):
        return metric
    return "rmse" if model.task == "regression" else "log_loss"


def permutation_importance(
    model,
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    metric: str = "roc_auc",
    repeats: int = 5,
    seed: int = 0,
    max_rows: int = 5000,
) -> dict[str, Any]:
    """Mean and standard deviation over `repeats` shuffles of the drop in `metric` per feature,
    on at most `max_rows` rows (a seeded subsample), most important first."""
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), size=max_rows, replace=False))
        frame, y = frame.iloc[keep].reset_index(drop=True), y[keep]
    else:
        frame = frame.reset_index(drop=True)
    used = _usable(model, metric)
    reference = _score(model, frame, y, used)
    results = []
    for name in model.feature_names:
        drops = []
        for _ in range(repeats):
            shuffled = frame.copy()
            shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
            drops.append(reference - _score(model, shuffled, y, used))
        results.append({"feature": name, "importance": float(np.mean(drops)), "std": float(np.std(drops))})
    results.sort(key=lambda r: -r["importance"])
    return {
        "method": "permutation",
        "metric": used,  # importance: how much worse (lower-is-better metrics: higher) the metric gets
        "baseline_score": -reference if lower_is_better(used) else reference,
        "repeats": repeats,
        "rows": len(frame),
        "features": results,
    }


def reference_row(baseline: dict[str, Any]) -> dict[str, Any]:
    """A typical row from the drift baseline: numeric medians, most frequent categories."""
    row: dict[str, Any] = {}
    for name, stats in baseline["features"].items():
        if stats["type"] == "numeric":
            row[name] = (stats.get("quantiles") or {}).get("p50", 0.0)
        else:
            counts = stats.get("counts") or [0]
            row[name] = stats["categories"][int(np.argmax(counts))] if stats.get("categories") else None
    return row


def attributions(model, frame: pd.DataFrame, reference: dict[str, Any]) -> np.ndarray:
    """(rows, features): the drop in the predicted class's probability (a regression: in the
    predicted value) when each feature is set to its reference value. One predict call over
    rows x (features + 1) rows."""
    names = model.feature_names
    n = len(frame)
    frame = frame.reset_index(drop=True)[names]
    variants = [frame]
    for name in names:
        changed = frame.copy()
        changed[name] = reference[name]
        variants.append(changed)
    output = model.predict_output(pd.concat(variants, ignore_index=True))
    if output.ndim == 1:
        return np.stack([output[:n] - output[(k + 1) * n : (k + 2) * n] for k in range(len(names))], axis=1)
    proba = output
    original = proba[:n]
    chosen = original.argmax(axis=1)
    rows = np.arange(n)
    top = original[rows, chosen]
    return np.stack([top - proba[(k + 1) * n : (k + 2) * n][rows, chosen] for k in range(len(names))], axis=1)
