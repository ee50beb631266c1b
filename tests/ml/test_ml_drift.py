"""Drift: the same numbers as scipy.stats, quiet on fresh data, loud on shifted data; captures."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.data import DEFAULT_SCHEMA, make_synthetic
from ml.drift import Baseline, build_baseline, capture_record, drift_report, psi, read_capture
from ml.schema import CATEGORICAL, NUMERIC, Feature, Schema


@pytest.fixture(scope="module")
def baseline():
    return build_baseline(make_synthetic(6000, seed=1), DEFAULT_SCHEMA, sample=3000, seed=0)


def test_fresh_data_from_the_training_distribution_raises_no_alarm(baseline):
    for seed in (2, 3, 4):
        report = drift_report(baseline, make_synthetic(3000, seed=seed))
        assert not report.drifted, report.to_text()
        assert report.score < 0.05
        assert report.features_drifted == []


def test_shifted_data_raises_the_alarm_on_the_features_that_moved(baseline):
    report = drift_report(baseline, make_synthetic(3000, seed=5, covariate_shift=0.8, concept_drift=0.0))
    assert report.drifted and report.score >= 0.2, report.to_text()
    assert {"monthly_charges", "payment_method", "contract"} <= set(report.features_drifted)
    assert "region" not in report.features_drifted  # its distribution does not change
    assert report.to_dict()["features_drifted"] == report.features_drifted
    assert "DRIFT" in report.to_text()


def test_concept_drift_shows_in_the_label_distribution(baseline):
    report = drift_report(baseline, make_synthetic(4000, seed=6, covariate_shift=0.0, concept_drift=1.0))
    assert not report.features_drifted  # the inputs did not move ...
    assert report.label["psi"] > 0.05 and report.label["p_value"] < 1e-12  # ... the churn rate did (33% -> 47%)


SCHEMA = Schema(
    (
        Feature("x", NUMERIC),
        Feature("k", NUMERIC, integer=True),
        Feature("c", CATEGORICAL, categories=("a", "b", "c"), nullable=True),
    ),
    "label",
    (0, 1),
)


def _frame(n, seed, shift=0.0, probs=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.lognormal(shift, 1.0, n),
            "k": rng.poisson(3 + shift, n).astype(float),  # many ties
            "c": rng.choice(["a", "b", "c"], size=n, p=probs),
            "label": rng.integers(0, 2, n),
        }
    )


@pytest.mark.parametrize("shift, n", [(0.0, 4000), (0.05, 20000), (0.5, 777), (0.0, 13)])
def test_ks_statistic_equals_scipy_and_p_values_agree(shift, n):
    train, current = _frame(5000, 1), _frame(n, 2, shift)
    base = build_baseline(train, SCHEMA, sample=2500, seed=3)
    fast = drift_report(base, current)
    exact = drift_report(base, current, exact_p_values=True)
    for name in ("x", "k"):
        reference = np.asarray(base["features"][name]["reference"])
        expected = stats.ks_2samp(reference, current[name].to_numpy(), method="asymp")
        assert fast.per_feature[name]["statistic"] == expected.statistic  # exactly the same float
        assert exact.per_feature[name]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        en = 2500 * n / (2500 + n)
        if en <= 1000:  # small samples: scipy's own p-value
            assert fast.per_feature[name]["p_value"] == exact.per_feature[name]["p_value"]
        else:  # large ones: the limiting distribution, within a few percent of scipy's
            limiting = stats.kstwobign.sf(expected.statistic * np.sqrt(en))
            assert fast.per_feature[name]["p_value"] == pytest.approx(limiting, rel=1e-12, abs=1e-300)
            if expected.pvalue > 1e-6:
                assert fast.per_feature[name]["p_value"] == pytest.approx(expected.pvalue, rel=0.05, abs=2e-3)


def test_chi_square_equals_scipy_with_unseen_and_missing_categories():
    train = _frame(3000, 1)
    current = _frame(1500, 2, probs=(0.3, 0.3, 0.4))
    current.loc[:9, "c"] = "z"  # never seen in training
    current.loc[10:29, "c"] = None
    base = build_baseline(train, SCHEMA, seed=0)
    got = drift_report(base, current).per_feature["c"]
    counts = train["c"].value_counts()
    table = np.array(
        [
            [counts.get(c, 0) for c in ("a", "b", "c")] + [0, 0],
            [int((current["c"] == c).sum()) for c in ("a", "b", "c")] + [10, 20],
        ]
    )
    expected = stats.chi2_contingency(table)
    assert got["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert got["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert got["unseen"] == 10 and got["missing_fraction"] == pytest.approx(20 / 1500)


def test_psi_of_known_fractions():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(0.2 * np.log(0.7 / 0.5) - 0.2 * np.log(0.3 / 0.5))
    assert psi([1.0, 0.0], [0.5, 0.5]) > 2  # an empty bin counts as 1e-4, not log(0)


def test_a_column_that_starts_arriving_empty_drifts(baseline):
    frame = make_synthetic(3000, seed=7)
    frame.loc[: len(frame) // 2, "monthly_charges"] = np.nan
    report = drift_report(baseline, frame)
    assert report.per_feature["monthly_charges"]["missing_fraction"] == pytest.approx(0.5, abs=0.01)
    assert "monthly_charges" in report.features_drifted


def test_columns_missing_from_the_traffic_are_listed(baseline):
    report = drift_report(baseline, make_synthetic(500, seed=8).drop(columns=["age"]))
    assert report.missing_features == ["age"] and "age" not in report.per_feature


def test_a_prepared_baseline_gives_the_same_report(baseline):
    frame = make_synthetic(2000, seed=9, drift=0.5)
    assert drift_report(Baseline(baseline), frame).to_dict() == drift_report(baseline, frame).to_dict()


def test_large_frames_run_on_threads_with_the_same_numbers(baseline):
    frame = make_synthetic(60_000, seed=10, drift=0.3)
    threaded = drift_report(baseline, frame, workers=2).to_dict()
    serial = drift_report(baseline, frame, workers=1).to_dict()
    assert threaded == serial


def _capture_lines(model_dir):
    from ml.payload import format_predictions
    from ml.serve import load_model, predict

    model = load_model(model_dir)
    lines = []
    frame = make_synthetic(40, seed=12)
    records = frame.drop(columns="label").to_dict(orient="records")
    for i in range(0, 40, 10):
        body = json.dumps({"instances": records[i : i + 10]}).encode()
        part = frame.iloc[i : i + 10].drop(columns="label")
        prediction = predict(model, part)
        out = format_predictions(prediction.labels, prediction.probabilities, prediction.classes)
        lines.append(
            json.dumps(
                capture_record(body, "application/json", out, "application/json", f"e{i}", "2026-01-01T00:00:00Z")
            )
        )
    return frame, lines


def test_read_capture_gives_features_and_predictions(mlp_model_dir, tmp_path):
    frame, lines = _capture_lines(mlp_model_dir)
    csv_body = "\n".join(
        ",".join(str(v) for v in row) for row in frame.drop(columns="label").iloc[:5].itertuples(index=False)
    )
    lines.append(
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "mode": "INPUT",
                        "data": base64.b64encode(csv_body.encode()).decode(),
                        "encoding": "BASE64",
                    }
                },
                "eventMetadata": {"eventId": "b", "inferenceTime": "2026-01-01T00:00:01Z"},
                "eventVersion": "0",
            }
        )
    )
    lines.append("{not json")
    (tmp_path / "2026" / "01").mkdir(parents=True)
    (tmp_path / "2026" / "01" / "a.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "2026" / "01" / "b.jsonl").write_text("\n".join(lines[2:]) + "\n")

    captured = read_capture(tmp_path)
    assert len(captured) == 45
    assert captured.attrs["capture_errors"] and "line" in captured.attrs["capture_errors"][0]
    json_part = captured.iloc[:40]
    assert json_part["monthly_charges"].tolist() == pytest.approx(frame["monthly_charges"].tolist())
    assert set(json_part["predicted_label"]) <= {"0", "1"}
    assert json_part["proba_1"].between(0, 1).all()
    assert captured["event_id"].iloc[0] == "e0"

    # headerless CSV rows arrive as positional columns, mapped to the baseline's order
    csv_rows = read_capture(lines[-2:-1])
    assert list(csv_rows.columns[:3]) == ["0", "1", "2"]
    baseline = json.loads((mlp_model_dir / "baseline.json").read_text())
    report = drift_report(baseline, csv_rows)
    assert report.missing_features == [] and report.per_feature["contract"]["n"] == 5

    report = drift_report(baseline, captured.iloc[:40])
    assert report.prediction is not None and report.score_drift is not None
