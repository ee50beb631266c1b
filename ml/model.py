"""The models and what they need to predict: preprocessing fitted on training data only, the
torch tabular MLP, and `TrainedModel` with the one loader that serving, evaluation, explanation
and drift all use, whatever the family (ml/families.py).

A trained model is a directory:
  model.json         family, classes, architecture, file names (what to load and how)
  model.pt           a torch family's factory reference, spec, options and weights (weights_only=True)
  model.skops        a scikit-learn family's fitted estimator, loaded with an explicit list of trusted types
  preprocess.json    the fitted preprocessing, as plain arrays and lists
  schema.json        the features and label the model was trained on
No file holds an executable format: a model file is untrusted input, and unpickling one
(joblib, pickle, torch.load without weights_only) runs whatever code it names. A pickle is
refused at load time, with the reason (docs/security.md, "Model integrity").
To add a family, write a factory (ml/families.py explains the contract) and name it in the
`model` hyperparameter; nothing here or in train.py changes (docs/ml.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import torch
from torch import nn

from ml.schema import Schema, label_text

TORCH, SKLEARN = "torch", "sklearn"  # the two kinds of model (ml/families.py)
SMALL_BATCH = 2048  # up to this many rows, per-value dict lookups beat pandas' vectorised set-up
# Model inputs: a DataFrame, or (serving's fast path) a mapping of column name -> values.
Columns: TypeAlias = "pd.DataFrame | Mapping[str, Any]"
MODEL_META = "model.json"
TORCH_FILE = "model.pt"
SKLEARN_FILE = "model.skops"
PREPROCESS_FILE = "preprocess.json"
SCHEMA_FILE = "schema.json"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")  # formats that run code when loaded: refused
# Types skops does not trust by default that scikit-learn's own estimators hold as data. Never
# `trusted=True`: a family adds its own through `mlops_trusted_types` (ml.families.sklearn_model).
SKLEARN_TRUSTED_TYPES = ("numpy.dtype",)


class ModelLoadError(RuntimeError):
    """A model directory that is incomplete or was written by an incompatible version."""


class ModelSaveError(ValueError):
    """A model that cannot be saved in a format that is safe to load."""


def trusted_types(family: Any) -> list[str]:
    """The types a family's skops file may hold beyond skops' defaults: ours plus the family's own."""
    return sorted({*SKLEARN_TRUSTED_TYPES, *getattr(family.factory, "mlops_trusted_types", ())})


def refuse_pickle(directory: Path, name: str) -> None:
    if name.endswith(PICKLE_SUFFIXES):
        raise ModelLoadError(
            f"{directory / name}: a pickle (joblib) file; loading it would run any code it names, so it is "
            "refused. Retrain with this version: models are saved as safe formats (skops, JSON, torch weights)"
        )


