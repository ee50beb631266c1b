"""Tabular data in, checked data out: channel loading (CSV/Parquet), validation against a schema,
a seeded synthetic churn data set with a drift knob, and scikit-learn's bundled real data sets.

Validation runs before any training: a failure stops the job with a report that names each
column and problem, so nothing is trained on data that does not match what was declared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.schema import CATEGORICAL, NUMERIC, REGRESSION, Feature, Schema, SchemaError, label_text

__all__ = [
    "DEFAULT_SCHEMA",
    "DataValidationError",
    "Problem",
    "ValidationReport",
    "coerce",
    "find_data_files",
    "load_channel",
    "load_sklearn_dataset",
    "make_synthetic",
    "split",
    "validate",
]

# ---------------------------------------------------------------------------------------------
# The example problem: customer churn. Ten features, a binary label, realistic ranges.
# ---------------------------------------------------------------------------------------------
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("card", "bank-transfer", "electronic-check", "mailed-check")
REGIONS = ("north", "south", "east", "west")

DEFAULT_SCHEMA = Schema(
    features=(
        Feature("tenure_months", NUMERIC, 0, 120, integer=True, description="months as a customer"),
        Feature("monthly_charges", NUMERIC, 0, 250, description="current monthly bill"),
        Feature("total_charges", NUMERIC, 0, 30000, description="billed to date"),
        Feature("support_calls", NUMERIC, 0, 50, integer=True, description="support calls in the last 90 days"),
        Feature("age", NUMERIC, 18, 100, integer=True),
        Feature("data_usage_gb", NUMERIC, 0, 2000, description="monthly data usage"),
        Feature("contract", CATEGORICAL, categories=CONTRACTS),
        Feature("payment_method", CATEGORICAL, categories=PAYMENT_METHODS),
        Feature("region", CATEGORICAL, categories=REGIONS),
        Feature("has_partner", CATEGORICAL, categories=("yes", "no")),
    ),
    label="label",
    classes=(0, 1),
    name="churn",
)


def make_synthetic(
    n_rows: int,
    seed: int,
    drift: float = 0.0,
    *,
    covariate_shift: float | None = None,
    concept_drift: float | None = None,
) -> pd.DataFrame:
    """Churn-like rows that follow DEFAULT_SCHEMA, with a `label` column (1 = churned).

    `drift` in [0, 1] moves the data away from the training distribution: covariate shift (newer,
    pricier, more troubled customers; more electronic checks) and concept drift (the label rule
    changes: support calls stop mattering, price sensitivity rises, region starts to matter,
    churn becomes more common).
    `covariate_shift` / `concept_drift` set the two separately; each defaults to `drift`.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows: expected a positive number of rows, got {n_rows}")
    shift = drift if covariate_shift is None else covariate_shift
    concept = drift if concept_drift is None else concept_drift
    for label, value in (("drift", drift), ("covariate_shift", shift), ("concept_drift", concept)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{label}: expected a value in [0, 1], got {value}")
    rng = np.random.default_rng(seed)

    contract_p = np.array([0.50, 0.28, 0.22]) * (1 - shift) + np.array([0.80, 0.12, 0.08]) * shift
    payment_p = np.array([0.30, 0.25, 0.30, 0.15]) * (1 - shift) + np.array([0.15, 0.10, 0.65, 0.10]) * shift
    contract = rng.choice(len(CONTRACTS), size=n_rows, p=contract_p)
    payment = rng.choice(len(PAYMENT_METHODS), size=n_rows, p=payment_p)
    region = rng.choice(len(REGIONS), size=n_rows, p=[0.3, 0.25, 0.25, 0.2])
    has_partner = rng.random(n_rows) < 0.45

    tenure_scale = 30.0 * (1 - 0.6 * shift)
    tenure = np.clip(np.round(rng.exponential(tenure_scale, n_rows) + 12 * contract), 0, 120)
    monthly = np.clip(rng.normal(65 + 25 * shift, 22, n_rows), 18, 250)
    total = np.clip(monthly * tenure * rng.uniform(0.9, 1.05, n_rows), 0, 30000)
    support = np.clip(rng.poisson(1.2 + 2.5 * shift + 0.8 * (payment == 2), n_rows), 0, 50)
    age = np.clip(np.round(rng.normal(45 - 8 * shift, 14, n_rows)), 18, 100)
    usage = np.clip(rng.lognormal(3.3 + 0.5 * shift, 0.8, n_rows), 0, 2000)

    # The label rule before drift ...
    before = (
        -1.1
        + 1.4 * (contract == 0)
        - 0.6 * (contract == 2)
        - 0.035 * tenure
        + 0.018 * (monthly - 65)
        + 0.45 * support
        + 0.7 * (payment == 2)
        - 0.3 * has_partner
        + 0.9 * ((usage > 60) & (tenure < 12))  # an interaction a linear model misses
    )
    # ... and after: support calls stop mattering, price matters more, one region churns, and
    # churn is more common overall.
    after = (
        -0.2
        + 0.8 * (contract == 0)
        - 0.02 * tenure
        + 0.05 * (monthly - 65)
        + 1.2 * (region == 1)
        + 0.2 * (payment == 2)
        - 0.01 * (age - 45)
    )
    logit = (1 - concept) * before + concept * after
    label = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": np.round(monthly, 2),
            "total_charges": np.round(total, 2),
            "support_calls": support.astype(np.float64),
            "age": age,
            "data_usage_gb": np.round(usage, 3),
            "contract": np.asarray(CONTRACTS, dtype=object)[contract],
            "payment_method": np.asarray(PAYMENT_METHODS, dtype=object)[payment],
            "region": np.asarray(REGIONS, dtype=object)[region],
            "has_partner": np.where(has_partner, "yes", "no").astype(object),
            "label": label,
        }
    )


