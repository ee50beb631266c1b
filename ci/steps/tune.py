"""`mlops tune`: hyperparameter search, on SageMaker or here, ending in an ordinary training job.

SageMaker: automatic model tuning through the sagemaker SDK's `HyperparameterTuner` around the
same `ModelTrainer` `mlops train` builds (image by digest, Torchrun, spot with max wait,
checkpoints, KMS, VPC, network isolation) with the same metric definitions; Bayesian search,
early stopping `Auto`, and every GPU type the environment allows offered as instance configs
(SageMaker picks among them in order when one has no capacity). `--dry-run` prints the exact
CreateHyperParameterTuningJob request, built by the SDK offline (ci/aws/dryrun.py) and checked with
kernel.aws_model. `--local` runs a small search here: a few trials of the local runner under the
same container contract, the first with the default hyperparameters (so the search never returns
worse than the defaults), the rest sampled from the same ranges. Either way the best training job
is a training job like any other: `mlops evaluate --job` and `mlops register` take it, and its run
record carries the search (`tuning`: ranges, objective, every trial and its score).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ParamValidationError

from ci.aws import s3 as s3util
from ci.errors import MlopsError, TrainingFailedError, UsageError
from ci.steps import training
from kernel.instances import accepts_volume_kms_key

# CreateHyperParameterTuningJob: HyperParameterTuningJobName is 1-32 characters,
# [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31} (AWS rule TUNING-JOB-NAME-32); InstanceConfigs holds 1 to 6
# entries (AWS rule TUNING-INSTANCE-CONFIGS-6).
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningResourceConfig.html
TUNING_JOB_NAME_MAX = 32
MAX_INSTANCE_CONFIGS = 6
OPERATION = "CreateHyperParameterTuningJob"


@dataclass(frozen=True)
class Range:
    """One searched hyperparameter: the SDK's range on SageMaker, sampled the same way here."""

    name: str
    kind: str  # continuous | integer | categorical
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    values: tuple[str, ...] = ()

    def to_sdk(self):
        from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

        scaling = "Logarithmic" if self.log else "Linear"
        if self.kind == "categorical":
            return CategoricalParameter(list(self.values))
        if self.kind == "integer":
            return IntegerParameter(int(self.low), int(self.high), scaling_type=scaling)
        return ContinuousParameter(self.low, self.high, scaling_type=scaling)

    def sample(self, rng: random.Random) -> str:
        if self.kind == "categorical":
            return rng.choice(self.values)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return str(round(value)) if self.kind == "integer" else f"{value:.6g}"


# What is searched by default, per model family (ml/hyperparameters.py names and bounds).
DEFAULT_RANGES: dict[str, tuple[Range, ...]] = {
    "torch": (
        Range("lr", "continuous", 3e-4, 1e-2, log=True),
        Range("weight_decay", "continuous", 1e-6, 1e-2, log=True),
        Range("dropout", "continuous", 0.0, 0.3),
        Range("batch_size", "categorical", values=("256", "512", "1024")),
    ),
    "gbdt": (
        Range("gbdt_learning_rate", "continuous", 0.03, 0.3, log=True),
        Range("gbdt_max_leaf_nodes", "integer", 8, 64, log=True),
        Range("gbdt_max_iter", "integer", 50, 400),
    ),
}


def ranges_for(model_family: str) -> tuple[Range, ...]:
    return DEFAULT_RANGES["gbdt" if model_family == "gbdt" else "torch"]


def objective_for(gate_metric: str) -> tuple[str, str]:
    """(metric name SageMaker scrapes, Maximize|Minimize): the stack's gate metric, as training prints it."""
    from ml.evaluate import lower_is_better

    name = f"final_{gate_metric}"
    if name not in training.METRIC_NAMES:
        return "val_loss", "Minimize"
    return name, "Minimize" if lower_is_better(gate_metric) else "Maximize"


def tuning_job_name(base: str, stamp: str) -> str:
    """A name AWS accepts (TUNING-JOB-NAME-32): the base cut so that `-<stamp>` fits in 32."""
    keep = TUNING_JOB_NAME_MAX - len(stamp) - 1
    head = re.sub(r"[^a-zA-Z0-9-]", "-", base)[:keep].strip("-")
    return f"{head}-{stamp}"


