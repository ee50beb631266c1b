"""Bad training data through `mlops data-check` (the validation a training job runs before it
trains): exit 1 naming each problem, or 2 when the file cannot be read; never a traceback, never
passed as fine."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from badinput_kit import assert_refused, run_mlops

from ml.data import DEFAULT_SCHEMA, make_synthetic

good = make_synthetic(200, seed=1)
csv = good.to_csv(index=False)
schema = json.dumps(DEFAULT_SCHEMA.to_dict())


def swap(col, value, row=3):
    d = good.copy().astype(object)
    d.loc[row, col] = value
    return d.to_csv(index=False)


CASES = {
    "not-utf8": csv.encode().replace(b"one-year", b"one-\xffyear", 1),
    "utf16": csv.encode("utf-16"),
    "empty": b"",
    "header-only": csv.splitlines()[0].encode() + b"\n",
    "binary-garbage": bytes(range(256)) * 4,
    "missing-column": good.drop(columns=["age"]).to_csv(index=False).encode(),
    "extra-column": good.assign(colour="blue").to_csv(index=False).encode(),
    "missing-label": good.drop(columns=["label"]).to_csv(index=False).encode(),
    "text-in-number": swap("age", "forty").encode(),
    "nan-in-number": swap("age", "nan").encode(),
    "inf-in-number": swap("monthly_charges", "inf").encode(),
    "neg-inf": swap("monthly_charges", "-inf").encode(),
    "huge-number": swap("age", "1e400").encode(),
    "unknown-category": swap("contract", "lifetime").encode(),
    "label-3": swap("label", 3).encode(),
    "label-text": swap("label", "yes").encode(),
    "label-empty": swap("label", "").encode(),
    "one-class": good.assign(label=0).to_csv(index=False).encode(),
    "ragged-row": (csv + "1,2,3\n").encode(),
    "too-few-rows": good.head(10).to_csv(index=False).encode(),
    "negative-age": swap("age", -5).encode(),
    "quote-unclosed": (csv + '"unclosed,1,2\n').encode(),
    "nul-bytes": csv.encode().replace(b"east", b"ea\x00st", 1),
    "semicolons": csv.replace(",", ";").encode(),
}

CASES["duplicates"] = pd.concat([good] * 3).to_csv(index=False).encode()

CASES["duplicates"] = pd.concat([good] * 3).to_csv(index=False).encode()
UNREADABLE = {"not-utf8": "utf-8", "utf16": "utf-8", "empty": "no columns", "binary-garbage": "tokenizing",
              "quote-unclosed": "tokenizing"}  # fmt: skip
SAYS = {
    "header-only": "0 rows", "missing-column": "column is missing", "extra-column": "not in the schema",
    "missing-label": "label column is missing", "text-in-number": "not numbers", "nan-in-number": "missing values",
    "inf-in-number": "infinite", "neg-inf": "infinite", "huge-number": "infinite",
    "unknown-category": "outside the allowed categories", "label-3": "outside the declared classes",
    "label-text": "outside the declared classes", "label-empty": "no label", "one-class": "only one class",
    "duplicates": "duplicate rows", "ragged-row": "missing values", "too-few-rows": "at least 50",
    "negative-age": "below the minimum", "nul-bytes": "outside the allowed categories",
    "semicolons": "not in the schema",
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_is_refused(case, tmp_path, capsys):
    (tmp_path / "train.csv").write_bytes(CASES[case])
    (tmp_path / "schema.json").write_text(schema)
    result = run_mlops(capsys, "data-check", tmp_path / "train.csv", "--schema", tmp_path / "schema.json")
    if case in UNREADABLE:
        assert_refused(result, 2, UNREADABLE[case])
    else:
        assert_refused(result, 1, SAYS[case])


def test_the_good_data_passes(tmp_path, capsys):
    """The table's control row: the refusals above are the changes, not the checker."""
    (tmp_path / "train.csv").write_text(csv)
    (tmp_path / "schema.json").write_text(schema)
    assert run_mlops(capsys, "data-check", tmp_path / "train.csv", "--schema", tmp_path / "schema.json").code == 0


TABLE_SIZE = len(CASES)