# ---------------------------------------------------------------------------------------------
# Real data sets that ship with scikit-learn (no download).
# ---------------------------------------------------------------------------------------------
SKLEARN_DATASETS = ("breast_cancer", "wine", "iris", "diabetes")


def load_sklearn_dataset(name: str) -> tuple[pd.DataFrame, Schema]:
    """One of scikit-learn's bundled data sets as (frame with a `label` column, schema):
    breast_cancer (binary), wine and iris (multiclass), diabetes (regression)."""
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "iris": datasets.load_iris,
        "diabetes": datasets.load_diabetes,
    }
    if name not in loaders:
        raise ValueError(f"dataset: {name!r} is not bundled; use one of {', '.join(SKLEARN_DATASETS)}")
    bunch = loaders[name]()
    names = [re.sub(r"[^0-9a-zA-Z]+", "_", n).strip("_") for n in bunch.feature_names]
    frame = pd.DataFrame(bunch.data, columns=names)
    features = tuple(Feature(n, NUMERIC, min=0.0 if (frame[n] >= 0).all() else None) for n in names)
    if name == "diabetes":
        frame["label"] = bunch.target.astype(np.float64)
        return frame, Schema(features, "label", None, name, REGRESSION)
    frame["label"] = bunch.target.astype(np.int64)
    return frame, Schema(features, "label", tuple(range(len(bunch.target_names))), name)


# ---------------------------------------------------------------------------------------------
# Loading a channel directory.
# ---------------------------------------------------------------------------------------------
DATA_SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
CONTENT_TYPES = {"text/csv": "csv", "application/x-parquet": "parquet", "application/parquet": "parquet"}
SIDE_FILES = {"schema.json", "manifest.json", "_SUCCESS"}


def _file_format(path: Path, content_type: str | None) -> str | None:
    name = path.name.lower()
    for suffix, kind in DATA_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    if "." not in name and content_type:
        return CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    return None


