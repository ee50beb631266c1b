"""`mlops train`: pin the data, plan the job from the stack, run it on SageMaker or locally, follow it.

The plan is pure: stack outputs + request -> every setting of the job (GPU type from the
environment's allowed list, the project's own image pinned by digest, managed spot with max wait,
checkpoint and output URIs, KMS keys, VPC, metric definitions, tags). An instance type the
environment does not allow is refused here, before any AWS call. The SageMaker path launches
through the sagemaker SDK's `ModelTrainer` with `ml/` as source code and follows the job,
streaming its metric lines from CloudWatch Logs; the local path runs the same `ml/train.py`
under the same container contract (`ci/steps/container.py`) and uploads `model.tar.gz` to exactly
where SageMaker would. Either way a run record lands in S3 for evaluate/register/reproduce.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from ci.aws import s3 as s3util
from ci.errors import MlopsError, NotFoundError, RefusedError, TrainingFailedError, UsageError
from ci.progress import QUIET, Progress
from ci.steps.container import package_model, package_output, run_training
from ci.steps.datasets import TRAINING_CHANNELS, Manifest, download_split
from kernel.instances import accepts_volume_kms_key
from kernel.paths import REPO_ROOT
from kernel.records import RunRecord
from kernel.stack_outputs import StackOutputs

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")
# The metric lines ml/train.py prints (`metric: val_loss=0.31; epoch=3`); SageMaker scrapes the
# same regexes from the job's logs into CloudWatch, we parse them while following.
METRIC_NAMES = (
    "epoch",
    "iteration",
    "train_loss",
    "val_loss",
    "val_roc_auc",
    "val_accuracy",
    "val_f1",
    "final_roc_auc",
    "final_accuracy",
    "final_f1",
    "final_log_loss",
    "final_calibration_error",
    "final_brier_score",
    # regression (ml/evaluate.py)
    "val_rmse",
    "val_mae",
    "val_r2",
    "final_rmse",
    "final_mae",
    "final_r2",
    "final_mape",
    "final_mse",
)
ENTRY_SCRIPT = "ml/train.py"  # inside the code channel: ml/ alone (see _staged_code)
NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_METRIC_LINE = re.compile(r"metric:\s*(.*)$")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_:.-]*)=" + NUMBER)


def metric_definitions() -> list[dict[str, str]]:
    return [{"Name": name, "Regex": rf"\b{name}={NUMBER}"} for name in METRIC_NAMES]


def parse_metric_line(line: str) -> dict[str, float]:
    """`metric: val_loss=0.31; epoch=3` -> {'val_loss': 0.31, 'epoch': 3.0}; other lines -> {}."""
    match = _METRIC_LINE.search(line)
    if not match:
        return {}
    return {name: float(value) for name, value in _PAIR.findall(match.group(1))}


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPlan:
    stack: str
    model: str
    base_job_name: str
    instance_type: str
    image_uri: str
    image_digest: str | None
    use_spot: bool
    max_runtime_seconds: int
    max_wait_seconds: int
    checkpoint_s3_uri: str
    output_s3_uri: str
    kms_key_arn: str
    role_arn: str
    hyperparameters: dict[str, str]
    channels: dict[str, str]
    subnets: list[str] = field(default_factory=list)
    security_group_ids: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    metric_definitions: list[dict[str, str]] = field(default_factory=metric_definitions)
    artifact_bucket: str = ""
    region: str = ""
    image_source: str = "project"  # "project" (container/ + requirements.lock) or "override" (--image)
    instance_count: int = 1  # hosts; SageMaker numbers them algo-1..N in SM_HOSTS, torchrun spans them

    @property
    def pinned_image(self) -> str:
        return pin_image(self.image_uri, self.image_digest)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pinnedImage"] = self.pinned_image
        return out


def choose_instance_type(outputs: StackOutputs, requested: str | None) -> str:
    """The environment's GPU type: the default, or one it allows; anything else is refused."""
    allowed = list(outputs.trainingDefaults.allowedInstanceTypes)
    chosen = requested or outputs.trainingDefaults.defaultInstanceType
    if chosen not in allowed:
        raise RefusedError(
            f"instance type {chosen} is not allowed in stack {outputs.stackName} ({outputs.environment}); "
            f"allowed: {', '.join(allowed)} (mlops:training.allowedInstanceTypes)"
        )
    return chosen


