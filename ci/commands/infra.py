"""`mlops preview` and `mlops local up`: a stack without the Pulumi CLI.

preview runs the Pulumi program offline, shows what a stack declares and checks it against what
AWS accepts (infra.preflight) before `pulumi up` would send it; `local up` creates the stack's
core resources in the AWS emulator (the local backend).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import click

from ci.commands.framework import Group, Params, command, step
from ci.commands.options import json_option, stack_option, stack_options
from ci.progress import Progress


@command(
    "preview",
    "run the Pulumi program offline (Pulumi mocks) and list the resources a stack declares",
    "Runs infra/ for a stack under Pulumi's mocks: no CLI, no cloud account. "
    "Prints the resources grouped by component, or the whole graph with --json, then runs the AWS "
    "preflight (botocore's service models and the documented rules in docs/aws-rules.md) over the graph: "
    "exit 1 when AWS would refuse a request.",
)
@stack_option(help="stack name (dev, staging, prod, local) or a path to a Pulumi.<stack>.yaml file")
@json_option("print the resource graph and outputs as JSON", dest="as_json")
@click.option("--skip-preflight", is_flag=True, help="do not check the graph against AWS's rules (not advised)")
def preview(stack: str, as_json: bool, skip_preflight: bool) -> int:
    from infra.preview import preview_stack

    found = preview_stack(stack)  # a ConfigError is a ValueError: exit 2, one line (framework.classify)
    print(json.dumps(found.to_json(), indent=2, sort_keys=True) if as_json else format_table(found))
    if skip_preflight:
        return 0
    from infra.preflight import check_preview

    findings = check_preview(found)
    if findings:
        print(f"error: stack '{found.stack}': AWS would refuse {len(findings)} request(s):", file=sys.stderr)
        for finding in findings:
            print(f"  - {finding.message}", file=sys.stderr)
        return 1
    return 0


def format_table(preview: Any) -> str:
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


@click.group(
    "local",
    cls=Group,
    short_help="the local backend: provision a stack in the AWS emulator (no Pulumi CLI, no account)",
    help="`mlops local up --stack local` creates the stack's core resources in the emulator at AWS_ENDPOINT_URL "
    "with the names the offline preview gives, deploys approved packages to endpoints, and records the outputs.",
    no_args_is_help=False,
    subcommand_metavar="ACTION",
)
def local() -> None:
    pass


@command(
    "up",
    "create or update the stack's resources in the emulator",
    "Idempotent: run it again after `mlops promote` to roll out.",
)
@stack_options()
@step
def local_up(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.emulator.pulumi_up import provision

    raw = provision(args.stack, args.stacks_dir, progress)
    return {"outputs": raw}, (
        f"stack {args.stack} provisioned in the emulator; endpoints: "
        f"{', '.join(f'{m}={e}' for m, e in raw['endpoints'].items()) or 'none'}"
    )


local.add_command(local_up)
COMMANDS = (preview, local)