# ---------------------------------------------------------------------------------------------
# Preprocessing: standardisation and category codes, fitted on the training rows only.
# ---------------------------------------------------------------------------------------------
class Preprocessor:
    """Numeric columns standardised with the training mean/std (missing -> the mean, i.e. 0);
    categorical columns as integer codes, 0 meaning unknown or missing, 1.. the categories seen
    in training, in schema order."""

    def __init__(
        self, numeric: list[str], mean: np.ndarray, std: np.ndarray, categorical: list[str], vocab: list[list[str]]
    ):
        self.numeric = list(numeric)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.categorical = list(categorical)
        self.vocab = [list(v) for v in vocab]

    @classmethod
    def fit(cls, frame: pd.DataFrame, schema: Schema) -> Preprocessor:
        numeric = [f.name for f in schema.numeric]
        values = frame[numeric].to_numpy(dtype=np.float64) if numeric else np.zeros((len(frame), 0))
        mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(numeric))
        std = np.nanstd(values, axis=0) if len(values) else np.ones(len(numeric))
        mean = np.nan_to_num(mean)
        std = np.where(~np.isfinite(std) | (std < 1e-12), 1.0, std)
        vocab = []
        for feature in schema.categorical:
            seen = set(frame[feature.name].dropna().astype(str))
            vocab.append([c for c in feature.categories if c in seen] + sorted(seen - set(feature.categories)))
        return cls(numeric, mean, std, [f.name for f in schema.categorical], vocab)

    @property
    def cardinalities(self) -> list[int]:
        return [len(v) for v in self.vocab]

    def codes(self, frame: Columns) -> np.ndarray:
        """(rows, categorical) int64 codes; 0 for missing or unseen values."""
        if not hasattr(self, "_lookups"):
            self._lookups = [{c: i + 1 for i, c in enumerate(vocab)} for vocab in self.vocab]
        out = np.zeros((n_rows(frame), len(self.categorical)), dtype=np.int64)
        for j, (name, vocab) in enumerate(zip(self.categorical, self.vocab)):
            out[:, j] = category_codes(frame[name], vocab, self._lookups[j])
        return out

    def raw_numeric(self, frame: Columns) -> np.ndarray:
        if not self.numeric:
            return np.zeros((n_rows(frame), 0))
        if isinstance(frame, pd.DataFrame):
            return frame[self.numeric].to_numpy(dtype=np.float64)
        return np.column_stack([np.asarray(frame[name], dtype=np.float64) for name in self.numeric])

    def transform(self, frame: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(standardised numeric float32, categorical codes int64) for the torch network."""
        numeric = (self.raw_numeric(frame) - self.mean) / self.std
        numeric = np.nan_to_num(numeric, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        return numeric, self.codes(frame)

    def matrix(self, frame: Columns) -> np.ndarray:
        """Raw numeric values (missing kept as NaN) then category codes (unknown as NaN), for
        gradient boosting with native categorical support."""
        codes = self.codes(frame).astype(np.float64) - 1.0
        codes[codes < 0] = np.nan
        return np.hstack([self.raw_numeric(frame), codes])

    def to_state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "numeric": self.numeric,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "categorical": self.categorical,
            "vocab": self.vocab,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        if state.get("version") != 1:
            raise ModelLoadError(f"{PREPROCESS_FILE}: unsupported version {state.get('version')!r}")
        return cls(state["numeric"], state["mean"], state["std"], state["categorical"], state["vocab"])


def category_codes(column: Any, vocab: Sequence[str], lookup: dict[str, int] | None = None) -> np.ndarray:
    """1 + the position of each value in `vocab`, 0 for missing or unknown values; values compare
    as text, so 1 and "1" are the same category. Few rows (serving): a dict lookup per value.
    Many rows (training): factorise first, one hash pass, then look up only the distinct values."""
    lookup = lookup if lookup is not None else {c: i + 1 for i, c in enumerate(vocab)}
    if len(column) <= SMALL_BATCH:
        return np.fromiter((_code(v, lookup) for v in column), dtype=np.int64, count=len(column))
    codes, uniques = pd.factorize(
        np.asarray(column, dtype=object) if not isinstance(column, pd.Series) else column, use_na_sentinel=True
    )
    table = np.fromiter((_code(u, lookup) for u in uniques), dtype=np.int64, count=len(uniques))
    return np.append(table, 0)[codes]  # code -1 (missing) picks the trailing 0


def _code(value: Any, lookup: dict[str, int]) -> int:
    if type(value) is str:
        return lookup.get(value, 0)
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return 0
    return lookup.get(str(value), 0)


def n_rows(frame: Columns) -> int:
    """Rows of a DataFrame or of a mapping of column -> values."""
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if len(frame) else 0


# ---------------------------------------------------------------------------------------------
# Label encoding: classes as declared (or as seen), compared as text so 1 and "1" agree.
# ---------------------------------------------------------------------------------------------
def encode_labels(labels: Sequence[Any] | pd.Series, classes: Sequence[Any]) -> np.ndarray:
    index = {label_text(c): i for i, c in enumerate(classes)}
    series = pd.Series(labels).map(label_text)
    codes = series.map(index)
    if codes.isna().any():
        unknown = sorted(set(series[codes.isna()]))[:5]
        raise ValueError(f"label: values {unknown} are not among the classes {list(classes)}")
    return codes.to_numpy(dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The torch network.
# ---------------------------------------------------------------------------------------------
def embedding_dim(cardinality: int, cap: int = 16) -> int:
    """A common rule of thumb: about half the categories, at most `cap`."""
    return int(min(cap, max(2, (cardinality + 2) // 2)))


class TabularMLP(nn.Module):
    """Standardised numbers and one embedding per categorical column, concatenated, through
    Linear-ReLU-Dropout blocks to one logit per class."""

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int],
        n_classes: int,
        hidden_sizes: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        embedding_cap: int = 16,
    ):
        super().__init__()
        self.config = {
            "n_numeric": int(n_numeric),
            "cardinalities": [int(c) for c in cardinalities],
            "n_classes": int(n_classes),
            "hidden_sizes": [int(h) for h in hidden_sizes],
            "dropout": float(dropout),
            "embedding_cap": int(embedding_cap),
        }
        # index 0 of every table is "unknown or missing"
        tables = [nn.Embedding(c + 1, embedding_dim(c + 1, embedding_cap)) for c in cardinalities]
        self.embeddings = nn.ModuleList(tables)
        width = n_numeric + sum(t.embedding_dim for t in tables)
        blocks: list[nn.Module] = []
        for size in hidden_sizes:
            blocks += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_classes)

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        parts = [numeric] + [table(codes[:, i]) for i, table in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TabularMLP:
        return cls(
            config["n_numeric"],
            config["cardinalities"],
            config["n_classes"],
            config["hidden_sizes"],
            config["dropout"],
            config.get("embedding_cap", 16),
        )


# ---------------------------------------------------------------------------------------------
# A trained model: everything needed to go from a frame of features to its predictions.
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainedModel:
    family: str  # the `model` hyperparameter it was trained with
    schema: Schema
    preprocessor: Preprocessor
    classes: list[Any]  # empty for a regression
    estimator: Any  # a torch module (eval mode, CPU) or a fitted scikit-learn estimator
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.meta.get("kind", TORCH if isinstance(self.estimator, nn.Module) else SKLEARN)

    @property
    def task(self) -> str:
        return self.schema.task or ("binary" if len(self.classes) == 2 else "multiclass")

    @property
    def feature_names(self) -> list[str]:
        return self.schema.feature_names

    def _raw(self, frame: Columns, chunk_rows: int) -> np.ndarray:
        """The estimator's outputs: (rows, outputs) from a torch module, or the scikit-learn
        estimator's predict_proba / predict."""
        if self.kind == SKLEARN:
            matrix = self.preprocessor.matrix(frame)
            if self.schema.is_regression:
                return np.asarray(self.estimator.predict(matrix), dtype=np.float64).reshape(-1, 1)
            return np.asarray(self.estimator.predict_proba(matrix), dtype=np.float64)
        numeric, codes = self.preprocessor.transform(frame)
        out = []
        with torch.inference_mode():
            for start in range(0, len(numeric), chunk_rows):
                outputs = self.estimator(
                    torch.from_numpy(numeric[start : start + chunk_rows]),
                    torch.from_numpy(codes[start : start + chunk_rows]),
                ).double()
                out.append(outputs.numpy() if self.schema.is_regression else torch.softmax(outputs, dim=1).numpy())
        return np.concatenate(out)

    def predict_proba(self, frame: Columns, chunk_rows: int = 65536) -> np.ndarray:
        """(rows, classes) float64 probabilities, in `classes` order (classifiers only)."""
        if self.schema.is_regression:
            raise ValueError("predict_proba: a regression model predicts values; use predict_values")
        if n_rows(frame) == 0:
            return np.zeros((0, len(self.classes)))
        return self._raw(frame, chunk_rows)

    def predict_values(self, frame: Columns, chunk_rows: int = 65536) -> np.ndarray:
        """(rows,) float64 predictions of a regression, in the label's units."""
        if not self.schema.is_regression:
            raise ValueError("predict_values: a classifier predicts classes; use predict_proba")
        if n_rows(frame) == 0:
            return np.zeros(0)
        raw = self._raw(frame, chunk_rows)[:, 0]
        if self.kind == SKLEARN:
            return raw
        scale = self.meta.get("target_scale") or {"mean": 0.0, "std": 1.0}
        return raw * scale["std"] + scale["mean"]

    def predict_output(self, frame: Columns) -> np.ndarray:
        """What metrics are computed from: probabilities of a classifier, values of a regression."""
        return self.predict_values(frame) if self.schema.is_regression else self.predict_proba(frame)

    def predict(self, frame: Columns) -> tuple[list[Any], np.ndarray]:
        proba = self.predict_proba(frame)
        return [self.classes[i] for i in proba.argmax(axis=1)], proba


def _unwrap(module: nn.Module) -> nn.Module:
    module = getattr(module, "module", module)  # DDP
    return getattr(module, "_orig_mod", module)  # torch.compile


def save_model(
    model_dir: str | Path,
    family: Any,
    estimator: Any,
    preprocessor: Preprocessor,
    schema: Schema,
    classes: Sequence[Any],
    extra: dict[str, Any] | None = None,
    *,
    spec: Any = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the files a model needs to predict; returns the model.json contents. `family` is an
    ml.families.Family; a torch model is saved as its factory reference, spec, options and
    weights (loaded with weights_only=True), a scikit-learn estimator with skops, refused when it
    holds a type neither skops nor the family trusts (the error names them)."""
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": 2,
        "family": family.name,
        "factory": family.reference,
        "kind": family.kind,
        "task": schema.task,
        "classes": list(classes),
        "preprocess": PREPROCESS_FILE,
        "schema": SCHEMA_FILE,
    }
    if family.kind == TORCH:
        module = _unwrap(estimator)
        state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in module.state_dict().items()}
        payload = {
            "factory": family.reference,
            "spec": spec.to_dict(),
            "options": dict(options or {}),
            "state_dict": state,
        }
        torch.save(payload, directory / TORCH_FILE)
        meta.update({"weights": TORCH_FILE, "architecture": {"class": type(module).__name__, "spec": spec.to_dict()}})
    else:
        import skops.io as sio

        data = sio.dumps(estimator)
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted_types(family)))
        if untrusted:
            raise ModelSaveError(
                f"model {family.name}: the estimator holds types skops does not trust: {', '.join(untrusted)}; "
                f"list them in {family.reference}'s trusted types (@ml.families.sklearn_model(trusted_types=[...])) "
                "if loading them runs no code, or use an estimator without them"
            )
        (directory / SKLEARN_FILE).write_bytes(data)
        meta.update(
            {
                "weights": SKLEARN_FILE,
                "architecture": {"class": type(estimator).__name__, "n_iter": int(getattr(estimator, "n_iter_", 0))},
            }
        )
    (directory / PREPROCESS_FILE).write_text(json.dumps(preprocessor.to_state()) + "\n")
    (schema if schema.is_regression else schema.with_classes(classes)).save(directory / SCHEMA_FILE)
    meta.update(extra or {})
    (directory / MODEL_META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta


def load_model(model_dir: str | Path) -> TrainedModel:
    """Load a model directory written by `save_model` (training writes one)."""
    from ml.families import ModelPluginError, ModelSpec, resolve

    directory = Path(model_dir)
    meta_path = directory / MODEL_META
    if not meta_path.is_file():
        raise ModelLoadError(f"{directory}: no {MODEL_META}; is this a model directory written by ml.train?")
    meta = json.loads(meta_path.read_text())
    for name in (meta["weights"], meta["preprocess"], meta["schema"]):
        refuse_pickle(directory, name)
        if not (directory / name).is_file():
            raise ModelLoadError(f"{directory}: {name} is missing")
    schema = Schema.load(directory / meta["schema"])
    preprocessor = Preprocessor.from_state(json.loads((directory / meta["preprocess"]).read_text()))
    if meta["weights"] == TORCH_FILE:
        payload = torch.load(directory / meta["weights"], map_location="cpu", weights_only=True)
        if "config" in payload:  # format 1: the MLP was the only torch family
            estimator = TabularMLP.from_config(payload["config"])
        else:
            try:
                family = resolve(payload["factory"])
            except ModelPluginError as err:
                raise ModelLoadError(f"{directory}: {err}") from None
            estimator = family.build(ModelSpec.from_dict(payload["spec"]), payload["options"])
        estimator.load_state_dict(payload["state_dict"])
        estimator.eval()
        meta.setdefault("kind", TORCH)
    else:
        estimator = _load_sklearn(directory, meta)
        meta.setdefault("kind", SKLEARN)
    return TrainedModel(str(meta.get("family")), schema, preprocessor, list(meta.get("classes") or []), estimator, meta)


def _load_sklearn(directory: Path, meta: dict[str, Any]) -> Any:
    """The skops file, trusting only skops' defaults, ours and the family's listed types."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    from ml.families import ModelPluginError, resolve

    try:
        family = resolve(meta["factory"])
    except (KeyError, ModelPluginError) as err:
        raise ModelLoadError(f"{directory}: cannot tell which types to trust ({err})") from None
    try:
        return sio.loads((directory / meta["weights"]).read_bytes(), trusted=trusted_types(family))
    except UntrustedTypesFoundException as err:
        raise ModelLoadError(f"{directory / meta['weights']}: refused, it holds untrusted types ({err})") from None