def find_data_files(directory: str | Path, content_type: str | None = None) -> list[Path]:
    """Data files under a channel directory, in a stable order (sorted relative paths)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"channel directory {root} does not exist")
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.name not in SIDE_FILES and _file_format(p, content_type)
    ]
    return files


def load_channel(
    directory: str | Path, schema: Schema | None = None, content_type: str | None = None, *, as_text: bool = False
) -> pd.DataFrame:
    """Every CSV/Parquet file of a channel, concatenated in file-name order.

    Categorical columns (and a label whose classes are text) are read as text so that codes like
    "01" keep their spelling; numbers are parsed by pandas and checked by `validate`, which names
    any column that is not numeric. `as_text`: every CSV column as text, for inferring a schema.
    """
    files = find_data_files(directory, content_type)
    if not files:
        raise FileNotFoundError(
            f"channel directory {directory} holds no data files (expected {', '.join(DATA_SUFFIXES)})"
        )
    text_columns: Any = str if as_text else text_columns_of(schema)
    frames = []
    for path in files:
        if _file_format(path, content_type) == "csv":
            frames.append(pd.read_csv(path, dtype=text_columns, keep_default_na=True))
        else:
            frames.append(pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def text_columns_of(schema: Schema | None) -> dict[str, type]:
    """The columns a CSV reader must keep as text: categorical features, and a label whose
    classes are text."""
    if schema is None:
        return {}
    columns: dict[str, type] = {f.name: str for f in schema.categorical}
    if schema.classes is not None and any(isinstance(c, str) for c in schema.classes):
        columns[schema.label] = str
    return columns


# ---------------------------------------------------------------------------------------------
# A data set: train/, validation/ and optionally test/, each CSV or Parquet files; or, flat,
# train.csv validation.csv test.csv (or .parquet). schema.json in train/ or at the top.
# `mlops data-check` and `mlops train --data` both read a data set through `find_splits`.
# ---------------------------------------------------------------------------------------------
SPLITS = ("train", "validation", "test")
REQUIRED_SPLITS = ("train", "validation")


@dataclass(frozen=True)
class DataSetLayout:
    root: Path
    splits: dict[str, list[Path]]  # split -> data files
    schema: Path | None  # the schema.json that travels with the train split, if any
    flat: bool  # train.csv ... at the top rather than folders

    def split_root(self, split: str) -> Path:
        return self.root if self.flat else self.root / split


def find_splits(directory: str | Path) -> DataSetLayout:
    """The splits of a data set directory; a clear error for anything else."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory (expected train/ validation/ [test/])")
    folders = {s: find_data_files(root / s) for s in SPLITS if (root / s).is_dir()}
    flat = {
        s: sorted(p for p in root.iterdir() if p.is_file() and p.name.split(".")[0] == s and _file_format(p, None))
        for s in SPLITS
    }
    flat = {s: files for s, files in flat.items() if files}
    if folders and flat:
        raise FileNotFoundError(
            f"{root}: both split folders ({', '.join(folders)}) and split files "
            f"({', '.join(p.name for files in flat.values() for p in files)}); keep one layout"
        )
    splits = {s: files for s, files in (folders or flat).items() if files}
    missing = [s for s in REQUIRED_SPLITS if s not in splits]
    if missing:
        raise FileNotFoundError(
            f"{root}: no data for split(s) {', '.join(missing)}; expected folders train/ validation/ [test/] "
            f"or files train.csv validation.csv [test.csv] ({', '.join(DATA_SUFFIXES)})"
        )
    inside, top = root / "train" / "schema.json", root / "schema.json"
    if inside.is_file() and top.is_file() and inside.read_bytes() != top.read_bytes():
        raise FileNotFoundError(f"{root}: train/schema.json and schema.json differ; keep one")
    schema = inside if inside.is_file() and not flat else top if top.is_file() else None
    return DataSetLayout(root, splits, schema, bool(flat))


def load_files(files: list[Path], schema: Schema | None = None, *, as_text: bool = False) -> pd.DataFrame:
    """Data files (CSV or Parquet) as one frame, typed as `load_channel` types them."""
    text_columns: Any = str if as_text else text_columns_of(schema)
    frames = [
        pd.read_csv(path, dtype=text_columns) if _file_format(path, None) == "csv" else pd.read_parquet(path)
        for path in files
    ]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


