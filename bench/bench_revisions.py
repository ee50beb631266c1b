"""The same `mlops` commands from two revisions of this repository, side by side in one run.

A restructuring (issue 12: layers, click, typed models) must leave what users wait for unchanged.
Each command runs as a user runs it, a fresh `python -m ci.cli` process, alternately from the
base revision (checked out into a temporary git worktree) and from this working tree, so both
see the same machine load; the table gives the median wall and CPU seconds of each and their
ratio.

    .venv/bin/python bench/bench_revisions.py --base e187fe7 [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from timing import mlops_process_seconds  # bench/timing.py: run as a script, bench/ is on the path

REPO = Path(__file__).resolve().parent.parent

COMMANDS = [
    ["--help"],
    ["train", "--help"],
    ["preview", "--stack", "prod", "--json"],
    ["audit", "--all", "--json"],
    ["cost", "--stack", "prod", "--json"],
]


def compare(base_tree: Path, repeat: int) -> list[dict[str, object]]:
    rows = []
    for argv in COMMANDS:
        samples: dict[str, list[tuple[float, float]]] = {"base": [], "head": []}
        mlops_process_seconds(argv, base_tree), mlops_process_seconds(argv, REPO)  # warm the page cache for both trees
        for _ in range(repeat):
            samples["base"].append(mlops_process_seconds(argv, base_tree))
            samples["head"].append(mlops_process_seconds(argv, REPO))
        row: dict[str, object] = {"command": "mlops " + " ".join(argv)}
        for side, values in samples.items():
            row[f"{side}_wall"] = statistics.median(v[0] for v in values)
            row[f"{side}_cpu"] = statistics.median(v[1] for v in values)
        row["cpu_ratio"] = float(row["head_cpu"]) / float(row["base_cpu"])  # type: ignore[arg-type]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare the working tree against")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command per side (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base_tree), args.base], cwd=REPO, check=True)
        try:
            rows = compare(base_tree, args.repeat)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    print(f"base {args.base} vs working tree, median of {args.repeat} fresh processes each, interleaved\n")
    print("| command | base wall s | base CPU s | head wall s | head CPU s | CPU head/base |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| `{r['command']}` | {r['base_wall']:.2f} | {r['base_cpu']:.2f} | {r['head_wall']:.2f} | "
            f"{r['head_cpu']:.2f} | {r['cpu_ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
