"""Data: the synthetic generator, channel loading, schema documents, validation (a table of bad data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.data import (
    DEFAULT_SCHEMA,
    DataValidationError,
    coerce,
    load_channel,
    load_sklearn_dataset,
    make_synthetic,
    validate,
)
from ml.schema import Schema, SchemaError, infer_schema


def test_synthetic_follows_the_schema_and_is_seeded():
    first, again, other = make_synthetic(2000, seed=7), make_synthetic(2000, seed=7), make_synthetic(2000, seed=8)
    assert list(first.columns) == DEFAULT_SCHEMA.feature_names + ["label"]
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert validate(first, DEFAULT_SCHEMA).ok
    assert 0.2 < first["label"].mean() < 0.45  # a churn rate, not a coin flip


def test_drift_knob_shifts_covariates_and_the_label_rule():
    base = make_synthetic(20000, seed=1)
    shifted = make_synthetic(20000, seed=1, covariate_shift=1.0, concept_drift=0.0)
    concept = make_synthetic(20000, seed=1, covariate_shift=0.0, concept_drift=1.0)
    assert shifted["monthly_charges"].mean() > base["monthly_charges"].mean() + 15
    assert (shifted["payment_method"] == "electronic-check").mean() > (
        base["payment_method"] == "electronic-check"
    ).mean() + 0.2
    # concept drift: same inputs, different labels; support calls stop predicting churn
    pd.testing.assert_frame_equal(concept.drop(columns="label"), base.drop(columns="label"))
    base_corr = np.corrcoef(base["support_calls"], base["label"])[0, 1]
    concept_corr = np.corrcoef(concept["support_calls"], concept["label"])[0, 1]
    assert base_corr > 0.2 and abs(concept_corr) < 0.05
    assert validate(make_synthetic(3000, seed=3, drift=1.0), DEFAULT_SCHEMA).ok


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_rows": 0, "seed": 1},
        {"n_rows": 10, "seed": 1, "drift": 1.5},
        {"n_rows": 10, "seed": 1, "concept_drift": -0.1},
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_synthetic(**kwargs)


def test_channel_loads_csv_and_parquet_files_in_name_order(tmp_path):
    frame = make_synthetic(300, seed=3)
    (tmp_path / "b_dir").mkdir()
    frame.iloc[:100].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[100:200].to_parquet(tmp_path / "b_dir" / "b.parquet", index=False)
    frame.iloc[200:].to_csv(tmp_path / "c.csv.gz", index=False)
    (tmp_path / "schema.json").write_text(DEFAULT_SCHEMA.to_json())
    (tmp_path / ".hidden.csv").write_text("garbage")
    loaded = coerce(load_channel(tmp_path, DEFAULT_SCHEMA), DEFAULT_SCHEMA)
    expected = coerce(frame, DEFAULT_SCHEMA)
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


def test_channel_without_data_files_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no data here")
    with pytest.raises(FileNotFoundError, match="no data files"):
        load_channel(tmp_path)


def test_categorical_codes_keep_their_spelling(tmp_path):
    schema = Schema.from_dict(
        {
            "features": [
                {"name": "x", "type": "numeric"},
                {"name": "zip", "type": "categorical", "categories": ["01", "02"]},
            ],
            "label": {"name": "label", "classes": [0, 1]},
        }
    )
    (tmp_path / "d.csv").write_text("x,zip,label\n1.5,01,0\n2.5,02,1\n")
    frame = load_channel(tmp_path, schema)
    assert list(frame["zip"]) == ["01", "02"]
    assert validate(frame, schema, min_rows=1).ok


def test_schema_round_trips_through_json():
    assert Schema.from_dict(json.loads(DEFAULT_SCHEMA.to_json())) == DEFAULT_SCHEMA


@pytest.mark.parametrize(
    "document, message",
    [
        ({"features": []}, "at least one feature"),
        ({"features": [{"name": "a", "type": "text"}]}, "'text' is not allowed; use one of numeric, categorical"),
        ({"features": [{"name": "a", "type": "numeric", "min": 5, "max": 1}]}, "min 5.0 is greater than max 1.0"),
        ({"features": [{"name": "a", "type": "categorical"}]}, "categories (a): expected a non-empty list"),
        ({"features": [{"name": "a", "type": "numeric"}, {"name": "a", "type": "numeric"}]}, "duplicate names ['a']"),
        ({"features": [{"name": "a", "type": "numeric", "colour": "red"}]}, "unknown keys ['colour']"),
        (
            {"features": [{"name": "label", "type": "numeric"}], "label": {"name": "label"}},
            "'label' is also a feature name",
        ),
        (
            {"features": [{"name": "a", "type": "numeric"}], "label": {"name": "y", "classes": [1]}},
            "at least two classes",
        ),
    ],
)
def test_bad_schema_documents_name_the_problem(document, message):
    with pytest.raises(SchemaError) as caught:
        Schema.from_dict(document)
    assert message in str(caught.value)


def test_inferred_schema_reads_types_from_the_data():
    frame = make_synthetic(500, seed=1)
    schema = infer_schema(frame, label="label", task="binary")
    assert [f.type for f in schema.features] == [f.type for f in DEFAULT_SCHEMA.features]
    assert set(schema.feature("contract").categories) == {"month-to-month", "one-year", "two-year"}
    assert schema.classes == (0, 1)


def test_real_datasets_ship_with_scikit_learn():
    frame, schema = load_sklearn_dataset("breast_cancer")
    assert len(frame) == 569 and len(schema.features) == 30 and validate(frame, schema).ok
    with pytest.raises(ValueError, match="use one of breast_cancer, wine, iris"):
        load_sklearn_dataset("mnist")


def _bad(mutate):
    frame = make_synthetic(400, seed=11)
    return mutate(frame.copy())


def _set(frame, column, row, value):
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


# Each case: a way to spoil good data, the column the report must name, and words it must use.
BAD_DATA = [
    ("missing column", lambda f: f.drop(columns=["age"]), "age", "column is missing"),
    ("extra column", lambda f: f.assign(customer_id=range(len(f))), "customer_id", "not in the schema"),
    (
        "text in a number",
        lambda f: _set(f, "monthly_charges", 5, "lots"),
        "monthly_charges",
        "not numbers (e.g. 'lots')",
    ),
    ("missing values", lambda f: _set(f, "tenure_months", [1, 2], None), "tenure_months", "2 missing values"),
    ("below minimum", lambda f: _set(f, "age", 3, 4), "age", "below the minimum 18 (lowest 4)"),
    ("above maximum", lambda f: _set(f, "support_calls", 3, 500), "support_calls", "above the maximum 50"),
    ("not whole", lambda f: _set(f, "tenure_months", 3, 2.5), "tenure_months", "not whole numbers"),
    ("infinite", lambda f: _set(f, "total_charges", 3, float("inf")), "total_charges", "infinite values"),
    (
        "unknown category",
        lambda f: _set(f, "contract", 3, "weekly"),
        "contract",
        "outside the allowed categories (e.g. 'weekly')",
    ),
    ("label missing", lambda f: f.drop(columns=["label"]), "label", "label column is missing"),
    ("unlabelled rows", lambda f: _set(f, "label", [0, 1, 2], None), "label", "3 rows have no label"),
    ("unknown class", lambda f: _set(f, "label", 0, 7), "label", "outside the declared classes"),
    ("one class", lambda f: f.assign(label=0), "label", "only one class present"),
    (
        "rare class",
        lambda f: f.assign(label=np.r_[np.ones(2, int), np.zeros(len(f) - 2, int)]),
        "label",
        "at least 1.00% is required",
    ),
    ("duplicates", lambda f: pd.concat([f, f.iloc[:100]], ignore_index=True), "*", "duplicate rows"),
    ("too few rows", lambda f: f.iloc[:20], "*", "20 rows; at least 50 are required"),
]


@pytest.mark.parametrize("case, mutate, column, words", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_data_is_reported_by_column_and_problem(case, mutate, column, words):
    report = validate(_bad(mutate), DEFAULT_SCHEMA)
    assert not report.ok
    named = [p for p in report.errors if p.column == column]
    assert named, report.to_text()
    assert any(words in p.problem for p in named), report.to_text()
    with pytest.raises(DataValidationError) as caught:
        raise DataValidationError(report)
    assert column in str(caught.value) and words in str(caught.value)


def test_a_few_duplicates_are_a_warning_not_an_error():
    frame = make_synthetic(400, seed=11)
    report = validate(pd.concat([frame, frame.iloc[:3]], ignore_index=True), DEFAULT_SCHEMA)
    assert report.ok and any(p.severity == "warning" and "duplicate" in p.problem for p in report.problems)


def test_every_problem_is_reported_at_once():
    frame = make_synthetic(400, seed=11).drop(columns=["region"])
    frame = _set(frame, "age", 1, 200)
    frame = _set(frame, "contract", 2, "weekly")
    report = validate(frame, DEFAULT_SCHEMA)
    assert {p.column for p in report.errors} >= {"region", "age", "contract"}
