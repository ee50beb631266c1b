"""The lifecycle subcommands of `mlops`: train, tune, image, evaluate, register, approve, reject, promote,
verify, rollback, packages, monitor, reproduce, local, demo.

Each handler parses flags into a call of `ci.steps.pipeline` (or a sibling module), prints progress
on stderr, a human summary or one JSON document on stdout, and returns the exit code of the
error class when something fails (see ci/errors.py). CI runs exactly these commands.
"""

from __future__ import annotations

import argparse
import functools
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ci import argtypes
from ci.aws.outputs import SOURCES
from ci.errors import MlopsError, UsageError
from ci.jsonable import dumps
from ci.progress import Progress

EXIT_CODES = """exit codes: 0 ok, 1 failed, 2 bad input or unknown stack, 3 AWS access (credentials, emulator,
throttling), 4 refused by a gate (nothing changed), 5 training job failed or stopped, 6 not found"""


class GateFailed(MlopsError):
    """`mlops evaluate` ran and the candidate lost: the report is written, the exit code says no."""

    exit_code = 4


class ReproduceMismatch(MlopsError):
    exit_code = 1


# --- shared plumbing -----------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, stack: bool = True, stack_required: bool = True) -> None:
    if stack:
        parser.add_argument("--stack", required=stack_required, help="stack name (dev, staging, prod, local)")
    parser.add_argument(
        "--stacks-dir",
        type=Path,
        default=None,
        help="folder with the Pulumi.<stack>.yaml files (default: ./stacks of this repository, or $MLOPS_STACKS_DIR)",
    )
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        default=None,
        help="stack outputs from `pulumi stack output --json` (a file, or - for stdin)",
    )
    parser.add_argument(
        "--outputs-from",
        choices=SOURCES,
        default="auto",
        help="where stack outputs come from "
        "(default auto: --outputs, the Pulumi CLI, the local backend, the offline preview)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout (progress stays on stderr)"
    )


def _add(sub, name: str, help_: str, description: str, handler: Callable, **kwargs) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help_,
        description=textwrap.fill(description, 100),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.set_defaults(handler=handler)
    return parser


def command(
    fn: Callable[[argparse.Namespace, Progress], tuple[dict[str, Any], str]],
) -> Callable[[argparse.Namespace], int]:
    """Run a step: translate errors into one line and an exit code; print JSON or the summary."""

    @functools.wraps(fn)
    def handler(args: argparse.Namespace) -> int:
        from ci.aws.clients import aws_errors
        from ci.cli import report

        progress = Progress(enabled=True)
        try:
            with aws_errors():
                result, summary = fn(args, progress)
        except Exception as err:
            if getattr(args, "debug", False):
                raise  # `mlops --debug`: the traceback, through ci.cli.main
            return report(err, bool(getattr(args, "json", False)))
        if getattr(args, "json", False):
            print(dumps({"ok": True, **result}))
        else:
            print(summary)
        return 0

    return handler


def _context(args: argparse.Namespace, progress: Progress, stack: str | None = None):
    from ci.steps.pipeline import open_context

    return open_context(
        stack or args.stack,
        stacks_dir=args.stacks_dir,
        outputs_file=args.outputs,
        outputs_from=args.outputs_from,
        progress=progress,
    )


