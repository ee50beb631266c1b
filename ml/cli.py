"""`mlops data-check`, `mlops drift`, `mlops model-card`: the ML code's own checks, on local files.

Declared as click commands that `mlops` (ci/cli.py) adds; each imports what it needs when it runs,
so `mlops --help` stays fast, and `ml/` still imports nothing of ours (click is a library).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click

from ml.jsonable import plain


class _Number(click.ParamType):
    """A float flag: NaN and infinity are refused (they would switch a check off silently)."""

    name = "float"

    def __init__(self, check=None, refusal: str = ""):
        self.check, self.refusal = check, refusal

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.check is not None and not self.check(number):
            self.fail(f"{value!r} {self.refusal}", param, ctx)
        return number


FRACTION = _Number(lambda v: 0.0 <= v <= 1.0, "is not a fraction from 0 to 1")
POSITIVE = _Number(lambda v: v > 0.0, "is not above 0")


def _json_option(help: str):
    return click.option("--json", "as_json", is_flag=True, help=help)


@click.command(
    "data-check",
    short_help="validate a data set (CSV/Parquet files) against its schema, as training would",
    help="Runs the validation a training job runs before it trains: columns, types, missing values, ranges, "
    "categories, duplicates, label classes and balance, minimum rows. DATA is a data set as `mlops train --data` "
    "takes it (train/ validation/ [test/] folders, or train.csv validation.csv [test.csv]), one channel folder, or "
    "one file. The schema: --schema, else schema.json with the data, else one inferred from the train split with "
    "--label and --task (as training infers it). Exits 1 and names every problem when it fails, 2 when it cannot "
    "check.",
)
@click.argument("data", help="a data set folder, a folder of CSV/Parquet files (a channel), or one file")
@click.option("--schema", help="schema.json (default: the data set's own schema.json)")
@click.option("--label", help="the target column, when the data bring no schema.json")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), help="with --label: what to learn")
@click.option("--min-rows", type=int, default=50, help="fewest training rows (default 50)")
@click.option("--min-class-fraction", type=FRACTION, default=0.01, help="rarest label class's share (default 0.01)")
@click.option("--max-duplicate-fraction", type=FRACTION, default=0.05, help="most duplicate rows (default 0.05)")
@_json_option("print the report as JSON")
def data_check(**params: Any) -> int:
    return run_data_check(_args(params))


@click.command(
    "drift",
    short_help="drift of a data set or of captured traffic against a model's training baseline",
    help="Compares rows (CSV/Parquet files, or SageMaker data-capture JSON Lines) with baseline.json: PSI and KS "
    "(numeric) or chi-square (categorical) per feature, label and prediction drift. Exits 1 when "
    "drift passes the threshold.",
)
@click.option("--baseline", required=True, help="baseline.json, or a model directory that holds one")
@click.option(
    "--data",
    required=True,
    help="CSV/Parquet files or a folder of them, or capture *.jsonl files or a folder of them",
)
# 0.2: ml.drift.DEFAULT_THRESHOLD, not imported so `mlops --help` loads no pandas (a test holds them equal)
@click.option("--threshold", type=POSITIVE, default=0.2, help="PSI at which a feature counts as drifted (default 0.2)")
@_json_option("print the report as JSON")
def drift(**params: Any) -> int:
    return run_drift(_args(params))


@click.command(
    "model-card",
    short_help="(re)build a model directory's HTML model card",
    help="Writes model_card.html from the files training left in the model directory.",
)
@click.argument("model_dir", help="a model directory written by ml/train.py (unpacked model.tar.gz)")
@_json_option('print {"card": path} as JSON')
def model_card(**params: Any) -> int:
    return run_model_card(_args(params))


COMMANDS = (data_check, drift, model_card)


def _args(params: dict[str, Any]) -> SimpleNamespace:
    params["json"] = params.pop("as_json")
    return SimpleNamespace(**params)


def _fail(message: str, as_json: bool) -> int:
    """Bad input: `mlops` (ci/cli.py) reports it the one way, exit 2, the same --json document."""
    raise ValueError(message)


def _read_rows(path: Path, schema=None):
    from ml.data import load_channel, load_files

    if path.is_file():
        return load_files([path], schema)
    return load_channel(path, schema)


def _data_check_inputs(data: Path, args: SimpleNamespace):
    """(schema, where it came from, {split: (files or folder)}) for a data set, a channel or a file."""
    from ml.data import find_splits, read_schema_beside
    from ml.schema import Schema, infer_schema

    if data.is_dir() and any((data / s).is_dir() or list(data.glob(f"{s}.*")) for s in ("train", "validation")):
        layout = find_splits(data)
        parts: dict[str, list[Path] | None] = dict(layout.splits)
        schema_file = layout.schema
    else:
        parts = {"data": [data] if data.is_file() else None}
        schema_file = (data if data.is_dir() else data.parent) / "schema.json"
        schema_file = schema_file if schema_file.is_file() else None
    if args.schema:
        return Schema.load(args.schema), args.schema, parts
    if schema_file is not None:
        schema = read_schema_beside(schema_file.parent)
        return schema, str(schema_file), parts
    if not (args.label and args.task):
        raise ValueError(
            f"{data}: no schema.json with the data; give --schema, or --label and --task "
            "(binary, multiclass or regression) to infer one from the training rows, as training does"
        )
    first = parts.get("train", parts.get("data"))
    raw = _read_files(first, data, None, as_text=True)
    return infer_schema(raw, args.label, args.task), f"inferred (label {args.label!r}, task {args.task})", parts


def _read_files(files, folder: Path, schema, as_text: bool = False):
    from ml.data import load_channel, load_files

    if files is None:
        return load_channel(folder, schema, as_text=as_text)
    return load_files(files, schema, as_text=as_text)


def run_data_check(args: SimpleNamespace) -> int:
    from ml.data import ValidationReport, validate
    from ml.schema import SchemaError

    data = Path(args.data)
    if not data.exists():
        return _fail(f"{data} does not exist", args.json)
    try:
        schema, source, parts = _data_check_inputs(data, args)
        print(f"checking {data} against {source}", file=sys.stderr)
        frames = {split: _read_files(files, data, schema) for split, files in parts.items()}
    except (SchemaError, FileNotFoundError, ValueError, OSError) as err:
        return _fail(str(err), args.json)
    reports: dict[str, ValidationReport] = {}
    for split, frame in frames.items():
        first = split in ("train", "data")
        reports[split] = validate(
            frame,
            schema,
            min_rows=args.min_rows if first else 1,
            min_class_fraction=args.min_class_fraction if first else 0.0,
            max_duplicate_fraction=args.max_duplicate_fraction if first else 1.0,
        )
    ok = all(r.ok for r in reports.values())
    if args.json:
        if list(reports) == ["data"]:
            print(json.dumps({**reports["data"].to_dict(), "schema": source}, indent=2))
        else:
            body = {"ok": ok, "schema": source, "splits": {k: r.to_dict() for k, r in reports.items()}}
            print(json.dumps(body, indent=2))
    else:
        for split, report in reports.items():
            print(report.to_text() if split == "data" else f"{split}: {report.to_text()}")
    return 0 if ok else 1


def _capture_like(path: Path) -> bool:
    files = [path] if path.is_file() else sorted(path.rglob("*"))
    return any(f.is_file() and f.suffix in (".jsonl", ".json") for f in files)


def run_drift(args: SimpleNamespace) -> int:
    from ml.drift import Baseline, drift_report, read_capture

    baseline_path = Path(args.baseline)
    if baseline_path.is_dir():
        baseline_path = baseline_path / "baseline.json"
    if not baseline_path.is_file():
        return _fail(
            f"no baseline at {baseline_path} (expected baseline.json or a model directory holding one)", args.json
        )
    data = Path(args.data)
    if not data.exists():
        return _fail(f"{data} does not exist", args.json)
    if args.threshold <= 0:
        return _fail(f"--threshold: expected a positive PSI, got {args.threshold}", args.json)
    try:
        baseline = Baseline(json.loads(baseline_path.read_text()))
        schema = baseline.schema()  # the model's: columns are typed as training typed them
        frame = read_capture(data, schema=schema) if _capture_like(data) else _read_rows(data, schema)
    except (json.JSONDecodeError, FileNotFoundError, ValueError, OSError, KeyError) as err:
        return _fail(str(err), args.json)
    if len(frame) == 0:
        return _fail(f"no rows in {data}", args.json)
    try:
        report = drift_report(baseline, frame, threshold=args.threshold)
    except (KeyError, ValueError) as err:
        return _fail(f"{baseline_path} is not a drift baseline written by ml/train.py ({err})", args.json)
    errors = frame.attrs.get("capture_errors") or []
    if errors:
        print(f"skipped {len(errors)} unreadable capture lines (first: {errors[0]})", file=sys.stderr)
    if args.json:
        print(json.dumps(plain(report.to_dict(), nan_as_null=True), indent=2))
    else:
        print(report.to_text())
    return 1 if report.drifted else 0


def run_model_card(args: SimpleNamespace) -> int:
    from ml.card import write_card

    directory = Path(args.model_dir)
    if not (directory / "model.json").is_file():
        return _fail(f"{directory} is not a model directory (no model.json); unpack model.tar.gz first", args.json)
    path = write_card(directory)
    print(json.dumps({"card": str(path)}) if args.json else path)
    return 0