def project_image(outputs: StackOutputs, commit: str | None = None) -> str:
    """The project's own training image (container/, pinned from requirements.lock, the lock
    serving runs; a CUDA torch build, training types being GPU types), in the stack's ECR
    repository under the `<commit>-cuda` tag `mlops image` pushes beside the serving tag."""
    from ci.steps.image import image_tag, training_tag

    return f"{outputs.ecrRepositoryUrl}:{training_tag(image_tag(commit))}"


def unpushed_image_message(outputs: StackOutputs, image: str) -> str:
    return (
        f"training image {image} is not in ECR: jobs run the project's own image (container/, built from "
        f"requirements.lock, the same libraries tests and serving use), pinned by digest. Build and push it "
        f"with `mlops image --stack {outputs.stackName}`, or name another image with --image (an AWS Deep "
        f"Learning Container, say; the job's lineage then records the library versions it ran)"
    )


def split_image(image_uri: str) -> tuple[str, str, str, str | None]:
    """(registry id, region-less host, repository, tag) of an ECR image URI."""
    host, _, rest = image_uri.partition("/")
    repository, _, tag = rest.partition(":")
    if "@" in repository:
        repository, tag = repository.split("@", 1)[0], ""
    return host.split(".", 1)[0], host, repository, tag or None


def resolve_digest(ecr, image_uri: str) -> str | None:
    """The image's digest from ECR, or None when the registry does not tell us (then it stays a tag)."""
    if "@sha256:" in image_uri:
        return image_uri.split("@", 1)[1]
    registry, _, repository, tag = split_image(image_uri)
    if not tag:
        return None
    try:
        images = ecr.describe_images(registryId=registry, repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError:
        return None
    details = images.get("imageDetails") or []
    return details[0].get("imageDigest") if details else None


def pin_image(image_uri: str, digest: str | None) -> str:
    if not digest or "@" in image_uri:
        return image_uri
    return image_uri.rsplit(":", 1)[0] + "@" + digest


def plan_job(
    outputs: StackOutputs,
    model: str,
    manifest: Manifest,
    *,
    instance_type: str,
    image_uri: str,
    image_digest: str | None,
    hyperparameters: dict[str, str],
    tags: dict[str, str],
    git: dict[str, Any],
    image_source: str = "project",
    instance_count: int = 1,
) -> JobPlan:
    if int(instance_count) < 1:  # the account's quota bounds it from above; AWS says how many when refusing
        raise UsageError(f"--instance-count {instance_count}: a training job needs at least one host")
    if model not in outputs.modelPackageGroups:
        raise UsageError(
            f"model {model!r} is not in stack {outputs.stackName}; models: {', '.join(outputs.modelPackageGroups)}"
        )
    td = outputs.trainingDefaults
    prefix = td.jobNamePrefix or f"mlops-{outputs.stackName}"
    vpc = td.vpc or {}
    job_tags = {
        **tags,
        "mlops:model": model,
        "mlops:stack": outputs.stackName,
        "mlops:dataset": manifest.manifest_uri or manifest.uri,
        "mlops:datasetSha256": manifest.sha256,
        "mlops:gitCommit": str(git.get("commit", "unknown")),
    }
    return JobPlan(
        stack=outputs.stackName,
        model=model,
        base_job_name=f"{prefix}-{model}",
        instance_type=instance_type,
        image_uri=image_uri,
        image_digest=image_digest,
        use_spot=bool(td.useSpot),
        max_runtime_seconds=int(td.maxRuntimeSeconds),
        max_wait_seconds=int(td.maxWaitSeconds),
        checkpoint_s3_uri=td.checkpointS3Uri,
        output_s3_uri=td.outputS3Uri,
        kms_key_arn=td.volumeKmsKeyArn or outputs.kmsKeyArn,
        role_arn=outputs.executionRoleArn,
        hyperparameters={k: str(v) for k, v in hyperparameters.items()},
        channels={c: manifest.split_uri(c) for c in TRAINING_CHANNELS},
        subnets=list(vpc.get("subnetIds") or []),
        security_group_ids=list(vpc.get("securityGroupIds") or []),
        tags={k: str(v)[:256] for k, v in job_tags.items()},
        # ml/lineage.py reads these inside the container (it sees no git and no AWS).
        environment={
            "MLOPS_STACK": outputs.stackName,
            "MLOPS_MODEL": model,
            "MLOPS_GIT_COMMIT": str(git.get("commit", "unknown")),
            "MLOPS_GIT_DIRTY": str(git.get("dirty")).lower(),
            "MLOPS_IMAGE_URI": pin_image(image_uri, image_digest),
        },
        artifact_bucket=outputs.artifactBucket,
        region=outputs.region,
        image_source=image_source,
        instance_count=int(instance_count),
    )


def checkpoint_uri(plan: JobPlan, job_name: str) -> str:
    return s3util.join(plan.checkpoint_s3_uri, plan.model, job_name) + "/"


def model_artifact_uri(plan: JobPlan, job_name: str) -> str:
    """Where SageMaker puts the model: `<outputS3Uri>/<job>/output/model.tar.gz`."""
    return s3util.join(plan.output_s3_uri, job_name, "output", "model.tar.gz")


# --- run records ---------------------------------------------------------------------------


def run_record_uri(artifact_bucket: str, job_name: str) -> str:
    return f"s3://{artifact_bucket}/runs/{job_name}/run.json"


def new_run_record(
    plan: JobPlan, job_name: str, mode: str, manifest: Manifest, git: dict[str, Any], seed: int | None
) -> dict[str, Any]:
    return {
        "job": job_name,
        "mode": mode,
        "model": plan.model,
        "stack": plan.stack,
        "status": "InProgress",
        "failureReason": "",
        "modelDataUrl": model_artifact_uri(plan, job_name),
        "instanceType": plan.instance_type,
        "imageUri": plan.image_uri,
        "imageDigest": plan.image_digest,
        "pinnedImage": plan.pinned_image,
        "imageSource": plan.image_source,
        "hyperparameters": plan.hyperparameters,
        "seed": seed,
        "spot": plan.use_spot,
        "checkpointS3Uri": checkpoint_uri(plan, job_name),
        "dataset": manifest.to_dict(),
        "git": git,
        "metrics": {},
        "metricDefinitions": plan.metric_definitions,
        "startedAt": _now(),
        "finishedAt": None,
    }


def save_run(s3, artifact_bucket: str, record: dict[str, Any], kms_key: str | None = None) -> str:
    """Store the record through its model: what evaluate and register will parse is checked as it is written."""
    uri = run_record_uri(artifact_bucket, record["job"])
    s3util.put_json(s3, uri, RunRecord.from_dict(record, uri).to_dict(), kms_key)
    return uri


def load_run(s3, artifact_bucket: str, job_name: str) -> dict[str, Any]:
    uri = run_record_uri(artifact_bucket, job_name)
    try:
        return s3util.get_json(s3, uri)
    except NotFoundError as err:
        raise NotFoundError(
            f"no run record for training job {job_name!r} at {uri}; was it started with `mlops train`?"
        ) from err


def refresh_run(session, record: dict[str, Any], kms_key: str | None = None) -> dict[str, Any]:
    """Bring a SageMaker run record up to date with its job (for jobs started with --no-wait)."""
    if record.get("mode") != "sagemaker" or record.get("status") in TERMINAL:
        return record
    description = session.client("sagemaker").describe_training_job(TrainingJobName=record["job"])
    record = apply_description(record, description)
    bucket, _ = s3util.split_uri(record["modelDataUrl"])
    save_run(session.client("s3"), bucket, record, kms_key)
    return record


def apply_description(record: dict[str, Any], description: dict[str, Any]) -> dict[str, Any]:
    record = dict(record)
    record["status"] = description["TrainingJobStatus"]
    record["failureReason"] = description.get("FailureReason", "")
    record["modelDataUrl"] = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts", record["modelDataUrl"])
    final = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList") or []}
    record["metrics"] = {**record.get("metrics", {}), **final}
    if record["status"] in TERMINAL:
        record["finishedAt"] = _now()
        record["billableSeconds"] = description.get("BillableTimeInSeconds")
    return record


# --- SageMaker -----------------------------------------------------------------------------


def compute_config(plan: JobPlan):
    """The job's ResourceConfig: a volume KMS key only where AWS accepts one (AWS rule INSTANCE-STORAGE:
    types with local NVMe storage refuse it; their storage is encrypted on the instance)."""
    from sagemaker.train.configs import Compute

    return Compute(
        instance_type=plan.instance_type,
        instance_count=plan.instance_count,
        volume_size_in_gb=50,
        volume_kms_key_id=plan.kms_key_arn if accepts_volume_kms_key(plan.instance_type) else None,
        enable_managed_spot_training=plan.use_spot,
    )


def build_trainer(sdk_session, plan: JobPlan, source_dir: Path):
    """The ModelTrainer for a plan, checkpoint prefix included; returns it and the checkpoint URI."""
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import (
        CheckpointConfig,
        MetricDefinition,
        Networking,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
        Tag,
    )
    from sagemaker.train.distributed import Torchrun

    networking = Networking(enable_network_isolation=True)
    if plan.subnets:
        networking = Networking(
            subnets=plan.subnets,
            security_group_ids=plan.security_group_ids,
            enable_network_isolation=True,
            enable_inter_container_traffic_encryption=True,
        )
    stopping = (
        StoppingCondition(
            max_runtime_in_seconds=plan.max_runtime_seconds, max_wait_time_in_seconds=plan.max_wait_seconds
        )
        if plan.use_spot
        else StoppingCondition(max_runtime_in_seconds=plan.max_runtime_seconds)
    )
    trainer = ModelTrainer(
        sagemaker_session=sdk_session,
        role=plan.role_arn,
        base_job_name=plan.base_job_name,
        training_image=plan.pinned_image,
        # SageMaker's torchrun driver starts ml/train.py once per GPU on every host (one process on
        # a CPU type), with RANK/WORLD_SIZE/MASTER_ADDR from SM_HOSTS: the SDK's launcher, not ours.
        source_code=SourceCode(source_dir=str(source_dir), entry_script=ENTRY_SCRIPT),
        distributed=Torchrun(),
        compute=compute_config(plan),
        networking=networking,
        stopping_condition=stopping,
        # Output data keeps its KMS key on every instance type.
        output_data_config=OutputDataConfig(s3_output_path=plan.output_s3_uri, kms_key_id=plan.kms_key_arn),
        hyperparameters=dict(plan.hyperparameters),
        environment=dict(plan.environment),
        tags=[Tag(key=k, value=v) for k, v in plan.tags.items()],
    )
    trainer = trainer.with_metric_definitions(
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in plan.metric_definitions]
    )
    # One checkpoint prefix per launch, named like the job (the SDK names the job itself, to
    # the second; the URI actually used is read back from the job).
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    checkpoint = checkpoint_uri(plan, f"{plan.base_job_name}-{stamp}")
    return trainer.with_checkpoint_config(CheckpointConfig(s3_uri=checkpoint)), checkpoint