def _key_values(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--hp {pair!r}: expected KEY=VALUE, e.g. --hp epochs=5")
        out[key.strip()] = value.strip()
    if out:  # refuse what ml/train.py would refuse, before a job is launched (and paid for)
        from ml.hyperparameters import HyperparameterError, parse_hyperparameters

        try:
            parse_hyperparameters(out)
        except HyperparameterError as err:
            raise UsageError(f"--hp: {' '.join(str(err).split())}") from None
    return out


def _who(args: argparse.Namespace) -> str:
    return args.by or os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or "unknown"


# --- handlers ------------------------------------------------------------------------------


def _train_request(args, **specific):
    """The request `train` and `tune` share, from their common options."""
    from ci.steps.pipeline import TrainRequest

    return TrainRequest(
        model=args.model,
        data_dir=args.data,
        data_uri=args.data_uri,
        synthetic_rows=args.synthetic,
        latest_data=args.latest_data,
        instance_type=args.instance_type,
        hyperparameters=_key_values(args.hp),
        seed=args.seed,
        local=args.local,
        training_image=args.training_image,
        dry_run=args.dry_run,
        instance_count=args.instance_count,
        **specific,
    )


@command
def run_train(args, progress):
    from ci.steps.pipeline import train

    ctx = _context(args, progress)
    req = _train_request(
        args, synthetic_drift=args.synthetic_drift, wait=not args.no_wait, poll_seconds=args.poll_seconds
    )
    run = train(ctx, req)
    if args.dry_run:
        return _dry_run_result(run)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.get("metrics", {}).items()))
    summary = (
        f"training job {run['job']}: {run['status']}\n  model   {run['modelDataUrl']}\n"
        f"  data    {run['dataset']['uri']} (sha256 {run['dataset']['sha256'][:16]}...)\n"
        f"  image   {run['pinnedImage']}\n  metrics {metrics or '(none yet)'}\n"
        f"next: mlops evaluate --stack {ctx.stack} --job {run['job']}"
    )
    return {"run": run}, summary


def _dry_run_result(result: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The request, readable; AWS's objections to it make the command fail (nothing was sent anyway)."""
    import json

    if result["problems"]:
        raise UsageError(
            "dry run: AWS would refuse this CreateTrainingJob request: " + "; ".join(result["problems"]),
            details=result,
        )
    uploads = [f"  {u['from']} -> {u['to']}" for u in result["dataUploads"]]
    summary = [
        "dry run: nothing was sent to AWS and nothing was uploaded.",
        "CreateTrainingJob request (as boto3 takes it):",
        json.dumps(result["request"], indent=2, sort_keys=True, default=str),
        f"would upload {len(result['codeUploads'])} code file(s) (ml/ and the SDK's drivers) under "
        f"{_common_prefix(result['codeUploads'])}",
    ]
    if uploads:
        summary += [f"would upload {len(uploads)} data file(s):", *uploads]
    return result, "\n".join(summary)


def _common_prefix(uris: list[str]) -> str:
    """The job's staging prefix (`.../<job>/input/`) the SDK uploads code and drivers under."""
    prefixes = sorted({uri.rsplit("/input/", 1)[0] + "/input/" for uri in uris})
    return ", ".join(prefixes) or "(none)"


# --- tune (ci/steps/tune.py) ---------------------------------------------------------------------
@command
def run_tune(args, progress):
    from ci.steps.tune import tune

    ctx = _context(args, progress)
    req = _train_request(args)
    result = tune(ctx, req, max_jobs=args.max_jobs, max_parallel_jobs=args.max_parallel_jobs)
    if args.dry_run:
        import json

        if result["problems"]:
            raise UsageError(
                "dry run: AWS would refuse this CreateHyperParameterTuningJob request: "
                + "; ".join(result["problems"]),
                details=result,
            )
        text = "dry run: nothing was sent to AWS.\nCreateHyperParameterTuningJob request (as boto3 takes it):\n"
        return result, text + json.dumps(result["request"], indent=2, sort_keys=True, default=str)
    search = result["tuning"]
    if "run" not in result:
        return result, f"tuning job {search['tuningJob']} created; follow it in SageMaker's console or describe it"
    return result, (
        f"tuning {search['tuningJob']}: {len(search['trials'])} trials, {search['objective']['metric']} "
        f"(defaults {search['defaultsObjective']}, best {search['bestObjective']})\n"
        f"best training job {search['bestJob']}\nnext: mlops evaluate --stack {ctx.stack} --job {search['bestJob']}"
    )


def _register_tune(sub: argparse._SubParsersAction) -> None:
    p = _add(
        sub,
        "tune",
        "search hyperparameters: SageMaker automatic model tuning (or a few local trials)",
        "Plans like `mlops train` (the stack's image by digest, spot, checkpoints, KMS, VPC, the same metric "
        "definitions) and starts a SageMaker hyperparameter tuning job through the sagemaker SDK's "
        "HyperparameterTuner: Bayesian search, early stopping, the stack's gate metric as objective, every "
        "allowed GPU type as an instance config. --dry-run prints the exact CreateHyperParameterTuningJob "
        "request and sends nothing; --local runs --max-jobs trials of the local runner, the first with the "
        "defaults, and records the search on the best run, which `mlops evaluate` and `register` take.",
        run_tune,
    )
    _common(p)
    p.add_argument("--model", help="model name (default: the stack's only model)")
    data = p.add_argument_group("data (exactly one)")
    data.add_argument("--data", type=Path, help="local folder with train/ validation/ test/")
    data.add_argument("--data-uri", help="an S3 prefix holding train/ validation/ test/")
    data.add_argument("--synthetic", type=int, metavar="ROWS", help="generate ROWS synthetic rows")
    data.add_argument("--latest-data", action="store_true", help="the newest data set version uploaded for the model")
    p.add_argument("--instance-type", help="the first GPU type tried (default: the stack's defaultInstanceType)")
    p.add_argument("--instance-count", type=int, default=1, help="hosts per trial (default 1)")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="fixed hyperparameter (repeatable)")
    p.add_argument("--seed", type=int, default=42, help="seed of training and of the search (default 42)")
    p.add_argument("--max-jobs", type=int, default=10, help="trials in all (default 10; local: keep it small)")
    p.add_argument("--max-parallel-jobs", type=int, default=2, help="trials at once on SageMaker (default 2)")
    p.add_argument("--local", action="store_true", help="run the trials here with the local runner")
    p.add_argument("--dry-run", action="store_true", help="print the CreateHyperParameterTuningJob request only")
    p.add_argument("--image", "--training-image", dest="training_image", help="train in this image instead")


