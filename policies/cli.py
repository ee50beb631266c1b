"""`mlops audit` and `mlops cost`: policy verdicts and cost estimates, offline, for people and CI.

Declared as click commands that `mlops` (ci/cli.py) adds; its one error path reports what they
raise. This module imports nothing of ci/ (policies see the records only)."""

from __future__ import annotations

import json
import math
import os
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from policies.cost import CostEstimate

PLACEHOLDER_PACKAGE = "arn:aws:sagemaker:{region}:123456789012:model-package/{model}-{stack}/1"


class _Date(click.ParamType[date, Any]):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date YYYY-MM-DD", param, ctx)


class _Amount(click.ParamType[float, Any]):
    """A finite number not below 0 (or above 0 with `positive`): NaN passes `< 0`; infinity prices nothing."""

    name = "N"

    def __init__(self, positive: bool):
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if number < 0:
            self.fail(f"{value!r} must not be negative", param, ctx)
        if self.positive and number <= 0:
            self.fail(f"{value!r} must be greater than 0", param, ctx)
        return number


@click.command(
    "audit",
    short_help="check stacks (offline preview) or an exported state against the policy rules",
    help="Runs every policy rule (policies/rules) over a stack's offline preview, over all stacks, or "
    "over a `pulumi stack export` file. Exit status 1 when a mandatory violation remains, "
    "2 on a usage error, 0 otherwise.",
)
@click.option(
    "--stack",
    metavar="NAME",
    help="audit this stack's offline preview (dev, staging, prod, local or a Pulumi.<stack>.yaml); "
    "with --state, the stack config to judge the state against",
)
@click.option("--all", "all_stacks", is_flag=True, help="audit every stack in stacks/")
@click.option(
    "--state",
    metavar="FILE",
    help="audit a `pulumi stack export` file (any provider version); without --stack only what the "
    "state itself shows is judged (no required tags, allowlist, budget or suppressions)",
)
@click.option("--format", "fmt", type=click.Choice(("table", "json", "sarif")), default="table", help="output format")
@click.option("--json", "as_json", is_flag=True, help="same as --format json")
@click.option("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
@click.option(
    "--policy-config",
    metavar="FILE",
    help="with --stack: also write a CrossGuard --policy-pack-config file for that stack",
)
@click.option("--today", type=_Date(), help="judge suppression expiry as of this date")
def audit(
    stack: str | None,
    all_stacks: bool,
    state: str | None,
    fmt: str,
    as_json: bool,
    output: str | None,
    policy_config: str | None,
    today: date | None,
) -> int:
    return run_audit(
        SimpleNamespace(
            stack=stack,
            all=all_stacks,
            state=state,
            format="json" if as_json else fmt,
            output=output,
            policy_config=policy_config,
            today=today,
        )
    )


@click.command(
    "cost",
    short_help="estimate a stack's monthly cost and the cost of one training run (spot vs on-demand)",
    help="Prices the resources a stack declares (offline preview) or a state file holds, from "
    "policies/prices.json, with the usage assumptions printed alongside. Give exactly one of --stack and --state.",
)
@click.option("--stack", metavar="NAME", help="stack to price (offline preview)")
@click.option("--state", metavar="FILE", help="a `pulumi stack export` file to price")
@click.option(
    "--assume-deployed",
    is_flag=True,
    help="price every model as deployed (a placeholder package where the stack has none)",
)
@click.option("--requests-per-month", type=_Amount(positive=True), help="serverless traffic assumption")
@click.option("--training-runs", type=_Amount(positive=False), help="training runs per month")
@click.option("--json", "as_json", is_flag=True, help="print the estimate as JSON")
def cost(
    stack: str | None,
    state: str | None,
    assume_deployed: bool,
    requests_per_month: float | None,
    training_runs: float | None,
    as_json: bool,
) -> int:
    if stack and state:
        raise click.UsageError("argument --state: not allowed with argument --stack")
    if not (stack or state):
        raise click.UsageError("one of the arguments --stack --state is required")
    return run_cost(
        SimpleNamespace(
            stack=stack,
            state=state,
            assume_deployed=assume_deployed,
            requests_per_month=requests_per_month,
            training_runs=training_runs,
            json=as_json,
        )
    )


COMMANDS = (audit, cost)


# --- audit -------------------------------------------------------------------------------


def run_audit(args: SimpleNamespace) -> int:
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


def run_cost(args: SimpleNamespace) -> int:
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


def format_cost(result: CostEstimate, budget: float | None) -> str:
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
