"""`mlops promote` and `mlops rollback`: deployment is a reviewed edit of a stack file.

Promotion checks the package (it exists, is Approved, passed the gate, belongs to a model the
environment serves, and is live in the environment the target requires, e.g. staging before
prod, as that environment's endpoint itself says through `ci.steps.verify`), then copies the model into
the target environment's own write-once prefix and registry (ci/steps/promotion_copy.py: its digests
checked first) and writes the ARN of the target's own package into
`mlops:approvedPackages.<model>` of `stacks/Pulumi.<env>.yaml` and appends the one it replaces
to `mlops:previousPackages.<model>`. `pulumi up` (or the local backend) rolls it out with the
stack's canary and rollback alarms. Every check runs before the file is touched: a refused
promotion leaves it byte for byte as it was. Rollback restores the newest earlier package the
same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci.aws import registry, stackfile
from ci.aws.outputs import resolve_outputs, stack_file
from ci.errors import NotFoundError, RefusedError, UsageError
from ci.progress import QUIET, Progress
from ci.steps.promotion_copy import copy_to_target
from kernel.paths import stack_name


def validate_with_infra(path: Path):
    """A validator for `stackfile.write_keys`: the new text must pass kernel/stack_config.py's checks."""
    import yaml

    from kernel.stack_config import ConfigError, parse_config

    def _validate(text: str) -> None:
        raw = (yaml.safe_load(text) or {}).get("config") or {}
        try:
            parse_config(stack_name(str(path)), raw)
        except ConfigError as err:
            raise RefusedError(f"the edited {path.name} would not validate, so it was not written: {err}") from err

    return _validate


def check_promotable(sm, package_arn: str, model: str | None) -> registry.Package:
    try:
        package = registry.describe(sm, package_arn)
    except NotFoundError as err:
        raise RefusedError(f"cannot promote {package_arn}: it does not exist in the registry") from err
    if package.status == registry.REJECTED:
        who = package.metadata.get(registry.K_REJECTED_BY, "someone")
        why = package.metadata.get(registry.K_REJECTION_REASON, package.approval_description)
        raise RefusedError(f"cannot promote {package_arn}: it was Rejected by {who} ({why})")
    if package.status != registry.APPROVED:
        raise RefusedError(
            f"cannot promote {package_arn}: it is {package.status}, not Approved; "
            f"approve it first with `mlops approve {package_arn} --reason '...'`"
        )
    if package.gate != "passed":
        detail = package.metadata.get(registry.K_FORCE_REASON) or package.metadata.get(registry.K_GATE_REASON, "")
        raise RefusedError(
            f"cannot promote {package_arn}: its gate is {package.gate or 'unknown'}, not passed"
            + (f" ({detail})" if detail else "")
        )
    if model and package.model and package.model != model:
        raise RefusedError(f"cannot promote {package_arn} as model {model!r}: it is a {package.model!r} package")
    return package


def was_live_in(
    env: str, model: str, package: registry.Package, *, stacks_dir: Path | None, outputs_source: str
) -> bool:
    """Whether `env`'s endpoint for `model` serves the package now, as SageMaker says (ci/steps/verify.py):
    the package itself, or `env`'s own promoted copy of it (same training job, same model digest).

    The stack file and outputs only say what was declared: a rolled-back deployment leaves them
    naming a package the endpoint never ran, so they are not evidence that it was live.
    """
    from ci.aws import clients as aws
    from ci.steps.verify import serves

    outputs = resolve_outputs(env, stacks_dir=stacks_dir, source=outputs_source).outputs
    session = aws.make_session(outputs.region)
    arn, group = package.arn, outputs.modelPackageGroups.get(model)
    if group and group != package.group:
        copy = registry.find_by_training_job(session.client("sagemaker"), group, package.training_job)
        if copy is not None and copy.metadata.get(registry.K_MODEL_SHA) == package.metadata.get(registry.K_MODEL_SHA):
            arn = copy.arn
    return serves(session, outputs, model, arn)


