"""The linear baseline a candidate is measured against: is the deeper model worth it?

A logistic (softmax) regression for a classifier, ridge regression for a regression, fitted on
the same training split as the candidate through the project's preprocessing (the candidate's
schema and classes, `ml.model.Preprocessor`: standardised numbers, one-hot category codes with
0 as unknown), the model `ml.families.linear` describes, solved by scikit-learn in one call
rather than trained by the torch loop. It is scored with the same metrics (`ml.evaluate`) on
the candidate's held-out data. At most `MAX_TRAIN_ROWS` training rows (a seeded sample), so
evaluation stays fast: a baseline only needs to be a fair yardstick, not the best linear model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.evaluate import lower_is_better, task_metrics
from ml.model import Preprocessor, TrainedModel, encode_labels

FAMILY = "linear"  # ml.families.BUILTIN's name for the model family this is
MAX_TRAIN_ROWS = 100_000  # a seeded sample beyond this: evaluation must stay quick


@dataclass(frozen=True)
class Baseline:
    family: str
    estimator: str  # the scikit-learn class that solved it
    train_rows: int  # rows fitted on (after the cap)
    train_rows_available: int
    metrics: dict[str, Any]

    @property
    def capped(self) -> bool:
        return self.train_rows < self.train_rows_available


def _features(preprocessor: Preprocessor, frame: pd.DataFrame):
    """Standardised numbers then one column per category code (unknown included): sparse, since
    a wide categorical column would otherwise make a dense matrix of rows x categories."""
    from scipy import sparse

    numeric, codes = preprocessor.transform(frame)
    blocks = [sparse.csr_matrix(numeric.astype(np.float64))]
    for j, cardinality in enumerate(preprocessor.cardinalities):
        rows = np.arange(len(codes))
        blocks.append(
            sparse.csr_matrix((np.ones(len(codes)), (rows, codes[:, j])), shape=(len(codes), cardinality + 1))
        )
    return sparse.hstack(blocks, format="csr")


def _labels(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    label = frame[model.schema.label]
    if model.schema.is_regression:
        return pd.to_numeric(label, errors="coerce").to_numpy(dtype=np.float64)
    return encode_labels(label, model.classes)


def fit_and_score(candidate: TrainedModel, train: pd.DataFrame, held_out: pd.DataFrame, seed: int = 0) -> Baseline:
    """Fit the linear baseline on `train` (capped at MAX_TRAIN_ROWS) with the candidate's schema
    and classes, and score it on `held_out` as the candidate was scored."""
    from sklearn.linear_model import LogisticRegression, Ridge

    available = len(train)
    if available > MAX_TRAIN_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(available, size=MAX_TRAIN_ROWS, replace=False))
        train = train.iloc[keep]
    y = _labels(candidate, train)
    if candidate.schema.is_regression:
        finite = np.isfinite(y)
        train, y = train[finite], y[finite]
    if len(train) == 0:
        raise ValueError("linear baseline: the training split has no usable rows")
    preprocessor = Preprocessor.fit(train, candidate.schema)
    x, x_held_out = _features(preprocessor, train), _features(preprocessor, held_out)
    y_held_out = _labels(candidate, held_out)
    if candidate.schema.is_regression:
        estimator = Ridge(alpha=1.0).fit(x, y)
        output = estimator.predict(x_held_out)
    else:
        n_classes = len(candidate.classes)
        if len(np.unique(y)) < 2:
            proba = np.zeros((len(held_out), n_classes))
            proba[:, int(y[0])] = 1.0  # one class seen: the only prediction a model could make
            estimator, output = LogisticRegression(), proba
        else:
            estimator = LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)
            output = np.zeros((len(held_out), n_classes))  # classes absent from train get probability 0
            output[:, estimator.classes_] = estimator.predict_proba(x_held_out)
    metrics = task_metrics(candidate.task, y_held_out, output)
    metrics.pop("val_loss")
    return Baseline(FAMILY, type(estimator).__name__, len(train), available, metrics)


def beats(candidate: dict[str, Any], baseline: dict[str, Any], metric: str) -> bool | None:
    """Is the candidate strictly better than the baseline on `metric`, in the metric's direction?
    None when either has no value for it."""
    ours, theirs = candidate.get(metric), baseline.get(metric)
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or ours != ours or theirs != theirs:
        return None
    return ours < theirs if lower_is_better(metric) else ours > theirs
