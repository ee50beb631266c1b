"""Training hyperparameters: one table of names, types, defaults and allowed values.

SageMaker hands every hyperparameter to the container as a string (and the SDK sometimes
JSON-quotes them, `"\"mlp\""`), so each value is parsed here and checked; a bad one is named
together with what is allowed, and all bad ones are reported at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ml.evaluate import METRIC_NAMES
from ml.schema import TASKS

TARGET_METRICS = ("val_loss", *METRIC_NAMES)
# `model`: a built-in or registered family name, or `package.module:factory` (see ml/families.py).
MODEL_NAME = re.compile(r"^[A-Za-z_][\w-]*$")
MODEL_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class HyperparameterError(ValueError):
    """One or more hyperparameters that cannot be used; `.problems` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid hyperparameters:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Hyperparameters:
    model: str = "mlp"
    model_options: dict[str, Any] = field(default_factory=dict)
    task: str = ""  # binary | multiclass | regression; with `label`, what a data set without schema.json needs
    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden_sizes: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    embedding_cap: int = 16
    seed: int = 42
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    patience: int = 5
    min_delta: float = 0.0
    target_metric: str = "val_loss"
    validation_fraction: float = 0.2
    schema: str = "auto"
    label: str = ""
    min_rows: int = 50
    min_class_fraction: float = 0.01
    max_duplicate_fraction: float = 0.05
    amp: str = "auto"  # auto: bf16 on compute capability >= 8.0, fp16 + loss scaling on 7.x, else fp32
    compile: str = "auto"  # auto: torch.compile on CUDA for models of compile_min_params and up
    compile_min_params: int = 1_000_000
    dist_timeout_seconds: int = 1800  # process-group collectives, barriers included (rank 0 writes the model)
    deterministic: bool = True
    gbdt_max_iter: int = 300
    gbdt_learning_rate: float = 0.1
    gbdt_max_leaf_nodes: int = 31
    importance_repeats: int = 5
    importance_max_rows: int = 5000
    baseline_sample: int = 10000
    model_card: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hidden_sizes"] = list(self.hidden_sizes)
        out["model_options"] = dict(self.model_options)
        return out


# ---------------------------------------------------------------------------------------------
# Parsers: each takes the raw value and returns the typed one or raises ValueError(allowed).
# ---------------------------------------------------------------------------------------------
def _integer(lo: int, hi: int) -> Callable[[Any], int]:
    allowed = f"a whole number from {lo} to {hi}"

    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError(allowed)
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        else:
            text = str(raw).strip()
            try:
                value = int(text)
            except ValueError:
                try:
                    as_float = float(text)
                except ValueError:
                    raise ValueError(allowed) from None
                if not as_float.is_integer():
                    raise ValueError(allowed) from None
                value = int(as_float)
        if not lo <= value <= hi:
            raise ValueError(allowed)
        return value

    return parse


