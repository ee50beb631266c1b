"""Everything a trained model leaves behind, written in one place and in a fixed order.

model.json, model.pt | model.skops, preprocess.json, schema.json   (ml.model.save_model)
metrics.json      flat validation metrics of the saved model, re-loaded from disk
evaluation.json   metrics; confusion matrix, calibration curve, classes (classifiers) or a sample of
                  (actual, predicted) pairs (regression)
curves.json       per-epoch (torch) or per-iteration (scikit-learn) training and validation loss
baseline.json     drift baseline: training feature statistics, label and prediction distributions,
                  and the model's schema (so every drift reader types columns as training did)
importance.json   permutation importance on validation data
data_summary.json rows, class balance, per-feature summary of train and validation data
lineage.json      the lineage record, with the SHA-256 of every file above (ml.serve checks them)
model_card.html   a human-readable report of all of it
"""

from __future__ import annotations

import json
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.drift import build_baseline
from ml.evaluate import evaluate_report
from ml.explain import permutation_importance
from ml.jsonable import plain
from ml.lineage import build_record, now, sha256_file, write_record
from ml.model import PREPROCESS_FILE, SCHEMA_FILE, SKLEARN_FILE, TORCH_FILE, load_model, save_model
from ml.schema import label_text

HASHED = (
    "model.json",
    TORCH_FILE,
    SKLEARN_FILE,
    PREPROCESS_FILE,
    SCHEMA_FILE,
    "metrics.json",
    "evaluation.json",
    "curves.json",
    "baseline.json",
    "importance.json",
    "data_summary.json",
)


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(plain(payload), indent=2, default=str) + "\n")


def data_summary(frame: pd.DataFrame, schema, classes) -> dict[str, Any]:
    features = []
    for feature in schema.features:
        column = frame[feature.name]
        entry: dict[str, Any] = {"name": feature.name, "type": feature.type, "missing": int(column.isna().sum())}
        if feature.is_numeric:
            entry.update(_numeric_summary(column))
        else:
            top = column.astype(str).value_counts()
            entry.update(
                distinct=int(column.nunique()),
                top=str(top.index[0]) if len(top) else None,
                top_share=float(top.iloc[0] / len(column)) if len(top) else 0.0,
            )
        features.append(entry)
    summary: dict[str, Any] = {"rows": len(frame), "features": features}
    if schema.is_regression:
        summary["target"] = _numeric_summary(frame[schema.label])
    else:
        counts = frame[schema.label].map(label_text).value_counts()
        summary["classes"] = {str(c): int(counts.get(label_text(c), 0)) for c in classes}
    return summary


def _numeric_summary(column: pd.Series) -> dict[str, float]:
    values = column.to_numpy(dtype=np.float64)
    return {
        "min": float(np.nanmin(values)),
        "mean": float(np.nanmean(values)),
        "max": float(np.nanmax(values)),
        "std": float(np.nanstd(values)),
    }


def write_model_dir(
    env, hp, data, preprocessor, estimator, curves, y_valid, data_files, summary, family, spec, extra=None
) -> dict[str, Any]:
    """Write the model directory; returns the validation metrics (as in metrics.json)."""
    model_dir = Path(env.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_model(
        model_dir,
        family,
        estimator,
        preprocessor,
        data.schema,
        data.classes,
        {"hyperparameters": hp.to_dict(), **(extra or {})},
        spec=spec,
        options=hp.model_options,
    )

    model = load_model(model_dir)  # evaluate what will be served, not what is in memory
    report = evaluate_report(model, data.valid)
    metrics = report["metrics"]
    _write_json(model_dir / "metrics.json", metrics)
    _write_json(model_dir / "evaluation.json", report)
    _write_json(model_dir / "curves.json", {"family": hp.model, **curves})

    baseline = build_baseline(
        data.train,
        data.schema,
        classes=data.classes,
        predictions=model.predict_output(data.valid),
        sample=hp.baseline_sample,
        seed=hp.seed,
    )
    _write_json(model_dir / "baseline.json", baseline)

    importance = permutation_importance(
        model,
        data.valid,
        y_valid,
        metric=hp.target_metric,
        repeats=hp.importance_repeats,
        seed=hp.seed,
        max_rows=hp.importance_max_rows,
    )
    _write_json(model_dir / "importance.json", importance)
    _write_json(
        model_dir / "data_summary.json",
        {
            "train": data_summary(data.train, data.schema, data.classes),
            "validation": data_summary(data.valid, data.schema, data.classes),
        },
    )

    finished = time.time()
    training = dict(summary)
    training.update(
        started_at=_iso(training.get("started_at", finished)),
        finished_at=now(),
        duration_s=round(finished - summary.get("started_at", finished), 3),
    )
    record = build_record(
        hyperparameters=hp.to_dict(),
        seed=hp.seed,
        data_files=data_files,
        data_manifest=env.data_manifest,
        metrics=metrics,
        model_files={name: sha256_file(model_dir / name) for name in HASHED if (model_dir / name).is_file()},
        training=training,
        environ=env.environ,
    )
    write_record(record, model_dir / "lineage.json")

    if hp.model_card:
        from ml.card import write_card

        write_card(model_dir)
    return metrics


def _iso(epoch_seconds: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")
