"""The declared shape of a tabular data set: features (numeric or categorical), their allowed
values, and the label.

A schema travels with the data (a `schema.json` beside the training files) and with the model
(`schema.json` in the model directory), so that training, validation, serving and drift checks
all agree on what a row is. It is plain JSON so that a team can write its own by hand.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
FEATURE_TYPES = (NUMERIC, CATEGORICAL)
BINARY = "binary"
MULTICLASS = "multiclass"
REGRESSION = "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)
# A code such as "01" or "007": text that would parse as a number but must keep its spelling.
_CODE = re.compile(r"^[+-]?0\d")


class SchemaError(ValueError):
    """A schema document that cannot be used; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Feature:
    """One input column.

    numeric: `min`/`max` are the allowed range (None: unbounded); `integer` asks for whole numbers.
    categorical: `categories` are the allowed values, compared as strings.
    """

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    integer: bool = False
    categories: tuple[str, ...] = ()
    nullable: bool = False
    description: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.type == NUMERIC

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.is_numeric:
            out.update({"min": self.min, "max": self.max, "integer": self.integer})
        else:
            out["categories"] = list(self.categories)
        out["nullable"] = self.nullable
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Feature:
        if not isinstance(raw, dict):
            raise SchemaError(f"{where}: expected an object with name and type, got {type(raw).__name__}")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise SchemaError(f"{where}.name: expected a non-empty string")
        kind = raw.get("type")
        if kind not in FEATURE_TYPES:
            raise SchemaError(f"{where}.type ({name}): {kind!r} is not allowed; use one of {', '.join(FEATURE_TYPES)}")
        unknown = set(raw) - {"name", "type", "min", "max", "integer", "categories", "nullable", "description"}
        if unknown:
            raise SchemaError(f"{where} ({name}): unknown keys {sorted(unknown)}")
        nullable = raw.get("nullable", False)
        if not isinstance(nullable, bool):
            raise SchemaError(f"{where}.nullable ({name}): expected true or false")
        description = str(raw.get("description", ""))
        if kind == NUMERIC:
            bounds = []
            for key in ("min", "max"):
                value = raw.get(key)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)
                ):
                    raise SchemaError(f"{where}.{key} ({name}): expected a number or null, got {value!r}")
                bounds.append(None if value is None else float(value))
            if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
                raise SchemaError(f"{where} ({name}): min {bounds[0]} is greater than max {bounds[1]}")
            integer = raw.get("integer", False)
            if not isinstance(integer, bool):
                raise SchemaError(f"{where}.integer ({name}): expected true or false")
            if raw.get("categories"):
                raise SchemaError(f"{where} ({name}): a numeric feature takes no categories")
            return cls(name, NUMERIC, bounds[0], bounds[1], integer, (), nullable, description)
        categories = raw.get("categories")
        if not isinstance(categories, list) or not categories:
            raise SchemaError(f"{where}.categories ({name}): expected a non-empty list of values")
        as_text = tuple(str(c) for c in categories)
        if len(set(as_text)) != len(as_text):
            raise SchemaError(f"{where}.categories ({name}): values must be unique")
        return cls(name, CATEGORICAL, None, None, False, as_text, nullable, description)


@dataclass(frozen=True)
class Schema:
    """Features in column order, the label column, and the task: binary or multiclass (with the
    classes; None: learnt from the training data) or regression (a number per row, no classes).
    A task of None is a classification whose class count the training data decides."""

    features: tuple[Feature, ...]
    label: str = "label"
    classes: tuple[Any, ...] | None = None
    name: str = "dataset"
    task: str | None = None

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise SchemaError(f"task: {self.task!r} is not allowed; use one of {', '.join(TASKS)}")
        if self.task == REGRESSION and self.classes is not None:
            raise SchemaError("label.classes: a regression label takes no classes")
        if self.task is None and self.classes is not None:
            object.__setattr__(self, "task", BINARY if len(self.classes) == 2 else MULTICLASS)
        if self.task == BINARY and self.classes is not None and len(self.classes) != 2:
            raise SchemaError(f"task: binary needs exactly two classes, the schema declares {len(self.classes)}")
        names = [f.name for f in self.features]
        if not names:
            raise SchemaError("features: at least one feature is required")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"features: duplicate names {dupes}")
        if self.label in names:
            raise SchemaError(f"label: {self.label!r} is also a feature name")
        if self.classes is not None and len(self.classes) < 2:
            raise SchemaError("label.classes: at least two classes are required")

    @property
    def is_regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[Feature]:
        return [f for f in self.features if f.is_numeric]

    @property
    def categorical(self) -> list[Feature]:
        return [f for f in self.features if not f.is_numeric]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "name": self.name,
            "task": self.task,
            "features": [f.to_dict() for f in self.features],
            "label": {"name": self.label, "classes": None if self.classes is None else list(self.classes)},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, raw: Any) -> Schema:
        if not isinstance(raw, dict):
            raise SchemaError("schema: expected a JSON object with 'features' and 'label'")
        features_raw = raw.get("features")
        if not isinstance(features_raw, list):
            raise SchemaError("features: expected a list of feature objects")
        features = tuple(Feature.from_dict(f, f"features[{i}]") for i, f in enumerate(features_raw))
        label_raw = raw.get("label", {"name": "label"})
        if isinstance(label_raw, str):
            label_raw = {"name": label_raw}
        if not isinstance(label_raw, dict) or not isinstance(label_raw.get("name"), str):
            raise SchemaError("label: expected an object with a 'name' string (and optional 'classes')")
        classes = label_raw.get("classes")
        if classes is not None and (not isinstance(classes, list) or any(isinstance(c, (list, dict)) for c in classes)):
            raise SchemaError("label.classes: expected a list of class values or null")
        task = raw.get("task")
        if task is not None and task not in TASKS:
            raise SchemaError(f"task: {task!r} is not allowed; use one of {', '.join(TASKS)}")
        return cls(
            features,
            label_raw["name"],
            None if classes is None else tuple(classes),
            str(raw.get("name", "dataset")),
            task,
        )

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        try:
            raw = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise SchemaError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(raw)

    def with_classes(self, classes: Iterable[Any]) -> Schema:
        """The schema with its classes settled (a task of None becomes binary or multiclass)."""
        classes = tuple(classes)
        task = self.task if self.task is not None else (BINARY if len(classes) == 2 else MULTICLASS)
        return Schema(self.features, self.label, classes, self.name, task)


