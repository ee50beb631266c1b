"""Model families as plug-ins: a hyperparameter names the model, nothing else in training does.

`model=<name>` picks a registered family: the built-ins below, or any package's entry point in
the group `mlops.models` (`name = "package.module:factory"`). `model=package.module:factory`
names one directly, so a user's model trains without editing ml/. `model_options` (a JSON
object) is passed to the factory as keyword arguments.

A factory is called as `factory(spec, **options)` with the `ModelSpec` of the data, and returns
  - a torch `nn.Module` whose `forward(numeric, codes)` maps standardised numbers (rows x
    n_numeric, float32) and category codes (rows x n_categorical, int64; 0 = unknown, so an
    embedding table needs cardinality + 1 rows) to `spec.n_outputs` numbers per row (class
    logits, or one value for a regression). It trains in the torch loop of ml/train.py: on
    GPUs, across processes with DDP, checkpointed. Its weights are saved as a state dict and
    rebuilt at load time by calling the same factory with the same spec and options, so the
    factory's module must be importable wherever the model is served (the same image).
  - a scikit-learn estimator (`fit(X, y)`, then `predict_proba(X)` for a classifier, `predict(X)`
    for a regression), fed the raw numeric columns (missing as NaN) then the category codes
    (0-based, unknown as NaN): `Preprocessor.matrix`. It trains in one process and is saved with
    skops, never pickled: a type that skops does not trust by default (`skops.io.get_untrusted_types`
    names them) must be listed with `@sklearn_model(trusted_types=[...])`, else saving refuses it.
Which of the two a factory makes is read from the factory itself, before any data is loaded
(the trainer must know whether to start one process per GPU): an `nn.Module` subclass, a
return annotation, or the attribute `mlops_kind` ("torch" or "sklearn") set by the decorators
`torch_model` / `sklearn_model`.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import torch
from torch import nn

TORCH = "torch"
SKLEARN = "sklearn"
KINDS = (TORCH, SKLEARN)
ENTRY_POINT_GROUP = "mlops.models"
BUILTIN = {
    "mlp": "ml.families:mlp",
    "ft_transformer": "ml.families:ft_transformer",
    "linear": "ml.families:linear",
    "gbdt": "ml.families:gbdt",
}


class ModelPluginError(ValueError):
    """A model hyperparameter that does not name a usable factory; the message says why."""


@dataclass(frozen=True)
class ModelSpec:
    """What a factory needs to know about the data and the task."""

    n_numeric: int
    cardinalities: list[int]  # distinct categories seen in training, per categorical column
    n_outputs: int  # classes, or 1 for a regression
    task: str | None  # binary | multiclass | regression; None: classification (a schema without a task)
    seed: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # the run's, for built-ins

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    @property
    def categorical_mask(self) -> list[bool]:
        """Columns of `Preprocessor.matrix` that are category codes (for estimators that care)."""
        return [False] * self.n_numeric + [True] * len(self.cardinalities)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelSpec:
        return cls(**raw)


@dataclass(frozen=True)
class Family:
    name: str  # as the hyperparameter gave it
    reference: str  # package.module:factory
    factory: Callable[..., Any]
    kind: str  # torch | sklearn

    def build(self, spec: ModelSpec, options: dict[str, Any] | None = None) -> Any:
        try:
            made = self.factory(spec, **(options or {}))
        except TypeError as err:
            raise ModelPluginError(
                f"model {self.name}: {self.reference}(spec, **model_options) failed: {err}"
            ) from None
        if self.kind == TORCH and not isinstance(made, nn.Module):
            raise ModelPluginError(
                f"model {self.name}: {self.reference} returned {type(made).__name__}, not a torch module"
            )
        if self.kind == SKLEARN and not hasattr(made, "fit"):
            raise ModelPluginError(
                f"model {self.name}: {self.reference} returned {type(made).__name__}, which has no fit"
            )
        return made


def torch_model(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a factory as returning a torch module."""
    factory.mlops_kind = TORCH  # type: ignore[attr-defined]
    return factory


def sklearn_model(factory: Callable[..., Any] | None = None, *, trusted_types: tuple[str, ...] | list[str] = ()) -> Any:
    """Mark a factory as returning a scikit-learn estimator; `trusted_types` are the fully qualified
    names of the types its estimator holds that skops does not trust by default (and that load
    as data, running no code): ml/model.py loads the model trusting those and no others."""

    def mark(target: Callable[..., Any]) -> Callable[..., Any]:
        target.mlops_kind = SKLEARN  # type: ignore[attr-defined]
        target.mlops_trusted_types = tuple(trusted_types)  # type: ignore[attr-defined]
        return target

    return mark(factory) if factory is not None else mark


