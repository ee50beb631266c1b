"""`mlops train`, `mlops tune` and `mlops reproduce`: training runs, launched, searched and re-run.

Each parses its flags into a `ci.steps.pipeline.TrainRequest` (or the tuning and reproduce calls) and
prints what the step did; --dry-run prints the request AWS would get and sends nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from ci.commands import argtypes
from ci.commands.framework import GroupedOption, Params, command, step
from ci.commands.options import (
    hp_option,
    model_option,
    open_stack,
    options,
    package_argument,
    poll_seconds_option,
    stack_options,
)
from ci.errors import MlopsError, UsageError
from ci.progress import Progress
from ml.jsonable import dumps

DATA = "data (exactly one)"
data_option = functools.partial(click.option, cls=GroupedOption, group=DATA)


class ReproduceMismatch(MlopsError):
    exit_code = 1


def data_options(*, drift: bool) -> Any:
    """Where the training data come from: exactly one of --data, --data-uri, --synthetic, --latest-data."""
    return options(
        data_option(
            "--data",
            type=click.Path(path_type=Path),
            help="local folder with train/ validation/ test/ (or train.csv validation.csv test.csv)",
        ),
        data_option("--data-uri", help="an S3 prefix holding train/ validation/ test/"),
        data_option(
            "--synthetic",
            type=argtypes.ROWS,
            metavar="ROWS",
            help="generate ROWS synthetic rows with ml.data (demos, smoke tests)",
        ),
        *(
            [
                data_option(
                    "--synthetic-drift",
                    type=argtypes.FRACTION,
                    default=0.0,
                    help="drift of the synthetic rows, 0-1 (default 0)",
                )
            ]
            if drift
            else []
        ),
        data_option(
            "--latest-data",
            is_flag=True,
            help="the newest data set version uploaded for the model",
        ),
    )


def image_option(help: str) -> Any:
    return click.option("--image", "--training-image", "training_image", help=help)


def train_request(args: Params, **specific: Any) -> Any:
    """The request `train` and `tune` share, from their common options."""
    from ci.steps.pipeline import TrainRequest

    return TrainRequest(
        model=args.model,
        data_dir=args.data,
        data_uri=args.data_uri,
        synthetic_rows=args.synthetic,
        latest_data=args.latest_data,
        instance_type=args.instance_type,
        hyperparameters=args.hp,
        seed=args.seed,
        local=args.local,
        training_image=args.training_image,
        dry_run=args.dry_run,
        instance_count=args.instance_count,
        **specific,
    )


@command(
    "train",
    "train a model: pin the data, launch a SageMaker job (or run locally), follow it",
    "Uploads or references a data set version (S3 versions and SHA-256 recorded), then runs ml/train.py as a "
    "SageMaker training job through the sagemaker SDK's ModelTrainer on the environment's GPU type, in the "
    "project's own image (pushed by `mlops image`, pinned by digest; the lock tests and serving use), with "
    "managed spot, checkpoints, KMS and VPC from the stack; follows it and streams its metrics. --dry-run "
    "prints the exact CreateTrainingJob request and sends nothing. --local runs the same code here under the "
    "training-container contract and uploads model.tar.gz where SageMaker would.",
)
@stack_options()
@model_option()
@data_options(drift=True)
@click.option(
    "--instance-type", help="GPU type; must be in the stack's allowedInstanceTypes (default: its defaultInstanceType)"
)
@click.option(
    "--instance-count",
    type=int,
    default=1,
    help="hosts for one job (default 1); torchrun spans them, one worker per GPU, in SM_HOSTS order",
)
@hp_option("hyperparameter for ml/train.py (repeatable)")
@click.option("--seed", type=int, default=42, help="random seed, recorded in lineage (default 42)")
@click.option("--local", is_flag=True, help="run ml/train.py here under the container contract instead of SageMaker")
@click.option("--no-wait", is_flag=True, help="create the job and return; `mlops evaluate --job` picks it up")
@poll_seconds_option("how often to poll the job (default 30)")
@click.option(
    "--dry-run",
    is_flag=True,
    help="print the exact CreateTrainingJob request the sagemaker SDK builds (under 'request' with --json), "
    "checked against AWS's rules; contacts no AWS service and uploads nothing",
)
@image_option(
    "train in this image instead of the project's own (<ecrRepositoryUrl>:<commit>, pushed by "
    "`mlops image`), e.g. an AWS Deep Learning Container; pinned by digest when ECR knows it"
)
@step
def train(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.pipeline import train as run_training

    ctx = open_stack(args, progress)
    req = train_request(
        args, synthetic_drift=args.synthetic_drift, wait=not args.no_wait, poll_seconds=args.poll_seconds
    )
    run = run_training(ctx, req)
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
    if result["problems"]:
        raise UsageError(
            "dry run: AWS would refuse this CreateTrainingJob request: " + "; ".join(result["problems"]),
            details=result,
        )
    uploads = [f"  {u['from']} -> {u['to']}" for u in result["dataUploads"]]
    summary = [
        "dry run: nothing was sent to AWS and nothing was uploaded.",
        "CreateTrainingJob request (as boto3 takes it):",
        dumps(result["request"]),
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


@command(
    "tune",
    "search hyperparameters: SageMaker automatic model tuning (or a few local trials)",
    "Plans like `mlops train` (the stack's image by digest, spot, checkpoints, KMS, VPC, the same metric "
    "definitions) and starts a SageMaker hyperparameter tuning job through the sagemaker SDK's "
    "HyperparameterTuner: Bayesian search, early stopping, the stack's gate metric as objective, every "
    "allowed GPU type as an instance config. --dry-run prints the exact CreateHyperParameterTuningJob "
    "request and sends nothing; --local runs --max-jobs trials of the local runner, the first with the "
    "defaults, and records the search on the best run, which `mlops evaluate` and `register` take.",
)
@stack_options()
@model_option()
@data_options(drift=False)
@click.option("--instance-type", help="the first GPU type tried (default: the stack's defaultInstanceType)")
@click.option("--instance-count", type=int, default=1, help="hosts per trial (default 1)")
@hp_option("fixed hyperparameter (repeatable)")
@click.option("--seed", type=int, default=42, help="seed of training and of the search (default 42)")
@click.option("--max-jobs", type=int, default=10, help="trials in all (default 10; local: keep it small)")
@click.option("--max-parallel-jobs", type=int, default=2, help="trials at once on SageMaker (default 2)")
@click.option("--local", is_flag=True, help="run the trials here with the local runner")
@click.option("--dry-run", is_flag=True, help="print the CreateHyperParameterTuningJob request only")
@image_option("train in this image instead")
@step
def tune(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.tune import tune as run_search

    ctx = open_stack(args, progress)
    result = run_search(ctx, train_request(args), max_jobs=args.max_jobs, max_parallel_jobs=args.max_parallel_jobs)
    if args.dry_run:
        if result["problems"]:
            raise UsageError(
                "dry run: AWS would refuse this CreateHyperParameterTuningJob request: "
                + "; ".join(result["problems"]),
                details=result,
            )
        text = "dry run: nothing was sent to AWS.\nCreateHyperParameterTuningJob request (as boto3 takes it):\n"
        return result, text + dumps(result["request"])
    search = result["tuning"]
    if "run" not in result:
        return result, f"tuning job {search['tuningJob']} created; follow it in SageMaker's console or describe it"
    return result, (
        f"tuning {search['tuningJob']}: {len(search['trials'])} trials, {search['objective']['metric']} "
        f"(defaults {search['defaultsObjective']}, best {search['bestObjective']})\n"
        f"best training job {search['bestJob']}\nnext: mlops evaluate --stack {ctx.stack} --job {search['bestJob']}"
    )


@command(
    "reproduce",
    "re-run training from a package's lineage record and compare the metrics",
    "Reads the lineage record (its SHA-256 checked against the package), trains again on the exact recorded data "
    "versions with the same hyperparameters, seed and image, and reports whether the metrics match.",
)
@stack_options(stack_required=False)
@package_argument()
@click.option("--local", is_flag=True, help="re-run with the local runner instead of SageMaker")
@click.option(
    "--tolerance",
    type=argtypes.TOLERANCE,
    default=1e-6,
    help="largest absolute metric difference that still matches",
)
@poll_seconds_option("poll interval while following the job")
@step
def reproduce(args: Params, progress: Progress) -> tuple[dict[str, Any], str]:
    from ci.steps.pipeline import reproduce as rerun

    ctx = open_stack(args, progress, stack=args.stack or _package_stack(args.package))
    result = rerun(ctx, args.package, local=args.local, tolerance=args.tolerance, poll_seconds=args.poll_seconds)
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


COMMANDS = (train, tune, reproduce)