@dataclass(frozen=True)
class TunePlan:
    job: training.JobPlan  # what every trial runs (hyperparameters: the fixed ones)
    instance_types: list[str]  # the environment's allowed GPU types, the default first
    ranges: tuple[Range, ...]
    objective: str
    objective_type: str  # Maximize | Minimize
    max_jobs: int
    max_parallel_jobs: int
    early_stopping: str = "Auto"
    strategy: str = "Bayesian"
    seed: int = 42
    trials: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "objective": {"metric": self.objective, "type": self.objective_type},
            "ranges": [r.__dict__ | {"values": list(r.values)} for r in self.ranges],
            "strategy": self.strategy,
            "earlyStopping": self.early_stopping,
            "maxJobs": self.max_jobs,
            "maxParallelJobs": self.max_parallel_jobs,
            "instanceTypes": self.instance_types,
            "spot": self.job.use_spot,
        }


def plan_tuning(
    job: training.JobPlan,
    allowed_types: list[str],
    gate_metric: str,
    *,
    max_jobs: int,
    max_parallel_jobs: int,
    seed: int,
) -> TunePlan:
    if max_jobs < 1 or max_parallel_jobs < 1:
        raise UsageError(f"--max-jobs {max_jobs} / --max-parallel-jobs {max_parallel_jobs}: each must be at least 1")
    types = list(dict.fromkeys([job.instance_type, *allowed_types]))[:MAX_INSTANCE_CONFIGS]
    objective, direction = objective_for(gate_metric)
    model_family = job.hyperparameters.get("model", "mlp")
    searched = tuple(r for r in ranges_for(model_family) if r.name not in job.hyperparameters)  # --hp fixes one
    if not searched:
        raise UsageError(f"every searched hyperparameter of {model_family} is fixed with --hp: nothing to tune")
    return TunePlan(job, types, searched, objective, direction, max_jobs, min(max_parallel_jobs, max_jobs), seed=seed)


def _replace(plan: training.JobPlan, **changes) -> training.JobPlan:
    import dataclasses

    return dataclasses.replace(plan, **changes)


# --- SageMaker -----------------------------------------------------------------------------


def build_tuner(sdk_session, plan: TunePlan, source_dir):
    """The SDK's HyperparameterTuner around the ModelTrainer `mlops train` builds."""
    from sagemaker.core.shapes import HyperParameterTuningInstanceConfig, HyperParameterTuningResourceConfig
    from sagemaker.train.tuner import HyperparameterTuner

    trainer, _ = training.build_trainer(sdk_session, plan.job, source_dir)
    kms = plan.job.kms_key_arn if all(accepts_volume_kms_key(t) for t in plan.instance_types) else None
    isolated = bool(plan.job.subnets)

    class Tuner(HyperparameterTuner):
        """The SDK's tuner, with what its training-job definition drops put back (SDK 3.27):
        the instance configs (`override_resource_config` is stored but never sent), the volume
        KMS key, network isolation and inter-container encryption."""

        def _build_training_job_definition(self, inputs):
            definition = super()._build_training_job_definition(inputs)
            definition.resource_config = None
            definition.hyper_parameter_tuning_resource_config = HyperParameterTuningResourceConfig(
                allocation_strategy="Prioritized",
                instance_configs=[
                    HyperParameterTuningInstanceConfig(
                        instance_type=t, instance_count=plan.job.instance_count, volume_size_in_gb=50
                    )
                    for t in plan.instance_types
                ],
                **({"volume_kms_key_id": kms} if kms else {}),
            )
            definition.enable_network_isolation = True
            if isolated:
                definition.enable_inter_container_traffic_encryption = True
            return definition

    return Tuner(
        model_trainer=trainer,
        objective_metric_name=plan.objective,
        objective_type=plan.objective_type,
        hyperparameter_ranges={r.name: r.to_sdk() for r in plan.ranges},
        metric_definitions=plan.job.metric_definitions,
        strategy=plan.strategy,
        max_jobs=plan.max_jobs,
        max_parallel_jobs=plan.max_parallel_jobs,
        early_stopping_type=plan.early_stopping,
        base_tuning_job_name=f"{plan.job.stack}-{plan.job.model}"[:TUNING_JOB_NAME_MAX],
        random_seed=plan.seed,
        tags=[{"Key": k, "Value": v} for k, v in plan.job.tags.items()],
    )