def _registered() -> dict[str, str]:
    found = dict(BUILTIN)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def _import(reference: str, name: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelPluginError(f"model {name}: cannot import {module_name!r} ({err})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelPluginError(f"model {name}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ModelPluginError(f"model {name}: {reference} is not callable")
    return target


def kind_of(factory: Callable[..., Any], name: str) -> str:
    """torch or sklearn, read from the factory without calling it."""
    kind = getattr(factory, "mlops_kind", None)
    if kind in KINDS:
        return kind
    returned: Any = factory if inspect.isclass(factory) else None
    if returned is None:
        try:
            returned = typing.get_type_hints(factory).get("return")
        except Exception:  # an annotation that does not resolve tells us nothing
            returned = None
    if inspect.isclass(returned):
        if issubclass(returned, nn.Module):
            return TORCH
        if hasattr(returned, "fit"):
            return SKLEARN
    raise ModelPluginError(
        f"model {name}: cannot tell whether it makes a torch module or a scikit-learn estimator; "
        "annotate the factory's return type or decorate it with ml.families.torch_model / sklearn_model"
    )


def resolve(name: str) -> Family:
    """The family a `model` hyperparameter names."""
    registered = _registered()
    if ":" in name:
        reference = name
    elif name in registered:
        reference = registered[name]
    else:
        raise ModelPluginError(
            f"model {name!r} is not registered; use one of {', '.join(sorted(registered))}, "
            f"a package's `{ENTRY_POINT_GROUP}` entry point, or package.module:factory"
        )
    factory = _import(reference, name)
    return Family(name, reference, factory, kind_of(factory, name))


# ---------------------------------------------------------------------------------------------
# Built-in families.
# ---------------------------------------------------------------------------------------------
def mlp(spec: ModelSpec, **options: Any) -> nn.Module:
    """The tabular MLP (ml.model.TabularMLP), sized by the run's hyperparameters."""
    from ml.model import TabularMLP

    hp = spec.hyperparameters
    settings = {
        "hidden_sizes": hp.get("hidden_sizes", (128, 64)),
        "dropout": hp.get("dropout", 0.1),
        "embedding_cap": hp.get("embedding_cap", 16),
        **options,
    }
    return TabularMLP(spec.n_numeric, spec.cardinalities, spec.n_outputs, **settings)


class TabularLinear(nn.Module):
    """A linear model: one weight per standardised number and per category (an embedding of
    width n_outputs is exactly a one-hot linear term), plus a bias. Logistic or softmax
    regression with cross entropy, least squares with squared error: the baseline a deeper
    model must beat."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.numeric = nn.Linear(spec.n_numeric, spec.n_outputs)
        tables = [nn.Embedding(c + 1, spec.n_outputs) for c in spec.cardinalities]
        for table in tables:
            nn.init.zeros_(table.weight)
        self.categories = nn.ModuleList(tables)

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        out = self.numeric(numeric)
        for i, table in enumerate(self.categories):
            out = out + table(codes[:, i])
        return out


def linear(spec: ModelSpec) -> nn.Module:
    return TabularLinear(spec)


class FTTransformer(nn.Module):
    """Feature Tokenizer + Transformer (Gorishniy et al., 2021, "Revisiting Deep Learning Models
    for Tabular Data"): every column becomes a token (a number scales a learnt vector and adds a
    bias; a category looks up an embedding), a [CLS] token is prepended, a small pre-norm
    Transformer encoder mixes them, and the [CLS] token's output is the prediction."""

    def __init__(self, spec: ModelSpec, d_token: int = 32, n_heads: int = 4, n_layers: int = 2, dropout: float = 0.1):
        super().__init__()
        if d_token % n_heads:
            raise ValueError(f"model_options: d_token {d_token} must be a multiple of n_heads {n_heads}")
        self.numeric_weight = nn.Parameter(torch.randn(spec.n_numeric, d_token) / d_token**0.5)
        self.numeric_bias = nn.Parameter(torch.zeros(spec.n_numeric, d_token))
        self.embeddings = nn.ModuleList(nn.Embedding(c + 1, d_token) for c in spec.cardinalities)
        self.cls = nn.Parameter(torch.randn(1, 1, d_token) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_token, n_heads, dim_feedforward=2 * d_token, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, spec.n_outputs))

    def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        tokens = [numeric.unsqueeze(-1) * self.numeric_weight + self.numeric_bias]
        tokens += [table(codes[:, i]).unsqueeze(1) for i, table in enumerate(self.embeddings)]
        x = torch.cat([self.cls.expand(len(numeric), -1, -1), *tokens], dim=1)
        return self.head(self.encoder(x)[:, 0])


def ft_transformer(spec: ModelSpec, **options: Any) -> nn.Module:
    return FTTransformer(spec, **options)


@sklearn_model(
    trusted_types=(
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # arrays of nodes
        "functools.partial",  # of check_array, the classifier's input validation
        "sklearn.utils.validation.check_array",
    )
)
def gbdt(spec: ModelSpec, **options: Any) -> Any:
    """scikit-learn's histogram gradient boosting with native categorical support."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    hp = spec.hyperparameters
    patience = int(hp.get("patience", 5))
    # HGB bins categories into at most 255 values; wider columns are treated as numbers.
    mask = [False] * spec.n_numeric + [c < 255 for c in spec.cardinalities]
    settings = {
        "max_iter": hp.get("gbdt_max_iter", 300),
        "learning_rate": hp.get("gbdt_learning_rate", 0.1),
        "max_leaf_nodes": hp.get("gbdt_max_leaf_nodes", 31),
        "categorical_features": mask if any(mask) else None,
        "early_stopping": patience > 0,
        "n_iter_no_change": max(patience, 1),
        "scoring": "loss",
        "random_state": spec.seed,
        **options,
    }
    estimator = HistGradientBoostingRegressor if spec.is_regression else HistGradientBoostingClassifier
    return estimator(**settings)