def _start(trainer, plan: JobPlan) -> None:
    from sagemaker.train.configs import InputData

    with _quiet_sdk():  # its warnings here are expected (hyperparameters reach us as SM_HPS and the JSON file)
        trainer.train(
            input_data_config=[InputData(channel_name=c, data_source=uri) for c, uri in plan.channels.items()],
            wait=False,
            logs=False,
        )


@contextlib.contextmanager
def _staged_code():
    """ml/ alone, copied to a folder the SDK uploads as the job's code channel."""
    staging = Path(tempfile.mkdtemp(prefix="mlops-code-"))
    try:
        shutil.copytree(REPO_ROOT / "ml", staging / "ml", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def launch_sagemaker(session, plan: JobPlan, progress: Progress = QUIET) -> tuple[str, str]:
    """Create the training job through ModelTrainer (not waiting); returns its name and checkpoint URI."""
    from ci.aws.clients import sagemaker_sdk_session

    sdk_session = sagemaker_sdk_session(session, plan.artifact_bucket, "training-input")
    with _staged_code() as staging:
        trainer, checkpoint = build_trainer(sdk_session, plan, staging)
        _start(trainer, plan)
        created = trainer._latest_training_job.training_job_name
        progress.step(f"training job {created} created ({plan.instance_type}, spot={plan.use_spot})")
        return created, checkpoint


def dry_run_request(plan: JobPlan) -> dict[str, Any]:
    """The exact CreateTrainingJob request `launch_sagemaker` would send, built by the SDK offline.

    Nothing is uploaded and no AWS service is contacted (ci/aws/dryrun.py answers every call). Returns
    the request as boto3 takes it, the S3 objects the SDK would have uploaded, the calls it made,
    and the problems AWS's rules find in the request.
    """
    from ci.aws.clients import sagemaker_sdk_session
    from ci.aws.dryrun import Captured, offline_session

    session, recorder = offline_session(plan.region, plan.artifact_bucket, "sagemaker", "CreateTrainingJob")
    # The role cannot be checked offline (IAM is not asked): the real launch checks it.
    with _env("SAGEMAKER_VALIDATE_ROLE", "false"), _staged_code() as staging:
        sdk_session = sagemaker_sdk_session(session, plan.artifact_bucket, "training-input")
        trainer, _ = build_trainer(sdk_session, plan, staging)
        try:
            _start(trainer, plan)
        except Captured:
            pass
        except ParamValidationError as err:  # botocore's own model check, before anything would be sent
            raise UsageError(
                f"dry run: AWS would refuse this CreateTrainingJob request: {err}",
                details={"request": recorder.request},
            ) from err
    if recorder.request is None:
        raise MlopsError(f"dry run: the SDK never reached CreateTrainingJob (calls: {', '.join(recorder.calls)})")
    return {
        "request": recorder.request,
        "codeUploads": recorder.uploads,
        "sdkCalls": dict(Counter(recorder.calls)),  # answered here, never sent
        **request_problems(recorder.request),
    }


def request_problems(request: dict[str, Any]) -> dict[str, Any]:
    """What AWS would refuse in a CreateTrainingJob request, by its service model and documented rules."""
    try:
        from kernel.aws_model import validate_request  # botocore's model plus AWS's documented rules
    except ImportError:  # pragma: no cover - only on a tree without the kernel's model checks
        return {"problems": [], "checked": "botocore parameter validation only (kernel.aws_model is absent)"}
    problems = [problem.message for problem in validate_request("sagemaker", "CreateTrainingJob", request)]
    return {"problems": problems, "checked": "botocore parameter validation and kernel.aws_model"}


@contextlib.contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _quiet_sdk():
    logger = logging.getLogger("sagemaker")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def follow(
    session,
    job_name: str,
    progress: Progress = QUIET,
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Poll the job to a terminal status, printing status changes and metric lines as they arrive."""
    sm = session.client("sagemaker")
    logs = session.client("logs")
    seen_events: set[str] = set()
    streamed: dict[str, float] = {}
    shown = 0
    started = time.monotonic()
    with progress.task(f"following {job_name}", announce=False) as following:
        while True:
            description = sm.describe_training_job(TrainingJobName=job_name)
            status = description["TrainingJobStatus"]
            following.describe(f"following {job_name}: {description.get('SecondaryStatus') or status}")
            # Every secondary-status transition is shown, including those between two polls.
            transitions = description.get("SecondaryStatusTransitions") or []
            for transition in transitions[shown:]:
                message = transition.get("StatusMessage", "")
                progress.step(f"{job_name}: {transition['Status']}" + (f" - {message}" if message else ""))
            shown = max(shown, len(transitions))
            for line in _new_log_lines(logs, job_name, seen_events):
                for name, value in parse_metric_line(line).items():
                    streamed[name] = value
                    progress.metric(name, value)
            if status in TERMINAL:
                progress.step(
                    f"{job_name}: {status}"
                    + (f" ({description['FailureReason']})" if description.get("FailureReason") else "")
                )
                return description, streamed
            if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
                raise MlopsError(
                    f"gave up following {job_name} after {timeout_seconds:.0f} s; it is still {status}. "
                    f"Resume with `mlops evaluate --job {job_name}` once it completes."
                )
            time.sleep(poll_seconds)


def _new_log_lines(logs, job_name: str, seen: set[str]) -> list[str]:
    lines: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job_name}/"}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                if event["eventId"] not in seen:
                    seen.add(event["eventId"])
                    lines.append(event["message"])
            token = page.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":  # no logs yet
            raise
    return lines


def train_sagemaker(
    session,
    plan: JobPlan,
    record_fields: dict[str, Any],
    progress: Progress = QUIET,
    *,
    wait: bool = True,
    poll_seconds: float = 30.0,
) -> dict[str, Any]:
    """Launch, record, follow, record again. A Failed or Stopped job raises TrainingFailedError."""
    s3 = session.client("s3")
    job_name, checkpoint = launch_sagemaker(session, plan, progress)
    record = new_run_record(
        plan, job_name, "sagemaker", record_fields["manifest"], record_fields["git"], record_fields.get("seed")
    )
    record["checkpointS3Uri"] = checkpoint
    save_run(s3, plan.artifact_bucket, record, plan.kms_key_arn)
    if not wait:
        return record
    timeout = plan.max_wait_seconds if plan.use_spot else plan.max_runtime_seconds
    description, streamed = follow(
        session, job_name, progress, poll_seconds=poll_seconds, timeout_seconds=timeout + 3600
    )
    record = apply_description(record, description)
    record["streamedMetrics"] = streamed
    save_run(s3, plan.artifact_bucket, record, plan.kms_key_arn)
    if record["status"] != "Completed":
        raise TrainingFailedError(
            f"training job {job_name} {record['status']}: "
            f"{record['failureReason'] or 'no reason given'}; nothing was registered",
            details={"run": record},
        )
    progress.step(f"{job_name} completed; model at {record['modelDataUrl']}")
    return record


# --- local ---------------------------------------------------------------------------------


def local_job_name(plan: JobPlan) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:-3]
    return f"{plan.base_job_name}-local-{stamp}"[:63]


def train_local(
    session,
    plan: JobPlan,
    manifest: Manifest,
    git: dict[str, Any],
    seed: int | None,
    progress: Progress = QUIET,
    job_name: str | None = None,
    keep_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ml/train.py under the container contract here; upload its model where SageMaker would.

    A local run killed part-way (kill -9, a closed laptop) is resumed by the next identical run
    (same stack, model, hyperparameters, data and seed), from the newest checkpoint it synced, as
    SageMaker resumes a spot-interrupted job; the killed run's record is then marked Stopped. Every
    other way out (success, failure, exception, Ctrl-C, SIGTERM) leaves the record terminal and
    the temporary folder removed.
    """
    s3 = session.client("s3")
    job_name = job_name or local_job_name(plan)
    resume_uri = local_resume_uri(plan, manifest, seed)
    record = new_run_record(plan, job_name, "local", manifest, git, seed)
    record["checkpointS3Uri"] = resume_uri
    _sweep_stale_temp_folders()
    previous = _claim_resume_prefix(s3, plan, resume_uri, job_name)
    if previous:
        record["resumedFromJob"] = previous
    save_run(s3, plan.artifact_bucket, record, plan.kms_key_arn)
    base = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{job_name}-"))
    (base / OWNER_FILE).write_text(str(os.getpid()))
    metrics: dict[str, float] = {}
    result = None
    try:
        if previous:
            _mark_superseded(s3, plan, previous, job_name)
        staged = base / "staged-channels"
        channels = {}
        described = f"local training job {job_name}: downloading channels {', '.join(plan.channels)}"
        with progress.task(described, total=len(plan.channels)) as downloading:
            for c in plan.channels:
                channels[c] = download_split(s3, manifest, c, staged / c)
                downloading.advance()
        if previous:
            progress.step(f"resuming the checkpoints of {previous}, which did not finish")
            _restore_checkpoints(s3, resume_uri, base / "checkpoints")

        def on_line(line: str) -> None:
            for name, value in parse_metric_line(line).items():
                metrics[name] = value
                progress.metric(name, value)

        sync = CheckpointSync(s3, resume_uri, plan.kms_key_arn)
        with progress.task(f"running ml/train.py under the container contract in {base}"):
            result = run_training(
                base,
                plan.hyperparameters,
                channels,
                on_line=on_line,
                checkpoint_sync=sync,
                sync_every_seconds=checkpoint_sync_seconds(),
                extra_env={**plan.environment, "TRAINING_JOB_NAME": job_name},
                timeout_seconds=plan.max_runtime_seconds,
                data_manifest=manifest.to_dict(),
            )
        if sync.problems:
            record["checkpointSyncWarnings"] = sync.problems[-5:]
        resumed_at = [int(m[1]) for line in result.lines if (m := _RESUMED_LINE.search(line))]
        if resumed_at:
            record["resumedFromStep"] = resumed_at[0]
        if not result.succeeded:
            raise TrainingFailedError(
                f"training job {job_name} Failed: {result.failure_reason}; nothing was registered",
                details={"run": record},
            )
        archive = package_model(result.model_dir, base / "upload" / "model.tar.gz")
        s3util.upload_file(s3, archive, record["modelDataUrl"], plan.kms_key_arn)
        output_archive = package_output(result.output_dir, base / "upload" / "output.tar.gz")
        s3util.upload_file(
            s3, output_archive, s3util.join(plan.output_s3_uri, job_name, "output", "output.tar.gz"), plan.kms_key_arn
        )
        final = _read_metrics(result.model_dir)
        record.update(status="Completed", finishedAt=_now(), metrics={**metrics, **final}, streamedMetrics=metrics)
        save_run(s3, plan.artifact_bucket, record, plan.kms_key_arn)
        progress.step(f"{job_name} completed; model at {record['modelDataUrl']}")
        return record
    except BaseException as err:
        # Nothing stays InProgress: Ctrl-C or SIGTERM stops the run, anything else fails it.
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            status = "Stopped"
            reason = f"interrupted ({type(err).__name__}); the next identical run resumes from its checkpoints"
        elif isinstance(err, TrainingFailedError) and result is not None:
            status, reason = "Failed", result.failure_reason
        else:
            status, reason = "Failed", f"{type(err).__name__}: {err}"
        record.update(status=status, failureReason=reason[:1024], finishedAt=_now(), streamedMetrics=metrics)
        _save_run_best_effort(s3, plan, record)
        raise
    finally:
        if keep_dir is None:
            shutil.rmtree(base, ignore_errors=True)


# --- local resume and clean-up ---------------------------------------------------------------

TEMP_PREFIX = "mlops-local-run-"
OWNER_FILE = ".owner-pid"
RESUME_OWNER = "owner.json"
SYNC_SECONDS_ENV = "MLOPS_CHECKPOINT_SYNC_SECONDS"
_RESUMED_LINE = re.compile(r"resuming from checkpoint at step (\d+)")  # ml/train.py says so


def checkpoint_sync_seconds() -> float:
    """How often a local run mirrors its checkpoints to S3 (SageMaker syncs continuously)."""
    raw = os.environ.get(SYNC_SECONDS_ENV, "30").strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 3600:
        raise UsageError(f"{SYNC_SECONDS_ENV}={raw!r} is not a number of seconds from 0.05 to 3600")
    return value


def local_resume_uri(plan: JobPlan, manifest: Manifest, seed: int | None) -> str:
    """The checkpoint prefix shared by identical local runs: the resume point of a killed one."""
    identity = json.dumps(
        [plan.stack, plan.model, plan.hyperparameters, manifest.to_dict().get("sha256"), seed], sort_keys=True
    )
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return s3util.join(plan.checkpoint_s3_uri, plan.model, "local-resume", key) + "/"


def _claim_resume_prefix(s3, plan: JobPlan, uri: str, job_name: str) -> str | None:
    """Take over the resume prefix; return the job to resume from, or None to start fresh.

    The prefix is resumed only when its last owner did not complete; a completed run's
    checkpoints are cleared so an identical re-run (`mlops reproduce`) really trains again.
    """
    owner_uri = uri + RESUME_OWNER
    previous = None
    try:
        previous = (s3util.get_json(s3, owner_uri) or {}).get("job")
    except (NotFoundError, ValueError, AttributeError):
        previous = None
    if previous:
        try:
            status = load_run(s3, plan.artifact_bucket, previous).get("status")
        except (NotFoundError, ValueError):
            status = None
        if status == "Completed":
            previous = None
    if not previous:
        bucket, _ = s3util.split_uri(uri)
        for obj in list(s3util.list_objects(s3, uri)):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3util.put_json(s3, owner_uri, {"job": job_name, "startedAt": _now()}, plan.kms_key_arn)
    return previous


def _mark_superseded(s3, plan: JobPlan, previous: str, job_name: str) -> None:
    """A killed run never wrote its own end: record it Stopped, naming the run that took over."""
    try:
        old = load_run(s3, plan.artifact_bucket, previous)
    except (NotFoundError, ValueError):
        return
    if old.get("status") not in TERMINAL:
        old.update(
            status="Stopped",
            failureReason=f"the run ended without a word (killed); {job_name} resumed from its checkpoints",
            finishedAt=_now(),
        )
    old["resumedBy"] = job_name
    _save_run_best_effort(s3, plan, old)


def _save_run_best_effort(s3, plan: JobPlan, record: dict[str, Any]) -> None:
    try:
        save_run(s3, plan.artifact_bucket, record, plan.kms_key_arn)
    except Exception as err:  # the run's own failure matters more than its record; say so
        Progress().warn(f"could not record {record['job']} as {record['status']}: {type(err).__name__}: {err}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_temp_folders() -> None:
    """Remove the temporary folders of local runs whose process is gone (kill -9 skips `finally`)."""
    root = Path(tempfile.gettempdir())
    for folder in root.glob(f"{TEMP_PREFIX}*"):
        owner = folder / OWNER_FILE
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


def _read_metrics(model_dir: Path) -> dict[str, float]:
    path = model_dir / "metrics.json"
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {k: float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _restore_checkpoints(s3, uri: str, dest: Path) -> None:
    """A resumed job starts from what the checkpoint URI holds, as SageMaker does on spot restarts."""
    dest.mkdir(parents=True, exist_ok=True)
    bucket, _ = s3util.split_uri(uri)
    for obj in s3util.list_objects(s3, uri):
        rel = obj["Key"][len(s3util.split_uri(uri)[1]) :]
        if rel and rel != RESUME_OWNER:
            s3util.download(s3, f"s3://{bucket}/{obj['Key']}", dest / rel)


class CheckpointSync:
    """Mirror the checkpoint directory to the checkpoint URI, as SageMaker does while a job runs:
    new or changed files are uploaded, files the trainer deleted (old checkpoints) are deleted.

    It never raises: the trainer rotates checkpoints while a sync runs (a file listed may be gone
    before it is read), and S3 throttles or drops a request now and then. A vanished file is
    skipped; a transient error is retried (`attempts` in all), then recorded in `problems` and left
    for the next sync; temporary files (a checkpoint being written) are never uploaded.
    """

    def __init__(self, s3, uri: str, kms_key: str | None, attempts: int = 3, backoff_s: float = 0.2):
        self.s3, self.uri, self.kms_key = s3, uri, kms_key
        self.bucket, self.prefix = s3util.split_uri(uri)
        self.uploaded: dict[str, str] = {}  # key -> sha256 of what this run uploaded
        self.lock = threading.Lock()
        self.attempts, self.backoff_s = max(1, attempts), backoff_s
        self.problems: list[str] = []

    def __call__(self, directory: Path) -> None:
        with self.lock:  # the periodic sync and the final one must not interleave
            try:
                self._sync(directory)
            except Exception as err:  # a listing that failed half-way; the next sync starts over
                self._problem(f"checkpoint sync of {directory}: {type(err).__name__}: {err}")

    def _sync(self, directory: Path) -> None:
        present = set()
        files = sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []
        for path in files:
            if path.name.startswith(".") or path.name.endswith(".tmp"):
                continue  # a checkpoint being written; it appears under its real name when whole
            key = self.prefix + path.relative_to(directory).as_posix()
            try:
                digest = s3util.sha256_file(path)
            except FileNotFoundError:
                continue  # rotated away between listing and reading: nothing to keep
            present.add(key)
            if self.uploaded.get(key) != digest and self._retry(
                key, s3util.upload_file, self.s3, path, f"s3://{self.bucket}/{key}", self.kms_key
            ):
                self.uploaded[key] = digest
        for key in [k for k in self.uploaded if k not in present]:
            if self._retry(key, self.s3.delete_object, Bucket=self.bucket, Key=key):
                del self.uploaded[key]

    def _retry(self, key: str, action, *args, **kwargs) -> bool:
        for attempt in range(1, self.attempts + 1):
            try:
                action(*args, **kwargs)
                return True
            except FileNotFoundError:
                return False  # the file went away mid-upload: rotated, nothing to keep
            except Exception as err:
                if attempt == self.attempts:
                    self._problem(f"s3://{self.bucket}/{key}: {type(err).__name__}: {err}")
                    return False
                time.sleep(self.backoff_s * attempt)
        return False

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        Progress().warn(f"{text}; the next sync tries again")  # shown even under a quiet caller


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