@command
def run_image(args, progress):
    from ci.steps.image import build_and_push, serving_variant

    ctx = _context(args, progress)
    result = build_and_push(
        ctx.session,
        ctx.outputs,
        tag=args.tag,
        push=not args.no_push,
        docker=args.docker,
        progress=progress,
        variant=serving_variant(ctx.config),
    )
    training = result["training"]
    return result, (
        f"serving  {result['image']} ({result['variant']}) {result['digest'] or '(built, not pushed)'}\n"
        f"training {training['image']} (cuda) {training['digest'] or '(built, not pushed)'}"
    )


@command
def run_evaluate(args, progress):
    from ci.steps.pipeline import evaluate

    ctx = _context(args, progress)
    report = evaluate(ctx, args.job)
    gate = report["gate"]
    if not gate["passed"]:
        raise GateFailed(
            f"gate failed for {args.job}: {gate['reason']} (report: {report['reportUri']})", details={"report": report}
        )
    return {"report": report}, (
        f"gate passed for {args.job}: {gate['reason']}\n  report {report['reportUri']}\n"
        f"next: mlops register --stack {ctx.stack} --job {args.job}"
    )


@command
def run_register(args, progress):
    from ci.steps.pipeline import register
    from ci.steps.register import require_reason

    reason = require_reason(args.force, args.reason)
    ctx = _context(args, progress)
    result = register(ctx, args.job, inference_image=args.inference_image, force_reason=reason)
    pkg = result["package"]
    verb = "registered" if result["created"] else "already registered"
    return result, (
        f"{verb} {pkg['arn']} ({pkg['status']}, gate {pkg['gate']})\nnext: mlops approve {pkg['arn']} --reason '...'"
    )


def _status_handler(status: str):
    @command
    def run(args, progress):
        from ci.aws import clients as aws
        from ci.aws import registry

        region = _region_of(args.package)
        session = aws.make_session(region)
        package = registry.set_status(
            session.client("sagemaker"), args.package, status, by=_who(args), reason=args.reason
        )
        progress.step(f"{package.arn} is {package.status}: {package.approval_description}")
        nxt = f"\nnext: mlops promote {package.arn} --to dev" if status == registry.APPROVED else ""
        return {"package": package.to_dict()}, f"{package.arn}: {package.status} ({package.approval_description}){nxt}"

    return run


def _region_of(arn: str) -> str:
    from ci.aws.registry import check_package_arn

    check_package_arn(arn)
    return arn.split(":")[3]