def _inputs(plan: TunePlan):
    from sagemaker.train.configs import InputData

    return [InputData(channel_name=c, data_source=uri) for c, uri in plan.job.channels.items()]


def _named(tuner, plan: TunePlan) -> str:
    from datetime import UTC, datetime

    return tuning_job_name(f"{plan.job.stack}-{plan.job.model}", datetime.now(UTC).strftime("%y%m%d%H%M%S"))


def launch_sagemaker(session, plan: TunePlan, progress) -> str:
    from ci.aws.clients import sagemaker_sdk_session

    sdk_session = sagemaker_sdk_session(session, plan.job.artifact_bucket, "tuning-input")
    with training._staged_code() as staging, training._quiet_sdk():
        tuner = build_tuner(sdk_session, plan, staging)
        name = _named(tuner, plan)
        tuner.tune(inputs=_inputs(plan), job_name=name, wait=False)
    progress.step(f"tuning job {name} created ({plan.max_jobs} trials over {', '.join(plan.instance_types)})")
    return name


def dry_run_request(plan: TunePlan) -> dict[str, Any]:
    """The exact CreateHyperParameterTuningJob request, built by the SDK offline, and AWS's objections."""
    from ci.aws.clients import sagemaker_sdk_session
    from ci.aws.dryrun import Captured, offline_session

    session, recorder = offline_session(plan.job.region, plan.job.artifact_bucket, "sagemaker", OPERATION)
    with training._env("SAGEMAKER_VALIDATE_ROLE", "false"), training._staged_code() as staging:
        sdk_session = sagemaker_sdk_session(session, plan.job.artifact_bucket, "tuning-input")
        tuner = build_tuner(sdk_session, plan, staging)
        try:
            with training._quiet_sdk():
                tuner.tune(inputs=_inputs(plan), job_name=_named(tuner, plan), wait=False)
        except Captured:
            pass
        except ParamValidationError as err:
            raise UsageError(f"dry run: AWS would refuse this {OPERATION} request: {err}") from err
        except Exception as err:  # the SDK wraps errors raised inside boto3 calls
            if not isinstance(err.__cause__ or err.__context__, Captured) and recorder.request is None:
                raise
    if recorder.request is None:
        raise MlopsError(f"dry run: the SDK never reached {OPERATION} (calls: {', '.join(recorder.calls)})")
    return {"request": recorder.request, "codeUploads": recorder.uploads, **request_problems(recorder.request)}


def request_problems(request: dict[str, Any]) -> dict[str, Any]:
    from kernel.aws_model import validate_request

    problems = [p.message for p in validate_request("sagemaker", OPERATION, request)]
    problems += tuning_rules(request)
    return {"problems": problems, "checked": "botocore parameter validation, kernel.aws_model and ci.steps.tune rules"}


def tuning_rules(request: dict[str, Any]) -> list[str]:
    """AWS's documented rules for a tuning request that the service model's shapes do not carry."""
    problems = []
    name = request.get("HyperParameterTuningJobName", "")
    if len(name) > TUNING_JOB_NAME_MAX:
        problems.append(f"HyperParameterTuningJobName {name!r}: over {TUNING_JOB_NAME_MAX} characters")
    definition = request.get("TrainingJobDefinition") or {}
    tuning = definition.get("HyperParameterTuningResourceConfig") or {}
    configs = tuning.get("InstanceConfigs") or []
    if configs and any(k in tuning for k in ("InstanceType", "InstanceCount", "VolumeSizeInGB")):
        problems.append(
            "HyperParameterTuningResourceConfig: InstanceConfigs excludes InstanceType/Count/VolumeSizeInGB"
        )
    if tuning.get("VolumeKmsKeyId"):
        nvme = [c["InstanceType"] for c in configs if not accepts_volume_kms_key(c["InstanceType"])]
        if nvme:
            problems.append(f"VolumeKmsKeyId with instance-storage types {nvme} (AWS rule INSTANCE-STORAGE)")
    return problems


# --- local ---------------------------------------------------------------------------------


def trial_hyperparameters(plan: TunePlan) -> list[dict[str, str]]:
    """Trial 0: the defaults (nothing searched is set); the others sampled from the ranges, seeded."""
    rng = random.Random(plan.seed)
    trials = [dict(plan.job.hyperparameters)]
    for _ in range(plan.max_jobs - 1):
        trials.append({**plan.job.hyperparameters, **{r.name: r.sample(rng) for r in plan.ranges}})
    return trials


