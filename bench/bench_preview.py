"""Time the offline preview of each stack.

Columns: resources declared; cold seconds (a fresh `python -m infra.preview`, imports
included: what `mlops preview` costs a person); warm seconds (median of runs in one process);
resources per second (warm); and the baseline: the same program under the SDK's plain
MockMonitor without our recording, so the ratio is what recording the graph costs.

A second table, from the same run, sets the warm preview without the AWS preflight beside the
warm preview with it: the config-level rules (derived names, blue/green limits, checked in
`parse_config`, which a preview runs twice) plus `infra.preflight.check_preview` over the graph
(botocore's models and kernel.aws_rules). botocore's models are loaded once per process, before
timing, as a warm preview finds them.

    .venv/bin/python bench/bench_preview.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from timing import median_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra import preview as preview_module
from infra.preflight import check_preview
from infra.preview import preview_stack
from kernel import stack_config as config_module

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


def without_config_rules():
    """The config checks as they were before the preflight: no derived names, no blue/green limits."""
    return mock.patch.multiple(
        config_module,
        names=mock.Mock(derived_name_problems=lambda *a: [], NAME_WORDS=config_module.names.NAME_WORDS),
        _blue_green=lambda *a: None,
    )


def preflight_cost(stack: str, repeat: int, overrides) -> dict[str, float]:
    """Warm preview without and with the preflight (interleaved, medians), and its parts measured alone.

    The end-to-end difference is within the noise of a shared machine; the parts, timed over many
    runs, are what the preflight adds: the config rules (run twice per preview: by the preview and
    by the program) and the graph check.
    """
    without, with_ = [], []
    for _ in range(repeat):
        with without_config_rules():
            without.append(median_seconds(lambda: preview_stack(stack, overrides), 1))
        with_.append(median_seconds(lambda: check_preview(preview_stack(stack, overrides)), 1))
    preview = preview_stack(stack, overrides)
    raw = {**config_module.read_raw_config(stack)[1], **(overrides or {})}
    parse = lambda: config_module.parse_config(stack, raw)  # noqa: E731
    config_with = median_seconds(parse, 200)
    with without_config_rules():
        config_without = median_seconds(parse, 200)
    return {
        "without": statistics.median(without),
        "with": statistics.median(with_),
        "config_ms": (config_with - config_without) * 1000,
        "graph_ms": median_seconds(lambda: check_preview(preview), 50) * 1000,
        "findings": len(check_preview(preview)),
    }


def cases() -> Iterator[tuple[str, bool, dict[str, Any] | None]]:
    """(stack, deployed, config overrides): each shipped stack as shipped, then with a model deployed."""
    for stack in STACKS:
        for deployed in (False, True):
            yield stack, deployed, {"mlops:approvedPackages": {"churn": APPROVED}} if deployed else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    preview_stack("dev")  # import pulumi_aws once, so warm means warm
    print(
        f"{'stack':<10}{'serving':>9}{'resources':>11}{'cold s':>9}{'warm s':>9}{'res/s':>9}"
        f"{'baseline s':>12}{'ratio':>8}"
    )
    for stack, deployed, overrides in cases():
        w, n = warm(stack, args.repeat, overrides)
        b = baseline(stack, args.repeat, overrides)
        c = cold(stack) if not deployed else float("nan")
        print(
            f"{stack:<10}{'yes' if deployed else 'no':>9}{n:>11}{c:>9.2f}{w:>9.3f}{n / w:>9.0f}{b:>12.3f}{w / b:>8.2f}"
        )
    print()
    print("AWS preflight (warm, same run; models loaded once per process, see below):")
    print(
        f"{'stack':<10}{'serving':>9}{'without s':>11}{'with s':>9}{'config ms':>11}{'graph ms':>10}"
        f"{'added ms':>10}{'findings':>10}"
    )
    for stack, deployed, overrides in cases():
        c = preflight_cost(stack, args.repeat, overrides)
        added = 2 * c["config_ms"] + c["graph_ms"]
        print(
            f"{stack:<10}{'yes' if deployed else 'no':>9}{c['without']:>11.3f}{c['with']:>9.3f}"
            f"{c['config_ms']:>11.2f}{c['graph_ms']:>10.2f}{added:>10.2f}{c['findings']:>10}"
        )
    print(f"botocore models, first load in a process (cold, once): {botocore_load_seconds():.3f} s")


def botocore_load_seconds() -> float:
    code = (
        "import time; from kernel import names; from infra.preflight import MAPPINGS; s = time.perf_counter(); "
        "from kernel.aws_model import operation_model; "
        "[operation_model(v, o) for m in MAPPINGS.values() for v, o, _ in m]; "
        "[operation_model(v, o) for v, o in names.NAME_MEMBERS]; print(time.perf_counter() - s)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return float(out.stdout.strip())


if __name__ == "__main__":
    main()
