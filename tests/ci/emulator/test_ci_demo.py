"""`mlops demo`: the whole lifecycle in one command, in its own process, against its own emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from ci_testkit import REPO


@pytest.mark.slow
def test_demo_runs_the_lifecycle_and_writes_a_report(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ci", "demo", "--out", str(tmp_path / "report"), "--rows", "800", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["ok"] is True
    assert [s["status"] for s in summary["steps"]] == ["ok"] * len(summary["steps"])
    assert len(summary["steps"]) == 12
    assert summary["gate"]["passed"]
    assert summary["package"]["status"] == "Approved" and "@sha256:" in summary["package"]["image"]
    normal, drifted = summary["monitoring"]["normal traffic"], summary["monitoring"]["drifted traffic"]
    assert not normal["drifted"] and normal["alarm"]["state"] == "OK"
    assert drifted["drifted"] and drifted["alarm"]["state"] == "ALARM" and drifted["score"] > normal["score"]
    assert drifted["metric"]["dimensions"] == {"EndpointName": "mlops-local-churn"}
    assert len(summary["alerts"]) == 1 and summary["alerts"][0]["Message"]["endpoint"] == "mlops-local-churn"
    report = (tmp_path / "report" / "index.html").read_text()
    assert "href='model_card.html'" in report and (tmp_path / "report" / "model_card.html").exists()
    assert summary["package"]["arn"] in report and "ALARM" in report
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["package"]["arn"] == summary["package"]["arn"]
    # the repository's own stack file is untouched: the demo promotes into a temporary copy
    assert 'churn: ""' in (REPO / "stacks" / "Pulumi.local.yaml").read_text()
    assert seconds < 240  # ~40 s on an idle 2-core machine; generous for a loaded CI runner
