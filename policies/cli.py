"""`mlops audit` and `mlops cost`: policy verdicts and cost estimates, offline, for people and CI."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

PLACEHOLDER_PACKAGE = "arn:aws:sagemaker:{region}:123456789012:model-package/{model}-{stack}/1"


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "audit",
        help="check stacks (offline preview) or an exported state against the policy rules",
        description="Runs every policy rule (policies/rules) over a stack's offline preview, over all stacks, or "
        "over a `pulumi stack export` file. Exit status 1 when a mandatory violation remains, "
        "2 on a usage error, 0 otherwise.",
    )
    a.add_argument(
        "--stack",
        metavar="NAME",
        help="audit this stack's offline preview (dev, staging, prod, local or a Pulumi.<stack>.yaml); "
        "with --state, the stack config to judge the state against",
    )
    a.add_argument("--all", action="store_true", help="audit every stack in stacks/")
    a.add_argument(
        "--state",
        metavar="FILE",
        help="audit a `pulumi stack export` file (any provider version); without --stack only what the "
        "state itself shows is judged (no required tags, allowlist, budget or suppressions)",
    )
    a.add_argument("--format", choices=("table", "json", "sarif"), default="table", help="output format")
    a.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")
    a.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    a.add_argument(
        "--policy-config",
        metavar="FILE",
        help="with --stack: also write a CrossGuard --policy-pack-config file for that stack",
    )
    a.add_argument("--today", metavar="YYYY-MM-DD", type=_date, help="judge suppression expiry as of this date")
    a.set_defaults(handler=run_audit)

    c = sub.add_parser(
        "cost",
        help="estimate a stack's monthly cost and the cost of one training run (spot vs on-demand)",
        description="Prices the resources a stack declares (offline preview) or a state file holds, from "
        "policies/prices.json, with the usage assumptions printed alongside.",
    )
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--stack", metavar="NAME", help="stack to price (offline preview)")
    src.add_argument("--state", metavar="FILE", help="a `pulumi stack export` file to price")
    c.add_argument(
        "--assume-deployed",
        action="store_true",
        help="price every model as deployed (a placeholder package where the stack has none)",
    )
    c.add_argument("--requests-per-month", type=_positive, metavar="N", help="serverless traffic assumption")
    c.add_argument("--training-runs", type=_non_negative, metavar="N", help="training runs per month")
    c.add_argument("--json", action="store_true", help="print the estimate as JSON")
    c.set_defaults(handler=run_cost)


# --- audit -------------------------------------------------------------------------------


def run_audit(args: argparse.Namespace) -> int:
    from policies.audit import (
        AuditError,
        audit,
        audit_all,
        combined_json,
        format_table,
        preflight,
        stack_context,
        target_from_stack,
        target_from_state,
    )

    if args.all and (args.stack or args.state):
        return _usage("--all audits every stack; do not combine it with --stack or --state")
    if not (args.all or args.stack or args.state):
        return _usage("say what to audit: --stack NAME, --all, or --state FILE [--stack NAME]")
    if args.policy_config and not args.stack:
        return _usage("--policy-config needs --stack NAME")
    try:
        if args.all:
            results = audit_all(today=args.today, progress=_progress)
        elif args.state:
            _progress(f"reading state {args.state}")
            target = target_from_state(args.state, stack=args.stack, today=args.today)
            results = [(target, audit(target))]
        else:
            _progress(f"previewing stack {args.stack}")
            target = target_from_stack(args.stack, today=args.today)
            results = [(target, audit(target))]
    except AuditError:
        raise  # bad input: `mlops` (ci/cli.py) reports it the one way, exit 2, the same --json document

    if args.policy_config:
        from policies.crossguard import pack_config

        ctx = stack_context(args.stack, today=args.today)
        Path(args.policy_config).write_text(json.dumps(pack_config(ctx), indent=2, sort_keys=True) + "\n")
        _progress(f"wrote CrossGuard policy config for {args.stack} to {args.policy_config}")

    if args.format == "json":
        text = json.dumps(combined_json(results), indent=2, sort_keys=True)
    elif args.format == "sarif":
        from policies.sarif import to_sarif

        text = json.dumps(to_sarif(results), indent=2)
    else:
        text = "\n\n".join(format_table(t, r) for t, r in results)
    _emit(text, args.output)
    refused = [(target.name, message) for target, _ in results for message in preflight(target)]
    for stack, message in refused:
        print(f"error: stack '{stack}': AWS preflight: {message}", file=sys.stderr)
    return 1 if refused or any(r.exit_code for _, r in results) else 0


# --- cost --------------------------------------------------------------------------------


def run_cost(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from policies.audit import AuditError, target_from_stack, target_from_state
    from policies.cost import CostError, estimate
    from policies.graph import StackGraph

    try:
        if args.state:
            _progress(f"reading state {args.state}")
            target = target_from_state(args.state)
        else:
            overrides = _deployed_overrides(args.stack) if args.assume_deployed else None
            _progress(f"previewing stack {args.stack}")
            target = target_from_stack(args.stack, config_overrides=overrides)
        assumptions = target.context.cost
        if args.requests_per_month is not None:
            assumptions = replace(assumptions, serverless_requests_per_month=args.requests_per_month)
        if args.training_runs is not None:
            assumptions = replace(assumptions, training_runs_per_month=args.training_runs)
        ctx = replace(target.context, cost=assumptions)
        result = estimate(StackGraph(target.records), ctx)
    except (AuditError, CostError):
        raise  # bad input: reported by ci/cli.py, exit 2
    budget = ctx.monthly_budget_usd
    if args.json:
        doc = result.to_json()
        doc["budgetUsd"] = budget
        doc["withinBudget"] = None if budget is None else result.monthly_total <= budget
        _emit(json.dumps(doc, indent=2, sort_keys=True), None)
    else:
        _emit(format_cost(result, budget), None)
    return 0


def _deployed_overrides(stack: str) -> dict[str, Any]:
    from kernel.stack_config import ConfigError, load_stack_config
    from policies.audit import AuditError

    try:
        config = load_stack_config(stack)
    except ConfigError as err:
        raise AuditError(str(err)) from None
    packages = {
        m: arn or PLACEHOLDER_PACKAGE.format(region=config.region, model=m, stack=config.stack)
        for m, arn in config.approvedPackages.items()
    }
    return {"mlops:approvedPackages": packages}


def format_cost(result, budget: float | None) -> str:
    lines = [
        f"stack {result.stack} ({result.region}): ${result.monthly_total:,.2f}/month"
        + (f" of a ${budget:,.2f} budget ({result.monthly_total / budget:.0%})" if budget else ""),
        "",
    ]
    lines.append(f"  {'component':<11} {'resource':<34} {'monthly USD':>12}  basis")
    for i in sorted(result.items, key=lambda i: -i.monthly_usd):
        lines.append(f"  {i.component:<11} {i.resource[:34]:<34} {i.monthly_usd:>12,.2f}  {i.description}")
    if result.training:
        t = result.training
        lines.append(
            f"  {'training':<11} {'(' + str(result.training_runs_per_month) + ' runs/month)':<34} "
            f"{result.training_monthly:>12,.2f}  {'spot' if t.use_spot else 'on-demand'} runs of {t.instance_type}"
        )
        lines += [
            "",
            f"  one training run on {t.instance_count} x {t.instance_type}, at most {t.max_hours:g} h: "
            f"on-demand ${t.on_demand_usd:,.2f}, spot ${t.spot_usd:,.2f} "
            f"(assumed {t.spot_savings_fraction:.0%} spot saving); this stack trains "
            f"{'on spot' if t.use_spot else 'on-demand'}",
        ]
    lines += [
        "",
        "  by component: "
        + ", ".join(f"{k} ${v:,.2f}" for k, v in sorted(result.by_component().items(), key=lambda kv: -kv[1])),
    ]
    lines.append(f"  prices: {result.prices_source} (as of {result.prices_as_of})")
    lines.append("  assumptions: " + ", ".join(f"{k}={v}" for k, v in result.assumptions.to_json().items()))
    lines += [f"  note: {n}" for n in result.notes]
    return "\n".join(lines)


# --- helpers -----------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def _usage(message: str) -> int:
    raise ValueError(message)  # reported by ci/cli.py: one line, exit 2, the --json error document


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text + "\n")
        _progress(f"wrote {output}")
    else:
        try:
            print(text)
            sys.stdout.flush()
        except BrokenPipeError:  # `mlops audit ... | head`: the reader left; not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD") from None


def _positive(value: str) -> float:
    number = _non_negative(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
    return number


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number):  # NaN passes `< 0`; infinity prices nothing
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must not be negative")
    return number
