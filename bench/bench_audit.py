"""How long `mlops audit --all` and `mlops cost --stack prod` take, and what share is the rules' own work.

Each command runs as a user runs it (a fresh `python -m ci.cli` process, median of --repeat runs)
next to its baseline in the same run: `mlops preview` of the same stacks, which every audit
has to do first. In-process, the rule evaluation and the cost estimate are timed on their own.

    .venv/bin/python bench/bench_audit.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from timing import mlops_process_seconds  # noqa: E402  (bench/ is the script's own folder)

TARGET_SECONDS = 5.0


def timed(argv: list[str], repeat: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of `mlops <argv>` in a fresh process (timing.py)."""
    samples = [mlops_process_seconds(argv, REPO) for _ in range(repeat)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def in_process(repeat: int) -> dict[str, float]:
    from policies.audit import stack_names, target_from_stack
    from policies.cost import estimate
    from policies.engine import evaluate
    from policies.graph import StackGraph

    targets = [target_from_stack(s) for s in stack_names()]
    prod = next(t for t in targets if t.name == "prod")
    rules, cost = [], []
    for _ in range(repeat * 5):
        start = time.perf_counter()
        for t in targets:
            evaluate(t.records, t.context)
        rules.append(time.perf_counter() - start)
        start = time.perf_counter()
        estimate(StackGraph(prod.records), prod.context)
        cost.append(time.perf_counter() - start)
    return {
        "rules_all_stacks": statistics.median(rules),
        "cost_prod": statistics.median(cost),
        "resources": sum(len(t.records) for t in targets),
        "stacks": len(targets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from policies.audit import stack_names

    stacks = stack_names()
    load_before = os.getloadavg()[0]
    previews = [timed(["preview", "--stack", s, "--json"], args.repeat) for s in stacks]
    preview_all = (sum(w for w, _ in previews), sum(c for _, c in previews))
    preview_prod = timed(["preview", "--stack", "prod", "--json"], args.repeat)
    audit_all = timed(["audit", "--all", "--json"], args.repeat)
    cost_prod = timed(["cost", "--stack", "prod", "--json"], args.repeat)
    inner = in_process(args.repeat)
    load_after = os.getloadavg()[0]

    rows = [
        ("mlops audit --all", audit_all, f"{len(stacks)} x mlops preview (one process each)", preview_all),
        ("mlops cost --stack prod", cost_prod, "mlops preview --stack prod", preview_prod),
    ]
    print(
        f"{'command':<24} {'wall s':>7} {'CPU s':>6}  {'baseline':<40} {'wall s':>7} {'CPU s':>6} "
        f"{'CPU ratio':>9}  {'CPU < 5 s':>9}"
    )
    for name, (w, c), base_name, (bw, bc) in rows:
        print(
            f"{name:<24} {w:>7.2f} {c:>6.2f}  {base_name:<40} {bw:>7.2f} {bc:>6.2f} {c / bc:>9.2f}  "
            f"{'yes' if c < TARGET_SECONDS else 'NO':>9}"
        )
    print()
    print(
        f"in process: 43 rules over {inner['stacks']} stacks ({inner['resources']} records) "
        f"{inner['rules_all_stacks'] * 1000:.1f} ms; cost estimate of prod {inner['cost_prod'] * 1000:.2f} ms"
    )
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