# ---------------------------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    column: str  # a column name, "<label>" style names for the label, or "*" for the whole table
    problem: str
    severity: str = "error"  # error | warning

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "problem": self.problem, "severity": self.severity}


@dataclass
class ValidationReport:
    rows: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "problems": [p.to_dict() for p in self.problems]}

    def to_text(self) -> str:
        if not self.problems:
            return f"data validation passed ({self.rows} rows)"
        width = max(len(p.column) for p in self.problems)
        head = f"data validation {'failed' if not self.ok else 'passed with warnings'} ({self.rows} rows):"
        return "\n".join([head] + [f"  {p.severity:<7} {p.column:<{width}}  {p.problem}" for p in self.problems])


class DataValidationError(ValueError):
    """Raised when a data set fails validation; `.report` has every problem."""

    def __init__(self, report: ValidationReport, what: str = "data"):
        self.report = report
        super().__init__(f"{what}: " + report.to_text())


def _examples(values: Iterable[Any], limit: int = 3) -> str:
    shown = [repr(v) for v in list(values)[:limit]]
    return ", ".join(shown)


def validate(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    require_label: bool = True,
    min_rows: int = 50,
    min_class_fraction: float = 0.01,
    max_duplicate_fraction: float = 0.05,
) -> ValidationReport:
    """Check a frame against the schema: columns, types, missing values, ranges, categories,
    duplicates, label classes and balance, and a minimum row count."""
    report = ValidationReport(rows=len(frame))
    add = report.problems.append
    columns = set(map(str, frame.columns))

    if len(frame) < min_rows:
        add(Problem("*", f"{len(frame)} rows; at least {min_rows} are required"))
    missing = [f.name for f in schema.features if f.name not in columns]
    for name in missing:
        add(Problem(name, "column is missing"))
    expected = set(schema.feature_names) | {schema.label}
    for name in sorted(columns - expected):
        add(Problem(name, "column is not in the schema (remove it or declare it)"))

    for feature in schema.features:
        if feature.name not in columns:
            continue
        series = frame[feature.name]
        absent = series.isna()
        if absent.any() and not feature.nullable:
            add(Problem(feature.name, f"{int(absent.sum())} missing values; the schema does not allow missing values"))
        present = series[~absent]
        if feature.is_numeric:
            _check_numeric(feature, present, add)
        else:
            unknown = ~present.astype(str).isin(feature.categories)
            if unknown.any():
                values = pd.unique(present[unknown].astype(str))
                add(
                    Problem(
                        feature.name,
                        f"{int(unknown.sum())} values outside the allowed categories (e.g. {_examples(values)}); "
                        f"allowed: {', '.join(feature.categories)}",
                    )
                )

    if schema.label not in columns:
        if require_label:
            add(Problem(schema.label, "label column is missing"))
    else:
        _check_label(frame[schema.label], schema, min_class_fraction, add)

    present_features = [f.name for f in schema.features if f.name in columns]
    if len(frame) and present_features:
        duplicated = int(
            frame.duplicated(subset=present_features + ([schema.label] if schema.label in columns else [])).sum()
        )
        if duplicated:
            share = duplicated / len(frame)
            severity = "error" if share > max_duplicate_fraction else "warning"
            add(
                Problem(
                    "*",
                    f"{duplicated} duplicate rows ({share:.1%}); at most {max_duplicate_fraction:.1%} are allowed",
                    severity,
                )
            )
    return report


def _check_numeric(feature: Feature, present: pd.Series, add) -> None:
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        numbers = pd.to_numeric(present, errors="coerce")
        bad = numbers.isna()
        if bad.any():
            add(Problem(feature.name, f"{int(bad.sum())} values are not numbers (e.g. {_examples(present[bad])})"))
            return
        present = numbers
    values = present.to_numpy(dtype=np.float64)
    if not len(values):
        return
    infinite = ~np.isfinite(values)
    if infinite.any():
        add(Problem(feature.name, f"{int(infinite.sum())} infinite values"))
        values = values[~infinite]
    if feature.min is not None and (values < feature.min).any():
        below = values < feature.min
        add(
            Problem(
                feature.name, f"{int(below.sum())} values below the minimum {feature.min:g} (lowest {values.min():g})"
            )
        )
    if feature.max is not None and (values > feature.max).any():
        above = values > feature.max
        add(
            Problem(
                feature.name, f"{int(above.sum())} values above the maximum {feature.max:g} (highest {values.max():g})"
            )
        )
    if feature.integer and (np.mod(values, 1) != 0).any():
        fractional = values[np.mod(values, 1) != 0]
        add(Problem(feature.name, f"{len(fractional)} values are not whole numbers (e.g. {_examples(fractional)})"))