def promote(
    session,
    package_arn: str,
    target: str,
    *,
    model: str | None = None,
    stacks_dir: Path | None = None,
    outputs_source: str = "auto",
    progress: Progress = QUIET,
) -> dict[str, Any]:
    registry.check_package_arn(package_arn)
    path = stack_file(target, stacks_dir)
    from kernel.stack_config import load_stack_config

    config = load_stack_config(path)
    env = config.environment
    progress.step(f"checking {package_arn} for promotion to {stack_name(target)}")
    package = check_promotable(session.client("sagemaker"), package_arn, model)
    model = model or package.model
    if not model:
        raise UsageError(f"{package_arn} records no model name; pass --model")
    models = config.models
    if model not in models:
        raise RefusedError(
            f"cannot promote to {stack_name(target)}: it does not serve model {model!r} "
            f"(mlops:models: {', '.join(models)})"
        )
    require = config.promotion["requireLiveIn"]
    if require:
        if not was_live_in(require, model, package, stacks_dir=stacks_dir, outputs_source=outputs_source):
            raise RefusedError(
                f"cannot promote {package_arn} to {env}: the {require} endpoint for {model} does not serve it "
                f"(mlops:promotion.requireLiveIn, read with DescribeEndpoint); promote it to {require}, deploy, "
                f"and check with `mlops verify --stack {require}` first"
            )
        progress.info(f"was live in {require}: yes")
    # Every gate has passed: the model moves into the target's own bucket and registry (write-once).
    target_outputs = resolve_outputs(target, stacks_dir=stacks_dir, source=outputs_source).outputs
    own = copy_to_target(session, package, target_outputs, model, progress)
    package_arn = own.arn
    plan = stackfile.plan_promotion(path, model, package_arn)
    result = {
        "package": own.to_dict(),
        "promotedFrom": package.arn,
        "stack": stack_name(target),
        "model": model,
        "stackFile": str(path),
        "replaced": plan["replaced"],
        "changed": plan["replaced"] != package_arn,
    }
    if not result["changed"]:
        progress.step(
            f"{package_arn} is already the approved package of {model} in {stack_name(target)}; nothing changed"
        )
        return result
    stackfile.write_keys(
        path,
        {stackfile.APPROVED_KEY: plan[stackfile.APPROVED_KEY], stackfile.PREVIOUS_KEY: plan[stackfile.PREVIOUS_KEY]},
        validate=validate_with_infra(path),
    )
    progress.step(
        f"wrote {model} -> {package_arn} into {path.name}" + (f" (was {plan['replaced']})" if plan["replaced"] else "")
    )
    progress.info(
        f"roll it out: open a pull request with this change; on merge CI runs `pulumi up --stack {stack_name(target)}`"
    )
    return result


def rollback(
    session, target: str, model: str, *, stacks_dir: Path | None = None, progress: Progress = QUIET
) -> dict[str, Any]:
    """Restore the newest earlier package through promotion's gates: it must still exist, be
    Approved, have passed its gate and be this model's. A rollback to the package that is live
    already is refused (the history repeats it). Every refusal leaves the stack file byte for byte.

    requireLiveIn is not asked again: the package was live in this very environment before."""
    path = stack_file(target, stacks_dir)
    from kernel.stack_config import load_stack_config

    if model not in load_stack_config(path).models:
        raise UsageError(f"stack {stack_name(target)} does not serve model {model!r}")
    try:
        plan = stackfile.plan_rollback(path, model)
    except stackfile.StackFileError as err:
        raise RefusedError(str(err)) from err
    restored = plan["restored"]
    if restored == plan["replaced"]:
        raise RefusedError(
            f"cannot roll back {model} in {stack_name(target)} to {restored}: it is the package live now "
            f"(the newest entry of {stackfile.PREVIOUS_KEY}.{model} repeats {stackfile.APPROVED_KEY}.{model}); "
            f"remove it from {stackfile.PREVIOUS_KEY} in {path.name} to roll back further"
        )
    sm = session.client("sagemaker")
    try:
        package = registry.describe(sm, restored)
    except NotFoundError as err:
        raise RefusedError(f"cannot roll back to {restored}: it no longer exists in the registry") from err
    if package.status != registry.APPROVED:
        why = ""
        if package.status == registry.REJECTED:
            who = package.metadata.get(registry.K_REJECTED_BY, "someone")
            why = f" (by {who}: {package.metadata.get(registry.K_REJECTION_REASON, package.approval_description)})"
        raise RefusedError(f"cannot roll back to {restored}: it is {package.status} now, not Approved{why}")
    try:
        package = check_promotable(sm, restored, model)
    except RefusedError as err:
        raise RefusedError(
            str(err).replace(f"cannot promote {restored}", f"cannot roll back to {restored}", 1)
        ) from err
    stackfile.write_keys(
        path,
        {stackfile.APPROVED_KEY: plan[stackfile.APPROVED_KEY], stackfile.PREVIOUS_KEY: plan[stackfile.PREVIOUS_KEY]},
        validate=validate_with_infra(path),
    )
    progress.step(f"rolled {model} in {stack_name(target)} back to {restored} (from {plan['replaced'] or 'nothing'})")
    return {
        "stack": stack_name(target),
        "model": model,
        "restored": restored,
        "replaced": plan["replaced"],
        "stackFile": str(path),
        "package": package.to_dict(),
    }
