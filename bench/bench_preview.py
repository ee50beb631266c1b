"""Time the offline preview of each stack.

Columns: resources declared; cold seconds (a fresh `python -m infra.preview`, imports
included: what `mlops preview` costs a person); warm seconds (median of runs in one process);
resources per second (warm); and the baseline: the same program under the SDK's plain
MockMonitor without our recording, so the ratio is what recording the graph costs.

    .venv/bin/python bench/bench_preview.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import preview as preview_module
from infra.preview import preview_stack

APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"
STACKS = ("dev", "staging", "prod", "local")


def warm(stack: str, repeat: int, overrides) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        p = preview_stack(stack, overrides)
        times.append(p.seconds)
        count = len(p.resources)
    return statistics.median(times), count


def baseline(stack: str, repeat: int, overrides) -> float:
    """The SDK's own MockMonitor: same program, same mocks, nothing recorded."""
    plain = type("PlainMonitor", (preview_module.pulumi_mocks.MockMonitor,), {"records": []})
    with mock.patch.object(preview_module, "RecordingMonitor", plain):
        return statistics.median(preview_stack(stack, overrides).seconds for _ in range(repeat))


def cold(stack: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "infra.preview", stack],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    preview_stack("dev")  # import pulumi_aws once, so warm means warm
    print(
        f"{'stack':<10}{'serving':>9}{'resources':>11}{'cold s':>9}{'warm s':>9}{'res/s':>9}"
        f"{'baseline s':>12}{'ratio':>8}"
    )
    for stack in STACKS:
        for deployed in (False, True):
            overrides = {"mlops:approvedPackages": {"churn": APPROVED}} if deployed else None
            w, n = warm(stack, args.repeat, overrides)
            b = baseline(stack, args.repeat, overrides)
            c = cold(stack) if not deployed else float("nan")
            print(
                f"{stack:<10}{'yes' if deployed else 'no':>9}{n:>11}{c:>9.2f}{w:>9.3f}{n / w:>9.0f}"
                f"{b:>12.3f}{w / b:>8.2f}"
            )


if __name__ == "__main__":
    main()