@command
def run_promote(args, progress):
    from ci.aws import clients as aws
    from ci.steps.promote import promote

    session = aws.make_session(_region_of(args.package))
    result = promote(
        session,
        args.package,
        args.to,
        model=args.model,
        stacks_dir=args.stacks_dir,
        outputs_source=args.outputs_from,
        progress=progress,
    )
    if not result["changed"]:
        return result, f"{args.package} is already deployed for {result['model']} in {result['stack']}; nothing changed"
    return result, (
        f"promoted {args.package} to {result['stack']} ({result['stackFile']})"
        + (f", replacing {result['replaced']}" if result["replaced"] else "")
        + f"\nnext: commit the stack file in a pull request; CI runs `pulumi up --stack {result['stack']}` on merge"
    )


@command
def run_verify(args, progress):
    from ci.steps.verify import verify

    ctx = _context(args, progress)
    result = verify(
        ctx.session,
        ctx.outputs,
        model=ctx.model(args.model) if args.model else None,
        wait_seconds=args.wait_seconds,
        poll_seconds=args.poll_seconds,
        progress=progress,
    )
    lines = [f"stack {ctx.stack}: every endpoint serves what the stack declares"] + [
        f"  {e['endpoint']}: {e['status']} on {e['configName']}, package {e['declared']}" for e in result["endpoints"]
    ]
    if not result["endpoints"]:
        lines = [f"stack {ctx.stack} deploys no model (no approved package): nothing to verify"]
    return result, "\n".join(lines)


@command
def run_rollback(args, progress):
    from ci.aws import clients as aws
    from ci.aws.outputs import stack_file
    from ci.aws.stackfile import read_config
    from ci.steps.promote import rollback

    region = read_config(stack_file(args.env, args.stacks_dir)).get("aws:region", "us-east-1")
    result = rollback(aws.make_session(region), args.env, args.model, stacks_dir=args.stacks_dir, progress=progress)
    return result, (
        f"rolled back {result['model']} in {result['stack']} to {result['restored']}\n"
        f"next: commit the stack file; `pulumi up --stack {result['stack']}` rolls it out"
    )


@command
def run_packages(args, progress):
    from ci.aws import registry

    ctx = _context(args, progress)
    model = ctx.model(args.model)
    group = ctx.outputs.modelPackageGroups[model]
    rows = []
    for summary in registry.list_packages(ctx.sagemaker, group, args.status):
        pkg = registry.describe(ctx.sagemaker, summary["ModelPackageArn"])
        rows.append(pkg.to_dict())
    lines = [f"{group}: {len(rows)} package(s)"] + [
        f"  v{r['version']:<4} {r['status']:<22} gate {r['gate'] or '-':<7} {r['trainingJob']:<45} {r['arn']}"
        for r in rows
    ]
    return {"group": group, "packages": rows}, "\n".join(lines)


@command
def run_monitor(args, progress):
    from ci.steps.monitor import monitor
    from ci.steps.pipeline import TrainRequest, train_gate_register

    ctx = _context(args, progress)
    model = ctx.model(args.model)
    retrain = None
    if not args.no_retrain:
        req = TrainRequest(
            model=model,
            latest_data=True,
            local=args.retrain_local,
            poll_seconds=args.poll_seconds,
            hyperparameters=_key_values(args.hp),
        )

        def retrain(package):
            """Retrain where the deployed package was trained (its stack), on that stack's newest data."""
            home = package.metadata.get("mlops:stack") or ctx.stack
            home_ctx = ctx if home == ctx.stack else _context(args, progress, stack=home)
            return train_gate_register(home_ctx, req)

    result = monitor(
        ctx.session, ctx.outputs, model, since_hours=args.since_hours or None, retrain=retrain, progress=progress
    )
    m = result["metric"]
    text = [
        f"drift score {result['score']:.4f} (threshold {result['threshold']:g}) on {result['endpoint']}: "
        + ("DRIFTED" if result["drifted"] else "ok"),
        f"  published {m['namespace']}/{m['name']} {m['dimensions']}",
        f"  report {result['reportUri']}",
    ]
    if result["notified"]:
        text.append(f"  notified {result['notified']['topic']}")
    if result["retrain"]:
        text.append(
            f"  retrained: {result['retrain'].get('job')} (gate "
            f"{'passed' if result['retrain']['gate']['passed'] else 'failed'})"
        )
    return result, "\n".join(text)