def _check_label(label: pd.Series, schema: Schema, min_class_fraction: float, add) -> None:
    name = schema.label
    absent = label.isna()
    if absent.any():
        add(Problem(name, f"{int(absent.sum())} rows have no label"))
    present = label[~absent]
    if schema.is_regression:
        numbers = pd.to_numeric(present, errors="coerce")
        bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            add(Problem(name, f"{int(bad.sum())} labels are not finite numbers (e.g. {_examples(present[bad])})"))
        elif len(present) and numbers.nunique() < 2:
            add(Problem(name, "the label is constant; a regression needs a target that varies"))
        return
    if schema.classes is not None:
        allowed = {label_text(c) for c in schema.classes}
        unknown = ~present.map(label_text).isin(allowed)
        if unknown.any():
            add(
                Problem(
                    name,
                    f"{int(unknown.sum())} labels outside the declared classes (e.g. "
                    f"{_examples(pd.unique(present[unknown]))}); "
                    f"allowed: {', '.join(sorted(allowed))}",
                )
            )
    counts = present.map(label_text).value_counts()
    if len(present) and len(counts) < 2:
        add(
            Problem(
                name, f"only one class present ({counts.index[0]!r}); at least two are needed to train a classifier"
            )
        )
        return
    if len(present):
        if schema.classes is not None:
            for cls in schema.classes:
                if label_text(cls) not in counts.index:
                    add(Problem(name, f"class {cls!r} has no rows"))
        shares = counts / len(present)
        for cls, share in shares.items():
            if share < min_class_fraction:
                add(
                    Problem(
                        name, f"class {cls!r} is {share:.2%} of rows; at least {min_class_fraction:.2%} is required"
                    )
                )


# ---------------------------------------------------------------------------------------------
# After validation: canonical dtypes, and a seeded split.
# ---------------------------------------------------------------------------------------------
def coerce(frame: pd.DataFrame, schema: Schema, keep_label: bool = True) -> pd.DataFrame:
    """Schema column order, numeric columns as float64, categorical columns as text (missing: None)."""
    out = {}
    for feature in schema.features:
        series = frame[feature.name]
        if feature.is_numeric:
            out[feature.name] = pd.to_numeric(series, errors="raise").astype(np.float64).to_numpy()
        else:
            text = series.astype(object).where(series.notna(), None)
            out[feature.name] = np.array([None if v is None else str(v) for v in text], dtype=object)
    result = pd.DataFrame(out, index=frame.index)
    if keep_label and schema.label in frame.columns:
        label = frame[schema.label]
        result[schema.label] = (
            pd.to_numeric(label).astype(np.float64).to_numpy() if schema.is_regression else label.to_numpy()
        )
    return result


def split(
    frame: pd.DataFrame, label: str, fraction: float, seed: int, stratify: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/validation split (stratified by class unless `stratify` is False, as for a
    regression target), the same for the same seed."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_fraction: expected a value between 0 and 1, got {fraction}")
    train, valid = train_test_split(
        frame, test_size=fraction, random_state=seed, stratify=frame[label] if stratify else None
    )
    return train.reset_index(drop=True), valid.reset_index(drop=True)


def read_schema_beside(directory: str | Path) -> Schema | None:
    """A `schema.json` at the top of a channel directory, if the data brings its own."""
    path = Path(directory) / "schema.json"
    if path.is_file():
        try:
            return Schema.load(path)
        except SchemaError as err:
            raise SchemaError(f"{path}: {err}") from None
    return None