def _number(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Callable[[Any], float]:
    allowed = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise ValueError(allowed)
        try:
            value = float(str(raw).strip()) if not isinstance(raw, (int, float)) else float(raw)
        except ValueError:
            raise ValueError(allowed) from None
        if value != value or (value < lo or (lo_open and value == lo)) or (value > hi or (hi_open and value == hi)):
            raise ValueError(allowed)
        return value

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    allowed = "one of " + ", ".join(options)

    def parse(raw: Any) -> str:
        value = str(raw).strip()
        if value not in options:
            raise ValueError(allowed)
        return value

    return parse


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError("true or false")


def _sizes(raw: Any) -> tuple[int, ...]:
    allowed = "1 to 16 layer widths from 1 to 65536, e.g. 128,64 or [128, 64]"
    if isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        text = str(raw).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(allowed) from None
        else:
            items = [p for p in text.replace(" ", "").split(",") if p != ""]
    width = _integer(1, 65536)
    try:
        sizes = tuple(width(i) for i in items)
    except ValueError:
        raise ValueError(allowed) from None
    if not 1 <= len(sizes) <= 16:
        raise ValueError(allowed)
    return sizes


def _model(raw: Any) -> str:
    value = str(raw).strip()
    if not (MODEL_NAME.match(value) or MODEL_REFERENCE.match(value)):
        raise ValueError(
            "a model family name (mlp, ft_transformer, linear, gbdt or a registered one) or package.module:factory"
        )
    return value


def _options(raw: Any) -> dict[str, Any]:
    allowed = 'a JSON object of keyword arguments for the model factory, e.g. {"d_token": 32}'
    if isinstance(raw, dict):
        return dict(raw)
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError:
        raise ValueError(allowed) from None
    if not isinstance(value, dict):
        raise ValueError(allowed)
    return value


def _text(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("a non-empty string")
    return value


PARSERS: dict[str, Callable[[Any], Any]] = {
    "model": _model,
    "model_options": _options,
    "task": _choice(*TASKS),
    "epochs": _integer(1, 10000),
    "batch_size": _integer(1, 1 << 20),
    "lr": _number(0.0, 10.0, lo_open=True),
    "weight_decay": _number(0.0, 1.0),
    "hidden_sizes": _sizes,
    "dropout": _number(0.0, 1.0, hi_open=True),
    "embedding_cap": _integer(1, 512),
    "seed": _integer(0, 2**32 - 1),
    "checkpoint_every": _integer(0, 10**9),
    "keep_checkpoints": _integer(1, 100),
    "patience": _integer(0, 10000),
    "min_delta": _number(0.0, 1e6),
    "target_metric": _choice(*TARGET_METRICS),
    "validation_fraction": _number(0.0, 0.9, lo_open=True),
    "schema": _choice("auto", "infer", "example"),
    "label": _text,
    "min_rows": _integer(1, 10**12),
    "min_class_fraction": _number(0.0, 0.5),
    "max_duplicate_fraction": _number(0.0, 1.0),
    "amp": _choice("auto", "bf16", "fp16", "fp32", "off"),
    "compile": _choice("auto", "true", "false"),
    "compile_min_params": _integer(0, 10**12),
    "dist_timeout_seconds": _integer(10, 7 * 24 * 3600),
    "deterministic": _boolean,
    "gbdt_max_iter": _integer(1, 100000),
    "gbdt_learning_rate": _number(0.0, 1.0, lo_open=True),
    "gbdt_max_leaf_nodes": _integer(2, 65536),
    "importance_repeats": _integer(1, 100),
    "importance_max_rows": _integer(10, 10**7),
    "baseline_sample": _integer(100, 10**7),
    "model_card": _boolean,
}
assert set(PARSERS) == {f.name for f in fields(Hyperparameters)}

# Keys SageMaker and its SDKs add on their own; they are not ours to validate.
IGNORED_PREFIXES = ("sagemaker_", "_")


def _unquote(raw: Any) -> Any:
    """The SageMaker SDK JSON-encodes string hyperparameters: '"mlp"' -> 'mlp'."""
    if isinstance(raw, str) and len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def parse_hyperparameters(raw: dict[str, Any] | None) -> Hyperparameters:
    """Typed, checked hyperparameters from SageMaker's hyperparameters.json (values as strings)."""
    if raw is None:
        return Hyperparameters()
    if not isinstance(raw, dict):
        raise HyperparameterError(
            [f"hyperparameters: expected a JSON object of name -> value, got {type(raw).__name__}"]
        )
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in raw.items():
        if any(name.startswith(p) for p in IGNORED_PREFIXES):
            continue
        parser = PARSERS.get(name)
        if parser is None:
            close = [k for k in PARSERS if k.replace("_", "") == name.replace("_", "").replace("-", "").lower()]
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(sorted(PARSERS))}"
            problems.append(f"{name}: unknown hyperparameter{hint}")
            continue
        try:
            values[name] = parser(_unquote(value))
        except ValueError as err:
            problems.append(f"{name}: {value!r} is not allowed; expected {err}")
    if problems:
        raise HyperparameterError(problems)
    return Hyperparameters(**values)