@command
def run_reproduce(args, progress):
    from ci.steps.pipeline import reproduce

    stack = args.stack or _package_stack(args.package)
    ctx = _context(args, progress, stack=stack)
    result = reproduce(ctx, args.package, local=args.local, tolerance=args.tolerance, poll_seconds=args.poll_seconds)
    lines = [
        f"rerun {result['rerunJob']}: metrics {'MATCH' if result['match'] else 'DIFFER'} (tolerance {args.tolerance:g})"
    ]
    for name, c in result["metrics"].items():
        lines.append(
            f"  {name:<14} recorded {c['recorded']:.6g}  reproduced {c['reproduced']:.6g}  "
            f"{'ok' if c['match'] else 'DIFFERENT'}"
        )
    if not result["match"]:
        raise ReproduceMismatch("\n".join(lines), details=result)
    return result, "\n".join(lines)


def _package_stack(arn: str) -> str:
    """A package's group is `<model>-<stack>` (infra/registry.py): its stack is the suffix."""
    from ci.aws.registry import PACKAGE_ARN

    match = PACKAGE_ARN.match(arn)
    if not match:
        raise UsageError(f"{arn!r} is not a versioned model package ARN")
    return match.group(1).rsplit("-", 1)[-1]


@command
def run_local_up(args, progress):
    from ci.emulator.pulumi_up import provision

    raw = provision(args.stack, args.stacks_dir, progress)
    return {"outputs": raw}, (
        f"stack {args.stack} provisioned in the emulator; endpoints: "
        f"{', '.join(f'{m}={e}' for m, e in raw['endpoints'].items()) or 'none'}"
    )


@command
def run_demo(args, progress):
    from ci.emulator.demo import run_demo as demo

    result = demo(out_dir=args.out, rows=args.rows, progress=progress, keep_server=False)
    return result, f"demo finished in {result['seconds']:.0f} s; report: {result['report']}"