def better(a: float, b: float | None, objective_type: str) -> bool:
    if b is None:
        return True
    return a < b if objective_type == "Minimize" else a > b


def tune_local(session, plan: TunePlan, manifest, git, seed, progress) -> dict[str, Any]:
    """Run the trials one after another with the local runner; the best is recorded as tuned."""
    from datetime import UTC, datetime

    name = tuning_job_name(f"{plan.job.stack}-{plan.job.model}", datetime.now(UTC).strftime("%y%m%d%H%M%S"))
    trials: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for i, hyperparameters in enumerate(trial_hyperparameters(plan)):
        job_plan = _replace(plan.job, hyperparameters=hyperparameters)
        job_name = f"{training.local_job_name(job_plan)[:55]}-t{i}"
        progress.step(f"tuning {name}: trial {i + 1} of {plan.max_jobs} ({job_name})")
        try:
            record = training.train_local(session, job_plan, manifest, git, seed, progress, job_name=job_name)
        except TrainingFailedError as err:
            trials.append({"job": job_name, "hyperparameters": hyperparameters, "status": "Failed", "reason": str(err)})
            continue
        score = record["metrics"].get(plan.objective)
        trials.append({"job": job_name, "hyperparameters": hyperparameters, "status": "Completed", "objective": score})
        if score is not None and (best is None or better(score, best["metrics"][plan.objective], plan.objective_type)):
            best = record
    if best is None:
        raise TrainingFailedError(
            f"tuning {name}: no trial completed with {plan.objective}", details={"trials": trials}
        )
    search = {
        "tuningJob": name,
        "mode": "local",
        **plan.describe(),
        "defaultsObjective": trials[0].get("objective"),
        "bestJob": best["job"],
        "bestObjective": best["metrics"][plan.objective],
        "trials": trials,
    }
    best["tuning"] = search
    s3 = session.client("s3")
    training.save_run(s3, plan.job.artifact_bucket, best, plan.job.kms_key_arn)
    s3util.put_json(s3, tuning_record_uri(plan.job.artifact_bucket, name), search, plan.job.kms_key_arn)
    progress.step(f"tuning {name}: best {best['job']} with {plan.objective}={search['bestObjective']:.4g}")
    return {"tuning": search, "run": best}


def tuning_record_uri(artifact_bucket: str, name: str) -> str:
    return f"s3://{artifact_bucket}/tuning/{name}/tuning.json"


# --- the command's work ----------------------------------------------------------------------


def tune(ctx, req, *, max_jobs: int, max_parallel_jobs: int) -> dict[str, Any]:
    """Plan from the stack like `mlops train` (same image, data pinning, refusals), then search."""
    from ci.steps import lineage, pipeline

    launch = pipeline.launch_of(ctx, req)
    allowed = list(ctx.outputs.trainingDefaults.allowedInstanceTypes)
    git = lineage.git_state()

    def plan_with(manifest, digest) -> TunePlan:
        job = pipeline.plan_request(ctx, req, launch, manifest, digest, git)
        return plan_tuning(
            job, allowed, ctx.gate().metric, max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, seed=req.seed
        )

    if req.dry_run:
        manifest, data_uploads = pipeline.dry_run_data(ctx, launch.model, req)
        plan = plan_with(manifest, launch.named_digest)
        built = dry_run_request(plan)
        return {"dryRun": True, "search": plan.describe(), "dataUploads": data_uploads, **built}
    digest = training.resolve_digest(ctx.session.client("ecr"), launch.image)
    if not digest and not req.training_image and not req.local:
        from ci.errors import RefusedError

        raise RefusedError(training.unpushed_image_message(ctx.outputs, launch.image))
    manifest = pipeline.resolve_data(ctx, launch.model, req)
    plan = plan_with(manifest, digest)
    if req.local:
        return tune_local(ctx.session, plan, manifest, git, req.seed, ctx.progress)
    name = launch_sagemaker(ctx.session, plan, ctx.progress)
    search = {"tuningJob": name, "mode": "sagemaker", **plan.describe()}
    s3util.put_json(
        ctx.session.client("s3"),
        tuning_record_uri(plan.job.artifact_bucket, name),
        search,
        plan.job.kms_key_arn,
    )
    return {"tuning": search}
