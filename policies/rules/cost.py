"""Cost guardrails: a budget per environment, an estimate within it, no idle GPUs in dev."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kernel.aws_model import UNKNOWN
from policies.context import PolicyContext
from policies.graph import StackGraph, listify, number
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily, say
from policies.sagemaker_graph import ENDPOINT_CONFIG, is_accelerated, is_serverless, variants

COST = RuleFamily("cost")

BUDGET = "aws:budgets/budget:Budget"
BILLED_ENVIRONMENTS = ("dev", "staging", "prod")  # local runs against an emulator and costs nothing


def _declared_budget(graph: StackGraph) -> float | None:
    for b in graph.of_type(BUDGET):
        if str(b.props.get("budgetType", "COST")).upper() == "COST":
            amount = number(b.props.get("limitAmount"))
            if amount:
                return amount
    return None


@COST.stack("cost-budget-exists", severity="high", environments=BILLED_ENVIRONMENTS)
def cost_budget_exists(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Every environment has a monthly cost budget that notifies someone.

    Why: GPU training and always-on endpoints can spend a month's budget in a weekend; an AWS Budget with notifications
    is the only alert that fires on spend itself.

    Fix: declare aws.budgets.Budget(budget_type='COST', time_unit='MONTHLY', limit_amount=monitoring.monthlyBudgetUsd)
    with ACTUAL and FORECASTED notifications to the alert topic or e-mail.
    """
    budgets = [b for b in graph.of_type(BUDGET) if str(b.props.get("budgetType", "COST")).upper() == "COST"]
    if not budgets:
        return [
            (
                graph.stack,
                f"{graph.stack.label if graph.stack else 'stack'}: no cost budget for environment "
                f"{ctx.environment}. Fix: declare aws.budgets.Budget with budget_type 'COST' and notifications",
            )
        ]
    out = Collected()
    for b in budgets:
        notifications = [n for n in listify(b.props.get("notifications")) if isinstance(n, Mapping)]
        notified = [
            n
            for n in notifications
            if listify(n.get("subscriberEmailAddresses")) or listify(n.get("subscriberSnsTopicArns"))
        ]
        if b.props.get("notifications") is UNKNOWN:
            continue
        if not notified:
            out.flag(
                b,
                "budget notifies nobody",
                "add notifications with subscriber_sns_topic_arns or subscriber_email_addresses",
            )
        amount = number(b.props.get("limitAmount"))
        if b.props.get("limitAmount") is not UNKNOWN and (amount is None or amount <= 0):
            out.flag(b, "budget has no positive limit", "set limit_amount to monitoring.monthlyBudgetUsd")
    return out.items


@COST.stack("cost-within-budget", severity="high", environments=BILLED_ENVIRONMENTS)
def cost_within_budget(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """The stack's estimated monthly cost stays within its budget.

    Why: The estimate (policies/cost.py: endpoint instances at their autoscaling minimum, serverless traffic, storage,
    keys, alarms, logs, and training runs) catches a change that cannot fit the budget before it is deployed, rather
    than in next month's bill.

    Fix: lower the instance type or count, use serverless where idle, train on spot, or raise
    monitoring.monthlyBudgetUsd with the owner's approval.
    """
    from policies.cost import CostError, estimate

    budget = ctx.monthly_budget_usd if ctx.monthly_budget_usd is not None else _declared_budget(graph)
    if budget is None:
        return []
    label = graph.stack.label if graph.stack else "stack"
    try:
        result = estimate(graph, ctx)
    except CostError as err:
        return [
            (
                graph.stack,
                f"{label}: cannot estimate the monthly cost: {err}. Fix: add the price to "
                "policies/prices.json or use a priced type",
            )
        ]
    if result.monthly_total > budget:
        parts = ", ".join(f"{k} ${v:,.0f}" for k, v in sorted(result.by_component().items(), key=lambda kv: -kv[1])[:3])
        return [
            (
                graph.stack,
                f"{label}: estimated ${result.monthly_total:,.0f}/month exceeds the ${budget:,.0f} "
                f"budget (largest: {parts}). Fix: shrink the endpoint or training, or raise "
                "monitoring.monthlyBudgetUsd",
            )
        ]
    return []


@COST.resource("cost-no-always-on-gpu-in-dev", severity="high", types=(ENDPOINT_CONFIG,), environments=("dev",))
def cost_no_always_on_gpu_in_dev(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Dev has no always-on (instance-backed) GPU endpoint.

    Why: A g5.xlarge endpoint bills ~$1,000 a month whether or not anyone calls it; dev endpoints serve a handful of
    test requests and belong on serverless, which costs nothing idle.

    Fix: use serving.mode: serverless in the dev stack (or a CPU instance if a GPU is not needed).
    """
    for v in variants(resource):
        itype = v.get("instanceType")
        if not is_serverless(v) and isinstance(itype, str) and is_accelerated(itype):
            yield say(
                resource,
                f"variant {v.get('variantName', '?')} keeps {itype} GPU instance(s) running in dev",
                "serve dev from a serverless variant",
            )