# --- registration --------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    p = _add(
        sub,
        "train",
        "train a model: pin the data, launch a SageMaker job (or run locally), follow it",
        "Uploads or references a data set version (S3 versions and SHA-256 recorded), then runs ml/train.py as a "
        "SageMaker training job through the sagemaker SDK's ModelTrainer on the environment's GPU type, in the "
        "project's own image (pushed by `mlops image`, pinned by digest; the lock tests and serving use), with "
        "managed spot, checkpoints, KMS and VPC from the stack; follows it and streams its metrics. --dry-run "
        "prints the exact CreateTrainingJob request and sends nothing. --local runs the same code here under the "
        "training-container contract and uploads model.tar.gz where SageMaker would.",
        run_train,
    )
    _common(p)
    p.add_argument("--model", help="model name (default: the stack's only model)")
    data = p.add_argument_group("data (exactly one)")
    data.add_argument(
        "--data", type=Path, help="local folder with train/ validation/ test/ (or train.csv validation.csv test.csv)"
    )
    data.add_argument("--data-uri", help="an S3 prefix holding train/ validation/ test/")
    data.add_argument(
        "--synthetic",
        type=argtypes.ROWS,
        metavar="ROWS",
        help="generate ROWS synthetic rows with ml.data (demos, smoke tests)",
    )
    data.add_argument(
        "--synthetic-drift", type=argtypes.FRACTION, default=0.0, help="drift of the synthetic rows, 0-1 (default 0)"
    )
    data.add_argument("--latest-data", action="store_true", help="the newest data set version uploaded for the model")
    p.add_argument(
        "--instance-type",
        help="GPU type; must be in the stack's allowedInstanceTypes (default: its defaultInstanceType)",
    )
    p.add_argument(
        "--instance-count",
        type=int,
        default=1,
        help="hosts for one job (default 1); torchrun spans them, one worker per GPU, in SM_HOSTS order",
    )
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="hyperparameter for ml/train.py (repeatable)")
    p.add_argument("--seed", type=int, default=42, help="random seed, recorded in lineage (default 42)")
    p.add_argument(
        "--local", action="store_true", help="run ml/train.py here under the container contract instead of SageMaker"
    )
    p.add_argument(
        "--no-wait", action="store_true", help="create the job and return; `mlops evaluate --job` picks it up"
    )
    p.add_argument("--poll-seconds", type=argtypes.SECONDS, default=30.0, help="how often to poll the job (default 30)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact CreateTrainingJob request the sagemaker SDK builds (under 'request' with --json), "
        "checked against AWS's rules; contacts no AWS service and uploads nothing",
    )
    p.add_argument(
        "--image",
        "--training-image",
        dest="training_image",
        help="train in this image instead of the project's own (<ecrRepositoryUrl>:<commit>, pushed by "
        "`mlops image`), e.g. an AWS Deep Learning Container; pinned by digest when ECR knows it",
    )

    _register_tune(sub)

    p = _add(
        sub,
        "image",
        "build the serving image (container/Dockerfile) and push it to the stack's ECR repository",
        "Builds ml/serve.py into the inference image with Docker, tags it with the ML code's git commit (the tag "
        "`mlops register` references by default) and pushes it to the environment's ECR repository; an existing tag "
        "is reused (tags are immutable). Prints the digest the model package will pin.",
        run_image,
    )
    _common(p)
    p.add_argument("--tag", help="image tag (default: the first 12 characters of the git commit)")
    p.add_argument("--no-push", action="store_true", help="build only")
    p.add_argument("--docker", default="docker", help="the docker client to run (default docker)")

    p = _add(
        sub,
        "evaluate",
        "score a training run against the champion on held-out data; the gate",
        "Scores the run's model and the champion (newest Approved package) on the run's held-out test split, applies "
        "the stack's gate (mlops:gate metric, minImprovement, minimums) and writes the evaluation report to S3. "
        "Exits 4 when the gate fails.",
        run_evaluate,
    )
    _common(p)
    p.add_argument("--job", required=True, help="training job name (from `mlops train`)")

    p = _add(
        sub,
        "register",
        "create the model package for a gated run (PendingManualApproval)",
        "Creates the model package: inference image, model data, content and instance types, model metrics pointing "
        "at the evaluation report, the lineage record as customer metadata. Refuses a failed gate unless --force "
        "--reason. Registering the same job twice returns the first package.",
        run_register,
    )
    _common(p)
    p.add_argument("--job", required=True, help="training job name")
    p.add_argument(
        "--inference-image",
        help="serving image (default: <ecrRepositoryUrl>:<git commit>), pinned by digest when known",
    )
    p.add_argument("--force", action="store_true", help="register although the gate failed (needs --reason)")
    p.add_argument("--reason", help="why the gate is overridden; recorded on the package")

    for name, status, verb in (("approve", "Approved", "approve"), ("reject", "Rejected", "reject")):
        p = _add(
            sub,
            name,
            f"{verb} a model package, recording who and why",
            f"Sets the package to {status}; who (--by, or $GITHUB_ACTOR, or $USER) and why (--reason) are recorded in "
            "its ApprovalDescription and customer metadata.",
            _status_handler(status),
        )
        p.add_argument("package", help="model package ARN")
        p.add_argument("--reason", required=True, help="why; recorded on the package")
        p.add_argument("--by", help="who decides (default $GITHUB_ACTOR or $USER)")
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")

    p = _add(
        sub,
        "promote",
        "write an approved package into an environment's stack config",
        "Checks the package is Approved, passed the gate, serves a model of the environment, and was live where the "
        "environment requires (mlops:promotion.requireLiveIn, e.g. staging before prod); then writes it into "
        "stacks/Pulumi.<env>.yaml (the old one goes to mlops:previousPackages). A refused promotion changes nothing.",
        run_promote,
    )
    _common(p, stack=False)
    p.add_argument("package", help="model package ARN")
    p.add_argument("--to", required=True, help="target environment / stack (dev, staging, prod, local)")
    p.add_argument("--model", help="model name (default: the package's)")

    p = _add(
        sub,
        "verify",
        "check that each endpoint runs the package the stack declares (run after `pulumi up`)",
        "For every model the stack deploys (outputs endpoints + approvedPackages) reads DescribeEndpoint, "
        "DescribeEndpointConfig and DescribeModel, and fails unless the endpoint is InService on the declared model "
        "package. A blue/green update that SageMaker rolled back leaves the endpoint InService on the OLD config while "
        "the provider reports success: this is the check that catches it. Waits while an endpoint is still "
        "Creating or Updating, up to --wait-seconds.",
        run_verify,
    )
    _common(p)
    p.add_argument("--model", help="only this model (default: every model the stack deploys)")
    p.add_argument(
        "--wait-seconds",
        type=argtypes.WAIT,
        default=1800.0,
        help="how long an endpoint may stay Updating (default 1800)",
    )
    p.add_argument(
        "--poll-seconds", type=argtypes.SECONDS, default=30.0, help="poll interval while waiting (default 30)"
    )

    p = _add(
        sub,
        "rollback",
        "restore an environment's previous package for a model",
        "Moves the newest entry of mlops:previousPackages.<model> back into mlops:approvedPackages.<model>.",
        run_rollback,
    )
    _common(p, stack=False)
    p.add_argument("--env", required=True, help="environment / stack to roll back")
    p.add_argument("--model", required=True, help="model name")

    p = _add(sub, "packages", "list a model's packages in the stack's registry group", "Newest first.", run_packages)
    _common(p)
    p.add_argument("--model", help="model name (default: the stack's only model)")
    p.add_argument(
        "--status", choices=("Approved", "PendingManualApproval", "Rejected"), help="only this approval status"
    )

    p = _add(
        sub,
        "monitor",
        "compute drift of captured traffic, publish it, alert and retrain past the threshold",
        "Reads the endpoint's captured data, computes drift against the deployed package's baseline, publishes it "
        "under the namespace, metric and dimensions of the stack's drift alarm, and past the threshold notifies the "
        "alert topic and retrains on the newest data through the same gate.",
        run_monitor,
    )
    _common(p)
    p.add_argument("--model", help="model name (default: the stack's only model)")
    p.add_argument(
        "--since-hours",
        type=argtypes.HOURS,
        default=24.0,
        help="captured data of the last N hours (0: all; default 24)",
    )
    p.add_argument("--no-retrain", action="store_true", help="notify only; do not retrain")
    p.add_argument("--retrain-local", action="store_true", help="retrain with the local runner instead of SageMaker")
    p.add_argument("--hp", action="append", metavar="KEY=VALUE", help="hyperparameters for the retraining run")
    p.add_argument(
        "--poll-seconds", type=argtypes.SECONDS, default=30.0, help="poll interval while following the retraining job"
    )

    p = _add(
        sub,
        "reproduce",
        "re-run training from a package's lineage record and compare the metrics",
        "Reads the lineage record (its SHA-256 checked against the package), trains again on the exact recorded data "
        "versions with the same hyperparameters, seed and image, and reports whether the metrics match.",
        run_reproduce,
    )
    _common(p, stack=True, stack_required=False)
    p.add_argument("package", help="model package ARN")
    p.add_argument("--local", action="store_true", help="re-run with the local runner instead of SageMaker")
    p.add_argument(
        "--tolerance",
        type=argtypes.TOLERANCE,
        default=1e-6,
        help="largest absolute metric difference that still matches",
    )
    p.add_argument("--poll-seconds", type=argtypes.SECONDS, default=30.0, help="poll interval while following the job")

    p = _add(
        sub,
        "local",
        "the local backend: provision a stack in the AWS emulator (no Pulumi CLI, no account)",
        "`mlops local up --stack local` creates the stack's core resources in the emulator at "
        "AWS_ENDPOINT_URL with the "
        "names the offline preview gives, deploys approved packages to endpoints, and records the outputs.",
        None,
    )
    local_sub = p.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = local_sub.add_parser(
        "up",
        help="create or update the stack's resources in the emulator",
        description="Idempotent: run it again after `mlops promote` to roll out.",
        epilog=EXIT_CODES,
    )
    _common(up)
    up.set_defaults(handler=run_local_up)

    p = _add(
        sub,
        "demo",
        "the whole lifecycle on this machine against an emulator on loopback; ends with an HTML report",
        "Starts moto on 127.0.0.1, provisions the local stack, trains (local runner, small data), "
        "evaluates, registers, "
        "approves, promotes, deploys, serves traffic through ml.serve with data capture, detects drift and raises the "
        "alert, then writes an HTML report.",
        run_demo,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(".mlops/demo-report"),
        help="folder for the report (default .mlops/demo-report, which git ignores)",
    )
    p.add_argument("--rows", type=argtypes.ROWS, default=2000, help="synthetic rows to train on (default 2000)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
