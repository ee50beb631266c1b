"""Request bodies to data frames, and predictions to response bodies.

Accepted inputs (Content-Type):
  application/json  {"instances": [{"col": v, ...}, ...]}       records
                    {"instances": [[v, ...], ...]}              rows in schema column order
                    [{"col": v, ...}, ...]                      a bare list of records
                    {"columns": ["col", ...], "data": [[...]]}  pandas "split" orient
                    {"col": v, ...}                             one record
                    [v, ...]                                    one row in schema column order (what
                                                                the SageMaker SDK's JSONSerializer
                                                                sends for a 1-D array)
                    no Content-Type at all is read as JSON (the SDK's default), not refused
  application/jsonlines  one record, row or {"instances": [...]} per line (JSONLinesSerializer)
  text/csv          one row per line, schema column order; an optional header row of column names
With a schema (serving), every problem is a PayloadError carrying the HTTP status and a reason
that names the column and row. Without one (reading captured traffic), values are taken as they
come. Used by ml.serve and by ml.drift.read_capture, so both read requests the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.jsonable import scalar
from ml.schema import Feature, Schema

JSON_TYPES = ("application/json",)
JSONLINES_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl", "application/json-lines")
CSV_TYPES = ("text/csv", "application/csv")
SUPPORTED_TYPES = ("application/json", "application/jsonlines", "text/csv")
DEFAULT_TYPE = "application/json"  # a request without Content-Type: the SDK's JSON default
MAX_REPORTED = 5
FLOAT64_MAX = float(np.finfo(np.float64).max)


class PayloadError(ValueError):
    """A request that cannot be answered; `status` is the HTTP status to send."""

    def __init__(self, status: int, reason: str, **details: Any):
        self.status = status
        self.reason = reason
        self.details = details
        super().__init__(reason)

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.reason, "status": self.status, **self.details}


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(
    body: bytes, content_type: str | None, schema: Schema | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame of features, options) from a request body. Options come from a JSON object's other
    top-level keys (e.g. {"explain": true})."""
    columns, options = parse_columns(body, content_type, schema)
    return pd.DataFrame(columns), options