def infer_schema(frame: pd.DataFrame, label: str, task: str, max_categories: int = 50, name: str = "dataset") -> Schema:
    """A schema from a data frame and the label and task the user named: columns whose every
    value is a number become numeric features (no range), everything else categorical with the
    observed values. Text that looks like a code ("01", "007") stays categorical, so its spelling
    survives. Classes of a classification label are the observed values (whole numbers as ints)."""
    if task not in TASKS:
        raise SchemaError(f"task: {task!r} is not allowed; use one of {', '.join(TASKS)}")
    if label not in frame.columns:
        raise SchemaError(f"label: column {label!r} is not in the data (columns: {', '.join(map(str, frame.columns))})")
    features = []
    for column in frame.columns:
        if column == label:
            continue
        series = frame[column]
        nullable = bool(series.isna().any())
        numbers = as_numbers(series)
        if numbers is None:
            values = sorted({str(v) for v in series.dropna().unique()})
            if len(values) > max_categories:
                raise SchemaError(
                    f"features ({column}): {len(values)} distinct text values, more than "
                    f"max_categories={max_categories}; "
                    "declare it in a schema.json or encode it"
                )
            features.append(Feature(str(column), CATEGORICAL, categories=tuple(values), nullable=nullable))
        else:
            # No range: the observed one would reject the next sample's legitimate extremes.
            clean = numbers.dropna()
            integer = bool(len(clean)) and bool(np.all(np.mod(clean.to_numpy(dtype=float), 1) == 0))
            features.append(Feature(str(column), NUMERIC, integer=integer, nullable=nullable))
    if task == REGRESSION:
        target = as_numbers(frame[label])
        if target is None:
            bad = frame[label][pd.to_numeric(frame[label], errors="coerce").isna() & frame[label].notna()]
            raise SchemaError(
                f"label ({label}): task regression needs numbers; found {', '.join(map(repr, bad.unique()[:3]))}"
            )
        return Schema(tuple(features), label, None, name, REGRESSION)
    observed = frame[label].dropna()
    numbers = as_numbers(observed)
    classes: list[Any]
    if numbers is not None and bool(np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0)):
        classes = sorted({int(v) for v in numbers})
    else:
        classes = sorted({str(v) for v in observed})
    if len(classes) < 2:
        raise SchemaError(f"label ({label}): only {len(classes)} distinct value(s); a {task} label needs two or more")
    if task == BINARY and len(classes) != 2:
        raise SchemaError(
            f"label ({label}): task binary needs exactly two classes, the data hold {len(classes)} "
            f"(e.g. {', '.join(map(repr, classes[:5]))}); use task=multiclass or task=regression"
        )
    return Schema(tuple(features), label, tuple(classes), name, task)


def as_numbers(series: pd.Series) -> pd.Series | None:
    """The column as float64 when every present value is a number (and none is a code with a
    leading zero); None when it is text."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(np.float64)
    present = series.dropna()
    text = present.astype(str).str.strip()
    if text.str.match(_CODE).any():
        return None
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().any():
        return None
    return pd.to_numeric(series, errors="coerce").astype(np.float64)


def label_text(value: Any) -> str:
    """A class as text, the way labels are compared everywhere: 1, 1.0 and "1" are one class (a
    Parquet file or pandas may hand back a whole-number label as a float)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
