"""Is live traffic still the data the model was trained on?

Training writes `baseline.json`: per feature, decile bin edges and fractions (for the
population stability index), a sorted reference sample (for Kolmogorov-Smirnov), category
counts (for chi-square), and the label and prediction distributions. `drift_report` compares a
frame against it, per feature and overall. `read_capture` turns SageMaker data-capture JSON
Lines into such a frame.

Speed: one sort per numeric column, then everything (KS statistic, PSI bins) comes from
binary searches of the baseline's points into the sorted column; columns run on a thread pool
(numpy releases the GIL while sorting). The KS statistic equals scipy.stats.ks_2samp's exactly;
chi-square is scipy.stats.chi2_contingency itself; the KS p-value is ks_2samp's own for small
samples and the limiting Kolmogorov distribution for large ones unless exact_p_values asks
for ks_2samp's everywhere (see ks_pvalue).
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.schema import CATEGORICAL, NUMERIC, Feature, Schema

PSI_BINS = 10
PSI_FLOOR = 1e-4  # fractions below this count as this, so an empty bin does not give log(0)
# What "drift" means, everywhere (`mlops drift`, `mlops monitor`, the stack's alarm):
#  - not enough data: fewer than MIN_ROWS rows. No decision is made and nothing alerts; with
#    50-100 rows PSI alone exceeds 0.2 on unchanged data a few times in a hundred;
#  - a column has drifted when its two-sample test is significant (KS for numbers, chi-square
#    for categories; p below DEFAULT_ALPHA divided by the number of columns tested, Bonferroni,
#    so the chance of any false alarm over the whole report stays under alpha) AND its PSI, plus
#    PSI_Z standard errors of its sampling noise, is above the threshold: an effect that may be
#    big enough to matter, not just a detectable one (at 1,000 rows a PSI estimate wobbles by
#    about 0.03, so a real shift of PSI 0.25 would otherwise be missed one time in ten, while a
#    huge sample's tiny, significant shift still stays quiet);
#  - the report's score is the largest such band top among significant columns (0 when none):
#    the number `mlops monitor` publishes and the alarm compares with the same threshold
#    (GreaterThanThreshold), so "score > threshold" and "drifted" are one statement (`decide`).
DEFAULT_THRESHOLD = 0.2  # PSI: < 0.1 stable, 0.1-0.2 moving, > 0.2 shifted (the usual reading)
# Written again, held equal by tests/kernel/test_facts_held_equal.py: the stack's monitoring.driftThreshold
# default (kernel/stack_config.py) and `drift --threshold` (ml/cli.py, which loads no numpy at import).
DEFAULT_ALPHA = 0.01
MIN_ROWS = 100
PSI_Z = 2.0
NOT_ENOUGH_DATA = "not enough data"
EXACT_P_MAX_EN = 1000  # KS p-values from scipy's finite-sample distribution up to this size
MISSING = "__missing__"
PREDICTED_LABEL = "predicted_label"  # a classifier's answer, in captured traffic
PREDICTED_VALUE = "predicted_value"  # a regression's answer
UNSEEN = "__unseen__"


# ---------------------------------------------------------------------------------------------
# Baseline (written at training time)
# ---------------------------------------------------------------------------------------------
def _numeric_baseline(values: np.ndarray, sample: int, rng: np.random.Generator) -> dict[str, Any]:
    valid = values[~np.isnan(values)]
    summary: dict[str, Any] = {
        "type": "numeric",
        "count": len(values),
        "missing_count": int(len(values) - len(valid)),
        "missing_fraction": float(1 - len(valid) / max(len(values), 1)),
    }
    if not len(valid):
        summary.update({"edges": [], "fractions": [], "reference": []})
        return summary
    edges = np.unique(np.quantile(valid, np.linspace(0, 1, PSI_BINS + 1)[1:-1], method="inverted_cdf"))
    counts = np.bincount(np.searchsorted(edges, valid, side="left"), minlength=len(edges) + 1)
    reference = valid if len(valid) <= sample else rng.choice(valid, size=sample, replace=False)
    summary.update(
        {
            "edges": edges.tolist(),
            "fractions": (counts / len(valid)).tolist(),
            "reference": np.sort(reference).tolist(),
            "mean": float(valid.mean()),
            "std": float(valid.std()),
            "min": float(valid.min()),
            "max": float(valid.max()),
            "quantiles": dict(
                zip(("p01", "p25", "p50", "p75", "p99"), np.quantile(valid, [0.01, 0.25, 0.5, 0.75, 0.99]).tolist())
            ),
        }
    )
    return summary


def _categorical_baseline(values: pd.Series, categories: Sequence[str]) -> dict[str, Any]:
    missing = values.isna()
    text = values[~missing].astype(str)
    counts = text.value_counts()
    known = [str(c) for c in categories]
    extra = sorted(set(counts.index) - set(known))
    cats = known + extra
    return {
        "type": "categorical",
        "count": len(values),
        "missing_fraction": float(missing.mean()) if len(values) else 0.0,
        "categories": cats,
        "counts": [int(counts.get(c, 0)) for c in cats],
        "missing_count": int(missing.sum()),
    }


def build_baseline(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    classes: Sequence[Any] | None = None,
    predictions: np.ndarray | None = None,
    sample: int = 10000,
    seed: int = 0,
) -> dict[str, Any]:
    """Baseline statistics of the training data (and, when given, of the model's predictions on
    validation data: probabilities, rows x classes, or a regression's values), with the schema,
    so that every reader of the baseline types columns as training did."""
    rng = np.random.default_rng(seed)
    features: dict[str, Any] = {}
    for feature in schema.features:
        if feature.is_numeric:
            features[feature.name] = _numeric_baseline(frame[feature.name].to_numpy(dtype=np.float64), sample, rng)
        else:
            features[feature.name] = _categorical_baseline(frame[feature.name], feature.categories)
    baseline: dict[str, Any] = {
        "version": 1,
        "n_rows": len(frame),
        "label_column": schema.label,
        "features": features,
    }
    baseline["schema"] = schema.to_dict()
    if schema.is_regression:
        if schema.label in frame.columns:
            baseline["label"] = _numeric_baseline(frame[schema.label].to_numpy(dtype=np.float64), sample, rng)
        if predictions is not None:
            values = np.asarray(predictions, dtype=np.float64).reshape(-1)
            baseline["prediction"] = {**_numeric_baseline(values, sample, rng), "column": PREDICTED_VALUE}
        return baseline
    class_names = [str(c) for c in (classes if classes is not None else (schema.classes or []))]
    if schema.label in frame.columns and class_names:
        baseline["label"] = _categorical_baseline(frame[schema.label], class_names)
    if predictions is not None and class_names:
        predicted = pd.Series(np.asarray(class_names, dtype=object)[predictions.argmax(axis=1)])
        baseline["prediction"] = {**_categorical_baseline(predicted, class_names), "column": PREDICTED_LABEL}
        if len(class_names) == 2:
            baseline["score"] = _numeric_baseline(predictions[:, 1].astype(np.float64), sample, rng)
            baseline["score"]["column"] = f"proba_{class_names[1]}"
    return baseline


class Baseline:
    """A baseline dict with its arrays ready (sorted unique reference values and their
    cumulative counts), so repeated reports do not re-parse JSON lists."""

    def __init__(self, raw: dict[str, Any]):
        if not isinstance(raw, dict) or "features" not in raw:
            raise ValueError("baseline: expected the contents of baseline.json (an object with 'features')")
        self.raw = raw
        self.features = {name: _prepare(stats) for name, stats in raw["features"].items()}
        self.label = _prepare(raw["label"]) if raw.get("label") else None
        self.prediction = _prepare(raw["prediction"]) if raw.get("prediction") else None
        self.score = _prepare(raw["score"]) if raw.get("score") else None

    def schema(self) -> Schema:
        """The model's schema: stored in the baseline, or (older baselines) read from its features."""
        if self.raw.get("schema"):
            return Schema.from_dict(self.raw["schema"])
        features = tuple(
            Feature(name, NUMERIC, nullable=True)
            if stats["type"] == "numeric"
            else Feature(name, CATEGORICAL, categories=tuple(stats["categories"]) or ("",), nullable=True)
            for name, stats in self.raw["features"].items()
        )
        return Schema(features, self.raw.get("label_column", "label"))

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        return cls(json.loads(Path(path).read_text()))


def _prepare(stats: dict[str, Any]) -> dict[str, Any]:
    out = dict(stats)
    if stats["type"] == "numeric":
        reference = np.asarray(stats.get("reference", []), dtype=np.float64)
        unique, counts = np.unique(reference, return_counts=True)
        out["_unique"] = unique
        out["_cumulative"] = np.cumsum(counts)
        out["_m"] = len(reference)
        out["_edges"] = np.asarray(stats.get("edges", []), dtype=np.float64)
        out["_fractions"] = np.asarray(stats.get("fractions", []), dtype=np.float64)
    else:
        out["_index"] = {c: i for i, c in enumerate(stats["categories"])}
        out["_counts"] = np.asarray(stats["counts"], dtype=np.float64)
    return out


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def psi(expected: np.ndarray, actual: np.ndarray) -> Any:
    """Population stability index between two sets of bin fractions (along the last axis: a
    float for one pair, an array for rows of them)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    out = np.sum((a - e) * np.log(a / e), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def psi_standard_error(expected: np.ndarray, actual: np.ndarray, n: Any, m: float) -> np.ndarray:
    """The sampling error of a PSI estimate by the delta method: `actual` are fractions of `n`
    current rows, `expected` of `m` baseline rows, both multinomial. Zero when nothing moved
    (the PSI's first derivatives vanish there), about 0.03 for a half-standard-deviation shift
    seen in 1,000 rows."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    g = np.log(a / e) + 1 - e / a  # d PSI / d actual
    h = np.log(e / a) + 1 - a / e  # d PSI / d expected
    var_a = (np.sum(a * g * g, axis=-1) - np.sum(a * g, axis=-1) ** 2) / np.maximum(n, 1)
    var_e = (np.sum(e * h * h, axis=-1) - np.sum(e * h, axis=-1) ** 2) / max(m, 1)
    return np.sqrt(np.maximum(var_a, 0) + np.maximum(var_e, 0))


@lru_cache(maxsize=4096)
def ks_critical(m: int, n: int, level: float, exact: bool = False) -> float:
    """The KS statistic above which ks_pvalue(statistic, m, n) falls below `level`: a test is
    significant exactly when its statistic is above this (the p-value decreases with it)."""
    from scipy.stats import kstwo, kstwobign

    en = m * n / (m + n)
    if exact or en <= EXACT_P_MAX_EN:
        return float(kstwo.isf(level, np.round(en)))
    return float(kstwobign.isf(level) / math.sqrt(en))


def decide(significant: Any, psi_upper: Any, n_rows: Any, threshold: float, min_rows: int = MIN_ROWS):
    """The one meaning of drift, for B reports of C columns each: (drifted, score), each of
    length B. The score is the largest PSI band top among significant columns, 0 below
    `min_rows` rows; drifted is score > threshold."""
    significant = np.atleast_2d(np.asarray(significant, dtype=bool))
    upper = np.atleast_2d(np.asarray(psi_upper, dtype=np.float64))
    scores = np.where(significant, np.nan_to_num(upper), 0.0).max(axis=1, initial=0.0)
    scores = np.where(np.atleast_1d(n_rows) >= min_rows, scores, 0.0)
    return scores > threshold, scores


def numeric_drift_batch(
    stats: dict[str, Any],
    samples: np.ndarray,
    level: float,
    missing_fraction: Any = None,
    exact_p: bool = False,
) -> dict[str, np.ndarray]:
    """PSI, its band top and the KS statistic of B samples (rows of `samples`, n values each,
    none missing) against one prepared baseline column, and whether each KS test is
    significant at `level`. drift_report runs it on one sample, the error-rate tests on many."""
    samples = np.sort(np.atleast_2d(np.asarray(samples, dtype=np.float64)), axis=1)
    rows, n = samples.shape
    m, edges, fractions = stats["_m"], stats["_edges"], stats["_fractions"]
    base_missing = stats.get("missing_fraction", 0.0)
    missing = np.zeros(rows) if missing_fraction is None else np.asarray(missing_fraction, dtype=np.float64)
    cumulative = np.stack([np.searchsorted(row, edges, side="right") for row in samples])
    counts = np.diff(np.concatenate([np.zeros((rows, 1)), cumulative, np.full((rows, 1), n)], axis=1), axis=1)
    # Missing values are one more bin, so a column that starts arriving empty shows up too.
    expected = np.append(fractions * (1 - base_missing), base_missing)
    actual = np.concatenate([counts / n * (1 - missing)[:, None], missing[:, None]], axis=1)
    value = np.atleast_1d(psi(expected, actual))
    total = n / np.maximum(1 - missing, 1e-12)
    band = PSI_Z * psi_standard_error(expected, actual, total, stats.get("count", m))
    statistic = np.array([ks_from_sorted(stats["_unique"], stats["_cumulative"], m, row) for row in samples])
    return {
        "psi": value,
        "psi_upper": value + band,
        "statistic": statistic,
        "significant": statistic > ks_critical(m, n, level, exact_p),
    }


def ks_from_sorted(
    reference_unique: np.ndarray, reference_cumulative: np.ndarray, m: int, current_sorted: np.ndarray
) -> float:
    """Two-sample KS statistic between a reference (as sorted unique values and cumulative
    counts) and a sorted current sample; the same number scipy.stats.ks_2samp computes.

    Both ECDFs are step functions, so the largest gap is at a reference point r_k (gap
    F_ref(r_k) - F_cur(r_k)) or just below one, at the largest current value under r_k (gap
    F_ref(r_{k-1}) - #(cur < r_k)/n). Binary searches of the references into the sorted current
    sample give both counts, and the divisions are the ones scipy does, so the floats agree.
    """
    n = len(current_sorted)
    at_or_below = np.searchsorted(current_sorted, reference_unique, side="right")
    # #(cur < r) differs from #(cur <= r) only where some current value equals r, and then the
    # largest value <= r is r itself: search again only for those (ties are rare unless the
    # data are discrete, and then there are few reference values).
    below = at_or_below.copy()
    last = current_sorted[np.maximum(at_or_below - 1, 0)]
    tie = (at_or_below > 0) & (last == reference_unique)
    if tie.any():
        below[tie] = np.searchsorted(current_sorted, reference_unique[tie], side="left")
    f_ref = reference_cumulative / m
    f_ref_before = np.concatenate(([0.0], f_ref[:-1]))
    gaps_at = f_ref - at_or_below / n
    gaps_below = f_ref_before - below / n
    high = max(gaps_at.max(), gaps_below.max())
    low = min(gaps_at.min(), gaps_below.min())
    return float(max(np.clip(-low, 0, 1), high)) + 0.0  # + 0.0: no negative zero


def ks_pvalue(statistic: float, n1: int, n2: int, exact: bool = False) -> float:
    """Two-sided p-value for a two-sample KS statistic, with en = n1 n2 / (n1 + n2).

    scipy.stats.kstwo.sf(D, round(en)) is what ks_2samp(method="asymp") returns; it is cheap for
    small samples but costs up to ~0.1 s per column at a million rows. So above en = 1000 the
    default is the limiting Kolmogorov distribution, scipy.stats.kstwobign.sf(D sqrt(en)) (a few
    microseconds), which agrees with it to about 1% wherever p > 1e-6 -- far finer than any
    drift decision needs; exact=True always uses kstwo.
    """
    from scipy.stats import kstwo, kstwobign

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    if exact or en <= EXACT_P_MAX_EN:
        value = kstwo.sf(statistic, np.round(en))
    else:
        value = kstwobign.sf(statistic * math.sqrt(en))
    return float(np.clip(value, 0, 1))


def chi_square(baseline_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """scipy.stats.chi2_contingency on the 2 x categories table (categories empty in both
    dropped); (0, 1) when fewer than two categories remain."""
    from scipy.stats import chi2_contingency

    table = np.vstack([baseline_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


# ---------------------------------------------------------------------------------------------
# Per column
# ---------------------------------------------------------------------------------------------
def _numeric_drift(
    values: np.ndarray, stats: dict[str, Any], alpha: float, threshold: float, exact_p: bool = False
) -> dict[str, Any]:
    ordered = np.sort(values)  # NaN sort last
    n_total = len(ordered)
    n = int(np.searchsorted(ordered, np.inf, side="right"))
    valid = ordered[:n]
    missing_fraction = 1 - n / n_total if n_total else 0.0
    base_missing = stats.get("missing_fraction", 0.0)
    out: dict[str, Any] = {
        "type": "numeric",
        "test": "ks",
        "n": n,
        "missing_fraction": missing_fraction,
        "baseline_missing_fraction": base_missing,
    }
    if n == 0 or stats["_m"] == 0:
        value = 0.0 if n == stats["_m"] == 0 else None
        out.update(
            {
                "psi": value,
                "psi_upper": value,
                "statistic": None,
                "p_value": None,
                "significant": False,
                "drifted": False,
            }
        )
        return out
    core = numeric_drift_batch(stats, valid[None, :], alpha, [missing_fraction], exact_p)
    statistic = float(core["statistic"][0])
    p_value = ks_pvalue(statistic, stats["_m"], n, exact_p)
    # Missing values have their own test: the KS test only sees the values that are there.
    base_count = stats.get("count", stats["_m"])
    base_missing_count = stats.get("missing_count", round(base_missing * base_count))
    _, missing_p = chi_square(
        np.array([base_missing_count, base_count - base_missing_count]), np.array([n_total - n, n])
    )
    significant = bool(core["significant"][0]) or missing_p < alpha
    upper = float(core["psi_upper"][0])
    out.update(
        {
            "psi": float(core["psi"][0]),
            "psi_upper": upper,
            "statistic": statistic,
            "p_value": p_value,
            "missing_p_value": missing_p,
            "significant": significant,
            "mean": float(valid.mean()),
            "baseline_mean": stats.get("mean"),
            "drifted": bool(significant and upper > threshold),
        }
    )
    return out


def _category_counts(column: pd.Series, index: dict[str, int]) -> tuple[np.ndarray, int]:
    """Counts per baseline category, then one count of unseen values; and the missing count.
    value_counts hashes the rows once; only the distinct values are looked up."""
    counts = np.zeros(len(index) + 1, dtype=np.float64)
    missing = 0
    for value, count in column.value_counts(dropna=False, sort=False).items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
            missing += int(count)
        else:
            counts[index.get(str(value), len(index))] += count
    return counts, missing


def _categorical_drift(column: pd.Series, stats: dict[str, Any], alpha: float, threshold: float) -> dict[str, Any]:
    index = stats["_index"]
    counts, n_missing = _category_counts(column, index)
    base = np.append(stats["_counts"], 0.0)
    base_missing = float(stats.get("missing_count", 0))
    current = np.append(counts, n_missing)
    expected_counts = np.append(base, base_missing)
    n_total = current.sum()
    out: dict[str, Any] = {
        "type": "categorical",
        "test": "chi2",
        "n": int(n_total - n_missing),
        "missing_fraction": float(n_missing / n_total) if n_total else 0.0,
        "baseline_missing_fraction": stats.get("missing_fraction", 0.0),
        "unseen": int(counts[-1]),
    }
    if n_total == 0 or expected_counts.sum() == 0:
        out.update({"psi": None, "statistic": None, "p_value": None, "drifted": False})
        return out
    statistic, p_value = chi_square(expected_counts, current)
    expected, actual = expected_counts / expected_counts.sum(), current / n_total
    value = psi(expected, actual)
    upper = value + PSI_Z * float(psi_standard_error(expected, actual, n_total, expected_counts.sum()))
    top: Any = np.argsort(-current[:-2])[:5] if len(current) > 2 else []
    out.update(
        {
            "psi": value,
            "psi_upper": upper,
            "statistic": statistic,
            "p_value": p_value,
            "significant": bool(p_value < alpha),
            "fractions": {stats["categories"][i]: float(current[i] / n_total) for i in top},
            "drifted": bool(upper > threshold and p_value < alpha),
        }
    )
    return out


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
@dataclass
class DriftReport:
    score: float  # the largest PSI band top among significant columns (0 when none): what the alarm sees
    threshold: float
    drifted: bool  # score > threshold: some feature (or the predictions) moved, significantly
    n_rows: int
    per_feature: dict[str, dict[str, Any]]
    label: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    score_drift: dict[str, Any] | None = None
    missing_features: list[str] = field(default_factory=list)
    status: str = "no drift"  # drift | no drift | not enough data
    min_rows: int = MIN_ROWS
    alpha: float = DEFAULT_ALPHA  # family-wise; each column is tested at alpha / tests
    tests: int = 0
    max_psi: float = 0.0  # the largest PSI of any column, significant or not (for people)

    @property
    def enough_data(self) -> bool:
        return self.status != NOT_ENOUGH_DATA

    @property
    def features_drifted(self) -> list[str]:
        return [name for name, d in self.per_feature.items() if d.get("drifted")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "status": self.status,
            "n_rows": self.n_rows,
            "min_rows": self.min_rows,
            "alpha": self.alpha,
            "tests": self.tests,
            "max_psi": self.max_psi,
            "features_drifted": self.features_drifted,
            "missing_features": self.missing_features,
            "per_feature": self.per_feature,
            "label": self.label,
            "prediction": self.prediction,
            "score_drift": self.score_drift,
        }

    def to_text(self) -> str:
        if not self.enough_data:
            return (
                f"{NOT_ENOUGH_DATA}: {self.n_rows} rows, at least {self.min_rows} are needed for a drift "
                "decision; nothing is alerted"
            )
        lines = [
            f"drift score {self.score:.3f} (largest PSI + {PSI_Z:g} standard errors among columns whose test is "
            f"significant at {self.alpha:g} over {self.tests} tests; alarm above {self.threshold:g}): "
            f"{'DRIFT' if self.drifted else 'no drift'} over {self.n_rows} rows",
            f"  {'feature':<24} {'test':<5} {'psi':>8} {'stat':>9} {'p-value':>9}",
        ]
        for name, d in sorted(self.per_feature.items(), key=lambda kv: -(kv[1].get("psi") or 0)):
            lines.append(
                f"  {name:<24} {d['test']:<5} {_fmt(d.get('psi')):>8} {_fmt(d.get('statistic')):>9} "
                f"{_fmt(d.get('p_value')):>9}" + ("  <- drifted" if d.get("drifted") else "")
            )
        for title, part in (("label", self.label), ("prediction", self.prediction), ("score", self.score_drift)):
            if part:
                lines.append(
                    f"  {title:<24} {part['test']:<5} {_fmt(part.get('psi')):>8} "
                    f"{_fmt(part.get('statistic')):>9} {_fmt(part.get('p_value')):>9}"
                )
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _align_positional(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Headerless CSV captures come with columns "0", "1", ...: name them in baseline order."""
    positional = [str(i) for i in range(len(names))]
    if not set(names) & set(map(str, frame.columns)) and all(p in frame.columns for p in positional):
        return frame.rename(columns=dict(zip(positional, names)))
    return frame


def drift_report(
    baseline: dict[str, Any] | Baseline,
    frame: pd.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    min_rows: int = MIN_ROWS,
    workers: int | None = None,
    exact_p_values: bool = False,
) -> DriftReport:
    """Per-feature PSI and KS (numeric) or chi-square (categorical) against the training
    baseline; label drift when `frame` has the label column, prediction drift when it has the
    model's answers (`predicted_label`, or `predicted_value` of a regression; score drift with
    `proba_<positive class>`, binary models). The decision follows the one meaning of drift at
    the top of this module. `exact_p_values`: KS p-values exactly as scipy's
    ks_2samp(method="asymp") (slower; see ks_pvalue)."""
    base = baseline if isinstance(baseline, Baseline) else Baseline(baseline)
    names = list(base.features)
    frame = _align_positional(frame, names)
    present = [n for n in names if n in frame.columns]
    missing = [n for n in names if n not in frame.columns]
    prediction_column = (base.prediction or {}).get("column", PREDICTED_LABEL)
    has_prediction = base.prediction is not None and prediction_column in frame.columns
    tests = len(present) + int(has_prediction)
    per_test = alpha / max(tests, 1)  # Bonferroni: any false alarm in the report stays under alpha

    def column_drift(column: pd.Series, stats: dict[str, Any]) -> dict[str, Any]:
        if stats["type"] == "numeric":
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                column = pd.to_numeric(column, errors="coerce")  # text that is not a number: missing
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            return _numeric_drift(values, stats, per_test, threshold, exact_p_values)
        return _categorical_drift(column, stats, per_test, threshold)

    def one(name: str) -> tuple[str, dict[str, Any]]:
        return name, column_drift(frame[name], base.features[name])

    workers = workers or min(len(present), os.cpu_count() or 1) or 1
    if workers > 1 and len(frame) >= 50_000:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            per_feature = dict(pool.map(one, present))
    else:
        per_feature = dict(map(one, present))

    label = prediction = score_drift = None
    label_name = base.raw.get("label_column", "label")
    if base.label is not None and label_name in frame.columns:
        label = column_drift(frame[label_name], base.label)
    if has_prediction and base.prediction is not None:
        prediction = column_drift(frame[prediction_column], base.prediction)
    if base.score is not None and base.score.get("column") in frame.columns:
        score_drift = column_drift(frame[base.score["column"]], base.score)

    decided = [d for d in (*per_feature.values(), prediction) if d and d.get("psi") is not None]
    psis = [d["psi"] for d in decided]
    drifted_, scores = decide(
        [[d["significant"] for d in decided]], [[d["psi_upper"] for d in decided]], [len(frame)], threshold, min_rows
    )
    drifted, score = bool(drifted_[0]), float(scores[0])
    enough = len(frame) >= min_rows
    if not enough:
        for d in decided:
            d["drifted"] = False
    return DriftReport(
        score=float(score),
        threshold=threshold,
        drifted=bool(drifted),
        n_rows=len(frame),
        per_feature=per_feature,
        label=label,
        prediction=prediction,
        score_drift=score_drift,
        missing_features=missing,
        status=NOT_ENOUGH_DATA if not enough else ("drift" if drifted else "no drift"),
        min_rows=min_rows,
        alpha=alpha,
        tests=tests,
        max_psi=float(max(psis)) if psis else 0.0,
    )


# ---------------------------------------------------------------------------------------------
# SageMaker data capture
# ---------------------------------------------------------------------------------------------
def _capture_body(part: dict[str, Any]) -> tuple[bytes, str]:
    data = part.get("data", "")
    encoding = str(part.get("encoding", "")).upper()
    content_type = part.get("observedContentType", "")
    body = base64.b64decode(data) if encoding == "BASE64" else str(data).encode()
    if not content_type:
        content_type = "text/csv" if encoding == "CSV" else "application/json"
    return body, content_type


def _output_columns(body: bytes, content_type: str) -> pd.DataFrame:
    from ml.payload import media_type

    if media_type(content_type) in ("text/csv", "application/csv"):
        rows = [line.split(",") for line in body.decode().splitlines() if line.strip()]
        if rows and all(len(r) == 1 for r in rows):  # one number per row: a regression's answer
            return pd.DataFrame({PREDICTED_VALUE: [float(r[0]) for r in rows]})
        out = pd.DataFrame({"predicted_label": [r[0] for r in rows]})
        for j in range(1, max((len(r) for r in rows), default=1)):
            out[f"proba_{j - 1}"] = [float(r[j]) if j < len(r) else np.nan for r in rows]
        return out
    document = json.loads(body)
    predictions = document.get("predictions", document) if isinstance(document, dict) else document
    if predictions and all(isinstance(p, dict) and "value" in p for p in predictions):
        return pd.DataFrame({PREDICTED_VALUE: [float(p["value"]) for p in predictions]})
    out = pd.DataFrame({"predicted_label": [str(p.get("label")) for p in predictions]})
    for name in dict.fromkeys(k for p in predictions for k in (p.get("probabilities") or {})):
        out[f"proba_{name}"] = [float((p.get("probabilities") or {}).get(name, np.nan)) for p in predictions]
    return out


def _lines(source: Any) -> Iterable[str]:
    if isinstance(source, (str, Path)) and not (isinstance(source, str) and source.lstrip().startswith("{")):
        path = Path(source)
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            with open(file, encoding="utf-8") as handle:
                yield from handle
    elif isinstance(source, bytes):
        yield from source.decode().splitlines()
    elif isinstance(source, str):
        yield from source.splitlines()
    else:
        for item in source:
            yield from _lines(item)


def read_capture(
    paths_or_lines: Any, columns: Sequence[str] | None = None, schema: Schema | None = None
) -> pd.DataFrame:
    """Captured requests (and responses) as one frame: the request's feature columns, plus
    `predicted_label` and `proba_<class>` (a regression: `predicted_value`) from the response,
    `event_id` and `inference_time`. With the model's `schema` (what `Baseline.schema()` gives),
    requests are typed exactly as the server typed them: a category "01" stays "01"; without
    it, values are taken as they look.

    Accepts a capture file or directory (every *.jsonl under it), a list of them, or the lines
    themselves. Headerless CSV requests get `columns` as names, or "0", "1", ... (which
    drift_report maps to the baseline's feature order). Lines that cannot be read are skipped
    and counted in `frame.attrs["capture_errors"]`.
    """
    from ml.payload import PayloadError, parse_body

    parts: list[pd.DataFrame] = []
    errors: list[str] = []
    for number, line in enumerate(_lines(paths_or_lines)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            capture = record["captureData"]
            body, content_type = _capture_body(capture["endpointInput"])
            inputs, _ = parse_body(body, content_type, schema)
            if columns is not None and list(inputs.columns) == [str(i) for i in range(len(columns))]:
                inputs.columns = list(columns)
            if "endpointOutput" in capture:
                out_body, out_type = _capture_body(capture["endpointOutput"])
                outputs = _output_columns(out_body, out_type)
                if len(outputs) == len(inputs):
                    inputs = pd.concat([inputs.reset_index(drop=True), outputs], axis=1)
            meta = record.get("eventMetadata", {})
            inputs["event_id"] = meta.get("eventId")
            inputs["inference_time"] = meta.get("inferenceTime")
            parts.append(inputs)
        except (KeyError, TypeError, ValueError, PayloadError, json.JSONDecodeError) as err:
            errors.append(f"line {number + 1}: {type(err).__name__}: {err}")
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    frame.attrs["capture_errors"] = errors
    return frame


def capture_record(
    request_body: bytes,
    request_type: str,
    response_body: bytes,
    response_type: str,
    event_id: str,
    inference_time: str,
) -> dict[str, Any]:
    """One data-capture line in SageMaker's format (text bodies inline, others base64)."""

    def part(body: bytes, content_type: str, mode: str) -> dict[str, Any]:
        kind = content_type.split(";")[0].strip().lower()
        if kind == "text/csv":
            return {"observedContentType": content_type, "mode": mode, "data": body.decode(), "encoding": "CSV"}
        if kind == "application/json":
            return {"observedContentType": content_type, "mode": mode, "data": body.decode(), "encoding": "JSON"}
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": base64.b64encode(body).decode(),
            "encoding": "BASE64",
        }

    return {
        "captureData": {
            "endpointInput": part(request_body, request_type, "INPUT"),
            "endpointOutput": part(response_body, response_type, "OUTPUT"),
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time},
        "eventVersion": "0",
    }