def parse_columns(
    body: bytes, content_type: str | None, schema: Schema | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """As parse_body, but column name -> numpy array (schema order): what the model takes, without
    the cost of building a DataFrame for every request."""
    kind = media_type(content_type) or DEFAULT_TYPE
    if kind in JSON_TYPES:
        return _parse_json(body, schema)
    if kind in JSONLINES_TYPES:
        return _parse_jsonlines(body, schema)
    if kind in CSV_TYPES:
        return _parse_csv(body, schema), {}
    raise PayloadError(
        415,
        f"unsupported content type {content_type or '(none)'!r}; use one of {', '.join(SUPPORTED_TYPES)}",
    )


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------
def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PayloadError(400, f"body is not UTF-8 text (byte {err.start})") from None


def _load_json(text: str, where: str = "body") -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PayloadError(
            400, f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:  # [[[[...]]]] deeper than the parser's stack
        raise PayloadError(400, "JSON nested too deeply; a request is records or rows, two or three levels") from None
    except ValueError as err:  # an integer of more than sys.get_int_max_str_digits() digits
        raise PayloadError(400, f"{where} holds a number too large to read: {err}") from None


def _is_flat_row(document: list[Any]) -> bool:
    """[v, v, ...] with no record or row inside: one row, as JSONSerializer sends a 1-D array."""
    return bool(document) and not any(isinstance(v, (list, dict)) for v in document)


def _parse_json(body: bytes, schema: Schema | None) -> tuple[dict[str, Any], dict[str, Any]]:
    document = _load_json(_decode(body))
    options: dict[str, Any] = {}
    if isinstance(document, list):
        if _is_flat_row(document):
            return _from_rows([document], None, schema, "[]"), options
        return _from_rows(document, None, schema, "[]"), options
    if not isinstance(document, dict):
        raise PayloadError(400, "JSON body must be an object or a list of records")
    if "instances" in document:
        options = {k: v for k, v in document.items() if k != "instances"}
        rows = document["instances"]
        if not isinstance(rows, list):
            raise PayloadError(400, "instances: expected a list of records or rows")
        return _from_rows(rows, None, schema, "instances"), options
    if "columns" in document or "data" in document:
        options = {k: v for k, v in document.items() if k not in ("columns", "data", "index")}
        columns, data = document.get("columns"), document.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise PayloadError(400, "columns: expected a list of column names")
        if not isinstance(data, list):
            raise PayloadError(400, "data: expected a list of rows")
        return _from_rows(data, columns, schema, "data"), options
    return _from_rows([document], None, schema, "record"), options


def _parse_jsonlines(body: bytes, schema: Schema | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """One JSON value per line: a record, a row, or an {"instances": [...]} object (rows pooled)."""
    rows: list[Any] = []
    for number, line in enumerate(_decode(body).splitlines(), start=1):
        if not line.strip():
            continue
        document = _load_json(line, f"jsonlines line {number}")
        if isinstance(document, dict) and isinstance(document.get("instances"), list):
            rows.extend(document["instances"])
        else:
            rows.append(document)
    return _from_rows(rows, None, schema, "jsonlines"), {}


def _from_rows(rows: list[Any], columns: list[str] | None, schema: Schema | None, where: str) -> dict[str, Any]:
    if not rows:
        raise PayloadError(400, f"{where}: no rows to predict")
    if columns is None and all(isinstance(r, dict) for r in rows):
        names = list(dict.fromkeys(k for r in rows for k in r))
        if schema is not None:
            _check_names(names, schema)
            names = schema.feature_names
        values = {name: [r.get(name, _ABSENT) for r in rows] for name in names}
    else:
        if columns is None:
            if not all(isinstance(r, list) for r in rows):
                odd = [i for i, r in enumerate(rows) if not isinstance(r, (list, dict))]
                if odd:
                    got = type(rows[odd[0]]).__name__
                    raise PayloadError(400, f"{where}[{odd[0]}]: expected a record (object) or a row (list), got {got}")
                first = next(i for i, r in enumerate(rows) if isinstance(r, dict))  # records and rows mixed
                raise PayloadError(400, f"{where}[{first}]: a record among rows; send all records or all rows (lists)")
            if schema is None:
                width = max(len(r) for r in rows)
                columns = [str(i) for i in range(width)]
            else:
                columns = schema.feature_names
        elif schema is not None:
            _check_names(columns, schema)
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                raise PayloadError(
                    400, f"{where}[{i}]: expected a list of {len(columns)} values, got {type(row).__name__}"
                )
            if len(row) != len(columns):
                raise PayloadError(
                    400, f"{where}[{i}]: {len(row)} values, expected {len(columns)} ({', '.join(columns)})"
                )
        values = {name: [r[j] for r in rows] for j, name in enumerate(columns)}
    if schema is None:
        return {k: [None if v is _ABSENT else v for v in vs] for k, vs in values.items()}
    return _typed(values, schema, where, len(rows))


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _check_names(names: Sequence[str], schema: Schema) -> None:
    known = set(schema.feature_names)
    unknown = [n for n in names if n not in known and n != schema.label]
    missing = [n for n in schema.feature_names if n not in set(names)]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown columns {unknown[:MAX_REPORTED]}")
        if missing:
            parts.append(f"missing columns {missing[:MAX_REPORTED]}")
        raise PayloadError(
            400, "; ".join(parts) + f"; expected: {', '.join(schema.feature_names)}", unknown=unknown, missing=missing
        )


def _typed(values: dict[str, list[Any]], schema: Schema, where: str, n: int) -> dict[str, Any]:
    """Check every value's type against the schema; numbers to float64, categories to text."""
    out: dict[str, Any] = {}
    for feature in schema.features:
        column = values[feature.name]
        if feature.is_numeric:
            _check_types(where, feature, column, (float, int), "a number")
            try:
                array = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
            except OverflowError:  # an integer beyond float64 (about 1.8e308)
                big = [i for i, v in enumerate(column) if type(v) is int and abs(v) > FLOAT64_MAX]
                raise _type_error(where, feature.name, "a number within float64's range", column, big) from None
            if np.isinf(array).any():
                raise PayloadError(
                    400, f"{where}: column {feature.name!r}: infinite values are not allowed", column=feature.name
                )
            if not feature.nullable and np.isnan(array).any():
                raise PayloadError(400, f"{where}: column {feature.name!r}: NaN is not allowed", column=feature.name)
            out[feature.name] = array
        else:
            _check_types(where, feature, column, (str, int), "a string")
            out[feature.name] = np.array([v if v is None or type(v) is str else str(v) for v in column], dtype=object)
    return out


def _short(value: Any, limit: int = 40) -> str:
    if type(value) is int and value.bit_length() > 128:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_types(where: str, feature: Feature, column: list[Any], types: tuple[type, ...], expected: str) -> None:
    """Refuse a column holding values of other types (exactly: a bool is no int), or nulls the
    feature does not allow."""
    bad = [i for i, v in enumerate(column) if not (type(v) in types or (v is None and feature.nullable))]
    if bad:
        raise _type_error(where, feature.name, expected + (" or null" if feature.nullable else ""), column, bad)


def _type_error(where: str, name: str, expected: str, column: list[Any], bad: list[int]) -> PayloadError:
    shown = ", ".join(f"row {i}: {_short(column[i])}" for i in bad[:MAX_REPORTED])
    return PayloadError(
        400,
        f"{where}: column {name!r} expects {expected}; {len(bad)} values do not ({shown})",
        column=name,
        rows=bad[:MAX_REPORTED],
    )


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------
def _parse_csv(body: bytes, schema: Schema | None) -> dict[str, Any]:
    text = _decode(body)
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(cell.strip() for cell in r)]
    except csv.Error as err:
        raise PayloadError(400, f"body is not valid CSV: {err}") from None
    if not rows:
        raise PayloadError(400, "csv: no rows to predict")
    first = [c.strip() for c in rows[0]]
    names = schema.feature_names if schema is not None else None
    if (
        schema is not None
        and set(first) <= set(schema.feature_names) | {schema.label}
        and not any(_is_number(c) for c in first)
    ):
        header, rows = first, rows[1:]
        _check_names(header, schema)
        if not rows:
            raise PayloadError(400, "csv: a header but no rows to predict")
    elif names is None and first and not any(_is_number(c) for c in first) and len(rows) > 1:
        header, rows = first, rows[1:]
    else:
        header = names or [str(i) for i in range(max(len(r) for r in rows))]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise PayloadError(400, f"csv row {i}: {len(row)} values, expected {len(header)} ({', '.join(header)})")
    columns = {name: [r[j].strip() for r in rows] for j, name in enumerate(header)}
    if schema is None:
        return {k: [_lenient(v) for v in vs] for k, vs in columns.items()}
    out: dict[str, Any] = {}
    for feature in schema.features:
        cells = columns[feature.name]
        if feature.is_numeric:
            try:  # the common case in C: every cell a finite number
                array = np.array(cells, dtype=np.float64)
                if np.isfinite(array).all():
                    out[feature.name] = array
                    continue
            except ValueError:
                pass
            parsed, bad = [], []  # otherwise cell by cell, to name the bad ones
            for i, cell in enumerate(cells):
                if cell == "" and feature.nullable:
                    parsed.append(math.nan)
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    bad.append(i)
                    continue
                if math.isnan(value) or math.isinf(value):
                    bad.append(i)
                parsed.append(value)
            if bad:
                raise _type_error(
                    "csv", feature.name, "a finite number" + (" or empty" if feature.nullable else ""), cells, bad
                )
            out[feature.name] = np.array(parsed, dtype=np.float64)
        else:
            if not feature.nullable and any(c == "" for c in cells):
                bad = [i for i, c in enumerate(cells) if c == ""]
                raise _type_error("csv", feature.name, "a non-empty value", cells, bad)
            out[feature.name] = np.array([c if c != "" else None for c in cells], dtype=object)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _lenient(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------
def response_type(accept: str | None) -> str | None:
    """The response media type for an Accept header: JSON unless CSV is asked for first; None
    when nothing we can write is acceptable (answer 406)."""
    if not accept or not accept.strip():
        return "application/json"
    for part in accept.split(","):
        kind = media_type(part)
        if kind in JSON_TYPES or kind in ("*/*", "application/*"):
            return "application/json"
        if kind in JSONLINES_TYPES:
            return "application/jsonlines"
        if kind in CSV_TYPES or kind == "text/*":
            return "text/csv"
    return None


def format_predictions(
    labels: Sequence[Any], proba: np.ndarray | None, classes: Sequence[Any], kind: str = "application/json"
) -> bytes:
    """JSON {"predictions": [{"label", "probability", "probabilities": {class: p}}]}, JSON Lines (one
    such prediction per line) or CSV rows of the label followed by one probability per class (in
    `classes` order). A regression (no probabilities): {"predictions": [{"value": v}]} or one
    number per CSV row."""
    if proba is None:
        values = [float(v) for v in labels]
        if kind == "text/csv":
            return "".join(f"{v!r}\n" for v in values).encode()
        return _json_out([{"value": v} for v in values], kind)
    names = [str(c) for c in classes]
    rounded = np.round(proba, 6)
    rows = rounded.tolist()
    if kind == "text/csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for label, row in zip(labels, rows):
            writer.writerow([label, *row])
        return buffer.getvalue().encode()
    top = rounded.max(axis=1).tolist() if rows else []
    predictions = [
        {"label": scalar(label), "probability": p, "probabilities": dict(zip(names, row))}
        for label, p, row in zip(labels, top, rows)
    ]
    return _json_out(predictions, kind)


def _json_out(predictions: list[dict[str, Any]], kind: str) -> bytes:
    if kind == "application/jsonlines":
        return "".join(json.dumps(p) + "\n" for p in predictions).encode()
    return json.dumps({"predictions": predictions}).encode()
