"""`mlops preview`: run the Pulumi program offline, show what a stack declares, and check it against
what AWS accepts (infra.preflight) before `pulumi up` would send it."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview",
        help="run the Pulumi program offline (Pulumi mocks) and list the resources a stack declares",
        description="Runs infra/ for a stack under Pulumi's mocks: no CLI, no cloud account. "
        "Prints the resources grouped by component, or the whole graph with --json, then runs the AWS "
        "preflight (botocore's service models and the documented rules in docs/aws-rules.md) over the graph: "
        "exit 1 when AWS would refuse a request.",
    )
    p.add_argument(
        "--stack", required=True, help="stack name (dev, staging, prod, local) or a path to a Pulumi.<stack>.yaml file"
    )
    p.add_argument("--json", action="store_true", help="print the resource graph and outputs as JSON")
    p.add_argument(
        "--skip-preflight", action="store_true", help="do not check the graph against AWS's rules (not advised)"
    )
    p.set_defaults(handler=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    from infra.preview import preview_stack

    preview = preview_stack(args.stack)  # a ConfigError is reported by ci/cli.py: exit 2, one line
    if args.json:
        print(json.dumps(preview.to_json(), indent=2, sort_keys=True))
    else:
        print(format_table(preview))
    if args.skip_preflight:
        return 0
    from infra.preflight import check_preview

    findings = check_preview(preview)
    if findings:
        print(f"error: stack '{preview.stack}': AWS would refuse {len(findings)} request(s):", file=sys.stderr)
        for finding in findings:
            print(f"  - {finding.message}", file=sys.stderr)
        return 1
    return 0


def format_table(preview) -> str:
    """Resources grouped under the component that owns them."""
    by_urn = {r["urn"]: r for r in preview.resources}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in preview.resources:
        if not r["custom"]:
            continue
        owner = by_urn.get(r["parent"])
        groups[
            owner["name"] + " (" + owner["type"] + ")" if owner and owner["type"] != "pulumi:pulumi:Stack" else "stack"
        ].append(r)
    lines = [f"stack {preview.stack}: {sum(len(v) for v in groups.values())} resources in {len(groups)} components", ""]
    for component in sorted(groups):
        lines.append(component)
        for r in sorted(groups[component], key=lambda r: (r["type"], r["name"])):
            lines.append(f"  {r['type']:<72} {r['name']}")
        lines.append("")
    lines.append("outputs:")
    for key, value in preview.outputs.items():
        shown = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f"  {key:<20} {shown if len(shown) < 100 else shown[:97] + '...'}")
    return "\n".join(lines)
