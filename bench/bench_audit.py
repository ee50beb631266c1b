"""How long `mlops audit --all` and `mlops cost --stack prod` take, and what share is the rules' own work.

Each command runs as a user runs it (a fresh `python -m ci.cli` process, median of --repeat runs)
next to its baseline in the same run: `mlops preview` of the same stacks, which every audit
has to do first. In-process, the rule evaluation and the cost estimate are timed on their own.

    .venv/bin/python bench/bench_audit.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_SECONDS = 5.0


def wall(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ci.cli", *argv], cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"mlops {' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return statistics.median(times)


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
    return {"rules_all_stacks": statistics.median(rules), "cost_prod": statistics.median(cost),
            "resources": sum(len(t.records) for t in targets), "stacks": len(targets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from policies.audit import stack_names

    stacks = stack_names()
    previews = sum(wall(["preview", "--stack", s, "--json"], args.repeat) for s in stacks)
    preview_prod = wall(["preview", "--stack", "prod", "--json"], args.repeat)
    audit_all = wall(["audit", "--all", "--json"], args.repeat)
    cost_prod = wall(["cost", "--stack", "prod", "--json"], args.repeat)
    inner = in_process(args.repeat)

    rows = [
        ("mlops audit --all", audit_all, f"{len(stacks)} x mlops preview (separate processes)", previews),
        ("mlops cost --stack prod", cost_prod, "mlops preview --stack prod", preview_prod),
    ]
    print(f"{'command':<26} {'seconds':>8}  {'baseline':<42} {'seconds':>8} {'ratio':>6}  {'< 5 s':>5}")
    for name, seconds, base_name, base in rows:
        print(f"{name:<26} {seconds:>8.2f}  {base_name:<42} {base:>8.2f} {seconds / base:>6.2f}  "
              f"{'yes' if seconds < TARGET_SECONDS else 'NO':>5}")
    print()
    print(f"in process: 43 rules over {inner['stacks']} stacks ({inner['resources']} records) "
          f"{inner['rules_all_stacks'] * 1000:.1f} ms; cost estimate of prod {inner['cost_prod'] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
