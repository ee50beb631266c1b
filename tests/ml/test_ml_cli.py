"""`mlops data-check`, `mlops drift`, `mlops model-card`."""

from __future__ import annotations

import json
import shutil

import pytest

from ci.cli import main
from ml.data import DEFAULT_SCHEMA, make_synthetic


def test_data_check_passes_good_data_and_names_every_problem(tmp_path, capsys):
    make_synthetic(300, seed=1).to_csv(tmp_path / "good.csv", index=False)
    # No schema.json: the churn example schema is not a fallback, the label and task are asked for.
    assert main(["data-check", str(tmp_path / "good.csv"), "--label", "label", "--task", "binary"]) == 0
    assert "data validation passed (300 rows)" in capsys.readouterr().out

    bad = make_synthetic(300, seed=1).drop(columns=["region"])
    bad.loc[3, "age"] = 7
    folder = tmp_path / "channel"
    folder.mkdir()
    bad.to_csv(folder / "part-0.csv", index=False)
    (folder / "schema.json").write_text(DEFAULT_SCHEMA.to_json())
    assert main(["data-check", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["schema"] == str(folder / "schema.json")
    assert {(p["column"], p["severity"]) for p in report["problems"]} >= {("region", "error"), ("age", "error")}


def test_data_check_user_errors_are_one_line(tmp_path, capsys):
    assert main(["data-check", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing'} does not exist"
    (tmp_path / "s.json").write_text('{"features": []}')
    make_synthetic(60, seed=1).to_csv(tmp_path / "d.csv", index=False)
    assert main(["data-check", str(tmp_path / "d.csv"), "--schema", str(tmp_path / "s.json")]) == 2
    assert "at least one feature" in capsys.readouterr().err


def test_drift_on_files_and_on_captures(mlp_model_dir, tmp_path, capsys):
    make_synthetic(3000, seed=31).to_parquet(tmp_path / "fresh.parquet")
    assert main(["drift", "--baseline", str(mlp_model_dir), "--data", str(tmp_path / "fresh.parquet")]) == 0
    assert "no drift" in capsys.readouterr().out

    make_synthetic(3000, seed=32, drift=0.9).to_csv(tmp_path / "shifted.csv", index=False)
    assert (
        main(
            [
                "drift",
                "--baseline",
                str(mlp_model_dir / "baseline.json"),
                "--data",
                str(tmp_path / "shifted.csv"),
                "--json",
            ]
        )
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["drifted"] is True and "monthly_charges" in report["features_drifted"]

    from ml.drift import capture_record

    rows = make_synthetic(50, seed=33).drop(columns="label")
    body = "\n".join(",".join(str(v) for v in r) for r in rows.itertuples(index=False)).encode()
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "c.jsonl").write_text(
        json.dumps(capture_record(body, "text/csv", b'{"predictions": []}', "application/json", "e", "t")) + "\n"
    )
    assert main(["drift", "--baseline", str(mlp_model_dir), "--data", str(tmp_path / "capture"), "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["n_rows"] == 50


def test_drift_user_errors(tmp_path, capsys):
    assert main(["drift", "--baseline", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "no baseline at" in capsys.readouterr().err


def test_model_card_rebuilds(mlp_model_dir, tmp_path, capsys):
    copy = tmp_path / "model"
    shutil.copytree(mlp_model_dir, copy)
    (copy / "model_card.html").unlink()
    assert main(["model-card", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"card": str(copy / "model_card.html")}
    assert main(["model-card", str(tmp_path)]) == 2


@pytest.mark.parametrize("command", ["data-check", "drift", "model-card"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0 and "usage: mlops" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["data-check", "d.csv", "--min-class-fraction", "nan"],
        ["data-check", "d.csv", "--max-duplicate-fraction", "inf"],
        ["data-check", "d.csv", "--max-duplicate-fraction", "1.5"],
        ["drift", "--baseline", "m", "--data", "d.csv", "--threshold", "nan"],
        ["drift", "--baseline", "m", "--data", "d.csv", "--threshold", "-0.1"],
    ],
    ids=["nan-fraction", "inf-fraction", "fraction-over-1", "nan-threshold", "negative-threshold"],
)
def test_nan_infinity_and_out_of_range_flags_are_refused(argv, capsys):
    """A NaN threshold would switch the check off without a word; it is a usage error (exit 2)."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and (
        "not a finite number" in err or "not a fraction" in err or "not above 0" in err
    )
