"""The lifecycle steps as functions: what each `mlops` command does once its flags are parsed.

Commands, the drift loop (`monitor` retrains through `train_gate_register`), `reproduce` and
the demo all call these, so a step behaves the same whoever runs it. Each step starts from a
`Context`: the stack's file, its outputs (wherever they come from) and an AWS session in its
region.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.aws import clients as aws
from ci.aws import registry
from ci.aws import s3 as s3util
from ci.aws.outputs import resolve_outputs, stack_file
from ci.errors import MlopsError, NotFoundError, RefusedError, UsageError
from ci.progress import QUIET, Progress
from ci.steps import datasets, lineage, training
from ci.steps.evaluation import evaluate_run
from ci.steps.register import default_inference_image, register_run, serving_instance_types
from kernel.paths import stack_name
from kernel.records import RunRecord
from kernel.stack_outputs import StackOutputs

if TYPE_CHECKING:
    from kernel.stack_config import GateConfig, StackConfig

DEFAULT_SEED = 42


@dataclass
class Context:
    stack: str
    stack_path: Path
    stacks_dir: Path | None
    outputs: StackOutputs
    outputs_source: str
    config: StackConfig
    progress: Progress = QUIET
    _session: Any = None

    @property
    def session(self):
        """Made on first use: checks that need no AWS (a refused GPU type) run before any connection."""
        if self._session is None:
            self._session = aws.make_session(self.outputs.region)
        return self._session

    @property
    def s3(self):
        return self.session.client("s3")

    @property
    def sagemaker(self):
        return self.session.client("sagemaker")

    def model(self, requested: str | None) -> str:
        models = list(self.outputs.modelPackageGroups)
        if requested:
            if requested not in models:
                raise UsageError(
                    f"--model {requested!r} is not a model of stack {self.stack}; models: {', '.join(models)}"
                )
            return requested
        if len(models) != 1:
            raise UsageError(f"stack {self.stack} has models {', '.join(models)}: pick one with --model")
        return models[0]

    def gate(self) -> GateConfig:
        return self.config.gate

    def tags(self) -> dict[str, str]:
        return {
            "project": "mlops",
            "environment": self.stack,
            **self.config.tags,
        }


def open_context(
    stack: str,
    *,
    stacks_dir: Path | None = None,
    outputs_file: str | None = None,
    outputs_from: str = "auto",
    progress: Progress = QUIET,
) -> Context:
    from kernel.stack_config import load_stack_config

    path = stack_file(stack, stacks_dir)
    resolved = resolve_outputs(stack, stacks_dir=stacks_dir, outputs_file=outputs_file, source=outputs_from)
    progress.info(f"stack {stack_name(stack)}: outputs from {resolved.source}")
    return Context(
        stack_name(stack), path, stacks_dir, resolved.outputs, resolved.source, load_stack_config(path), progress
    )


# --- train ---------------------------------------------------------------------------------


@dataclass
class TrainRequest:
    model: str | None = None
    data_dir: Path | None = None
    data_uri: str | None = None
    synthetic_rows: int | None = None
    synthetic_drift: float = 0.0
    latest_data: bool = False
    instance_type: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)
    seed: int = DEFAULT_SEED
    local: bool = False
    wait: bool = True
    poll_seconds: float = 30.0
    training_image: str | None = None  # default: the project's image (training.project_image)
    manifest: datasets.Manifest | None = None  # reproduce passes the exact recorded data
    dry_run: bool = False  # build and check the CreateTrainingJob request; contact no AWS service
    instance_count: int = 1  # hosts (SM_HOSTS); torchrun spans them


def resolve_data_choice(req: TrainRequest) -> None:
    """Exactly one data source, or a usage error naming them."""
    chosen = [
        n
        for n, v in (
            ("--data", req.data_dir),
            ("--data-uri", req.data_uri),
            ("--synthetic", req.synthetic_rows),
            ("--latest-data", req.latest_data),
        )
        if v
    ]
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one data source: --data DIR, --data-uri s3://..., --synthetic ROWS or --latest-data"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )


def resolve_data(ctx: Context, model: str, req: TrainRequest) -> datasets.Manifest:
    if req.manifest is not None:
        return req.manifest
    resolve_data_choice(req)
    o = ctx.outputs
    if req.latest_data:
        manifest = datasets.latest(ctx.s3, o.dataBucket, model)
        ctx.progress.step(f"newest data set of {model}: {manifest.id} ({manifest.created})")
        return manifest
    if req.data_uri:
        return datasets.reference(ctx.s3, req.data_uri, o.artifactBucket, model, o.kmsKeyArn, ctx.progress)
    if req.synthetic_rows:
        directory = datasets.synthetic(model, req.synthetic_rows, req.seed, req.synthetic_drift)
        ctx.progress.step(f"generated {req.synthetic_rows} synthetic rows (drift {req.synthetic_drift:g})")
        try:
            return datasets.upload(ctx.s3, o.dataBucket, model, directory, o.kmsKeyArn, ctx.progress)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    assert req.data_dir is not None  # one source is given: checked where the request is planned
    return datasets.upload(ctx.s3, o.dataBucket, model, Path(req.data_dir), o.kmsKeyArn, ctx.progress)


@dataclass(frozen=True)
class Launch:
    """What a train request asks for, resolved against the stack before any AWS call (train, its dry run
    and tune alike): a disallowed GPU type is refused here."""

    model: str
    instance_type: str
    image: str
    hyperparameters: dict[str, str]

    @property
    def named_digest(self) -> str | None:
        """The digest the image reference itself names (`…@sha256:…`), if it does."""
        return self.image.split("@", 1)[1] if "@sha256:" in self.image else None


def launch_of(ctx: Context, req: TrainRequest) -> Launch:
    return Launch(
        ctx.model(req.model),
        training.choose_instance_type(ctx.outputs, req.instance_type),
        req.training_image or training.project_image(ctx.outputs),
        {**{k: str(v) for k, v in req.hyperparameters.items()}, "seed": str(req.seed)},
    )


def train(ctx: Context, req: TrainRequest) -> dict[str, Any]:
    """Plan (refusing a disallowed GPU type before any call), pin the data, run, record."""
    launch = launch_of(ctx, req)
    if req.dry_run:
        return dry_run_train(ctx, req, launch)
    digest = training.resolve_digest(ctx.session.client("ecr"), launch.image)
    if not digest:
        # One lock for training and serving: a SageMaker job runs the pushed project image or
        # an image named on purpose. The local runner runs this checkout's environment (the lock).
        if not req.training_image and not req.local:
            raise RefusedError(training.unpushed_image_message(ctx.outputs, launch.image))
        ctx.progress.info(f"training image {launch.image}: digest unknown to this registry, recorded by tag")
    manifest = resolve_data(ctx, launch.model, req)
    git = lineage.git_state()
    plan = plan_request(ctx, req, launch, manifest, digest, git)
    if req.local:
        return training.train_local(ctx.session, plan, manifest, git, req.seed, ctx.progress)
    return training.train_sagemaker(
        ctx.session,
        plan,
        {"manifest": manifest, "git": git, "seed": req.seed},
        ctx.progress,
        wait=req.wait,
        poll_seconds=req.poll_seconds,
    )


def plan_request(
    ctx: Context, req: TrainRequest, launch: Launch, manifest: Any, digest: str | None, git: dict[str, Any]
) -> training.JobPlan:
    """The job a train request becomes (train, its dry run and each tuning trial plan it alike)."""
    return training.plan_job(
        ctx.outputs,
        launch.model,
        manifest,
        instance_type=launch.instance_type,
        image_uri=launch.image,
        image_digest=digest,
        hyperparameters=launch.hyperparameters,
        tags=ctx.tags(),
        git=git,
        image_source="override" if req.training_image else "project",
        instance_count=req.instance_count,
    )


def dry_run_train(ctx: Context, req: TrainRequest, launch: Launch) -> dict[str, Any]:
    """The job `train` would create, as the exact CreateTrainingJob request; no AWS call, no upload."""
    manifest, data_uploads = dry_run_data(ctx, launch.model, req)
    plan = plan_request(ctx, req, launch, manifest, launch.named_digest, lineage.git_state())
    if not launch.named_digest and not req.training_image:
        ctx.progress.info(
            f"dry run: {launch.image} is named by tag here; the launch pins its digest, or refuses if unpushed"
        )
    built = training.dry_run_request(plan)
    ctx.progress.step(
        f"dry run: CreateTrainingJob built by the sagemaker SDK offline; "
        f"{len(data_uploads)} data file(s) and {len(built['codeUploads'])} code file(s) would be uploaded"
    )
    return {"dryRun": True, "plan": plan.to_dict(), "dataUploads": data_uploads, **built}


def dry_run_data(ctx: Context, model: str, req: TrainRequest) -> tuple[datasets.Manifest, list[dict[str, str]]]:
    """The data channels without touching S3: a named prefix as is, a local folder where `upload` would put it."""
    if req.manifest is not None:
        return req.manifest, []
    resolve_data_choice(req)
    if req.latest_data:
        raise UsageError("--latest-data reads S3 to find the newest data set; a dry run names it with --data-uri")
    if req.data_uri:
        uri = req.data_uri if req.data_uri.endswith("/") else req.data_uri + "/"
        if not uri.startswith("s3://"):
            raise UsageError(f"--data-uri {req.data_uri!r}: expected an S3 prefix, s3://bucket/path/")
        ctx.progress.info(f"dry run: {uri} is used as named; its object versions are pinned at launch")
        return datasets.Manifest(uri, "unpinned-dry-run", "", []), []
    directory = (
        Path(req.data_dir)
        if req.data_dir
        else datasets.synthetic(model, req.synthetic_rows or 0, req.seed, req.synthetic_drift)
    )
    try:
        files, content_id, prefix = datasets.local_version(directory, ctx.outputs.dataBucket, model)
        uploads = [
            {"split": split, "from": str(path) if req.data_dir else f"(synthetic) {path.name}", "to": uri}
            for split, path, uri in datasets.upload_targets(directory, files, prefix)
        ]
    finally:
        if not req.data_dir:
            shutil.rmtree(directory, ignore_errors=True)
    return datasets.Manifest(prefix, content_id, "", []), uploads


def load_run(ctx: Context, job: str) -> RunRecord:
    """The run record, brought up to date with its job and parsed: evaluate and register read it typed."""
    run = training.load_run(ctx.s3, ctx.outputs.artifactBucket, job)
    fresh = training.refresh_run(ctx.session, run, ctx.outputs.kmsKeyArn)
    return s3util.as_record(RunRecord, fresh, training.run_record_uri(ctx.outputs.artifactBucket, job))


def evaluate(ctx: Context, job: str) -> dict[str, Any]:
    return evaluate_run(ctx.session, ctx.outputs, load_run(ctx, job), ctx.gate(), ctx.progress)


def register(
    ctx: Context, job: str, *, inference_image: str | None = None, force_reason: str | None = None
) -> dict[str, Any]:
    run = load_run(ctx, job)
    image = inference_image or default_inference_image(ctx.outputs, run.git.get("commit", "latest")[:12])
    return register_run(
        ctx.session,
        ctx.outputs,
        run,
        inference_image=image,
        instance_types=serving_instance_types(ctx.config),
        tags=ctx.tags(),
        force_reason=force_reason,
        progress=ctx.progress,
    )


def train_gate_register(ctx: Context, req: TrainRequest, inference_image: str | None = None) -> dict[str, Any]:
    """Train, evaluate against the champion, and register only if the gate passes (never forced)."""
    run = train(ctx, req)
    report = evaluate(ctx, run["job"])
    out: dict[str, Any] = {
        "job": run["job"],
        "run": run,
        "gate": report["gate"],
        "evaluationReport": report["reportUri"],
    }
    if report["gate"]["passed"]:
        out["registered"] = register(ctx, run["job"], inference_image=inference_image)
    else:
        out["registered"] = None
        ctx.progress.step("gate failed: the retrained model is not registered")
    return out


# --- reproduce -----------------------------------------------------------------------------


def reproduce(
    ctx: Context, package_arn: str, *, local: bool, tolerance: float, poll_seconds: float = 30.0
) -> dict[str, Any]:
    """Re-run training from the package's lineage record; compare metrics with what it recorded."""
    package = registry.describe(ctx.sagemaker, package_arn)
    lineage_uri = package.metadata.get(registry.K_LINEAGE)
    if not lineage_uri:
        raise NotFoundError(f"{package_arn} carries no lineage record ({registry.K_LINEAGE})")
    raw = s3util.get_bytes(ctx.s3, lineage_uri)
    recorded_sha = package.metadata.get(registry.K_LINEAGE_SHA)
    if recorded_sha and s3util.sha256_bytes(raw) != recorded_sha:
        raise MlopsError(f"the lineage record {lineage_uri} does not match the SHA-256 on the package: it was changed")
    record = json.loads(raw)
    manifest = datasets.Manifest.from_dict(record["dataManifest"])
    if not local:
        manifest = _pinned_copy(ctx, manifest, package)
    hyper = {k: v for k, v in (record.get("hyperparameters") or {}).items() if k != "seed"}
    seed = int(record.get("seed") if record.get("seed") is not None else DEFAULT_SEED)
    current = lineage.git_state()
    recorded_commit = (record.get("git") or {}).get("commit")
    if recorded_commit and current["commit"] != recorded_commit:
        ctx.progress.warn(
            f"the code is at {current['commit'][:12]}, the package was trained at {recorded_commit[:12]}: "
            "check out that commit for a faithful rerun"
        )
    image = (record.get("trainingImage") or {}).get("pinned") or (record.get("trainingImage") or {}).get("uri")
    req = TrainRequest(
        model=package.model or record.get("model"),
        hyperparameters=hyper,
        seed=seed,
        local=local,
        instance_type=record.get("instanceType"),
        training_image=image,
        manifest=manifest,
        poll_seconds=poll_seconds,
    )
    ctx.progress.step(f"re-running training of {package_arn} from its lineage record")
    run = train(ctx, req)
    recorded = {**(record.get("metrics") or {}).get("training", {})}
    compared = {}
    for name, value in sorted(recorded.items()):
        if name in run.get("metrics", {}) and isinstance(value, (int, float)):
            got = float(run["metrics"][name])
            compared[name] = {
                "recorded": float(value),
                "reproduced": got,
                "delta": got - float(value),
                "match": abs(got - float(value)) <= tolerance,
            }
    if not compared:
        raise MlopsError(
            f"no metric of the rerun {run['job']} can be compared with the record (recorded: "
            f"{', '.join(recorded) or 'none'})"
        )
    match = all(c["match"] for c in compared.values())
    ctx.progress.step(("metrics MATCH" if match else "metrics DIFFER") + f" within {tolerance:g}")
    return {
        "package": package_arn,
        "rerunJob": run["job"],
        "match": match,
        "tolerance": tolerance,
        "metrics": compared,
        "recordedCommit": recorded_commit,
        "currentCommit": current["commit"],
    }


def _pinned_copy(ctx: Context, manifest: datasets.Manifest, package: registry.Package) -> datasets.Manifest:
    """SageMaker channels read prefixes, not versions: copy the recorded versions to a fresh prefix."""
    prefix = f"s3://{ctx.outputs.artifactBucket}/reproduce/{package.group}-{package.version}/"
    objects = []
    for obj in manifest.objects:
        rel = obj["uri"][len(manifest.split_uri(obj["split"])) :]
        data = s3util.get_bytes(ctx.s3, obj["uri"], obj.get("versionId"))
        if s3util.sha256_bytes(data) != obj["sha256"]:
            raise MlopsError(f"{obj['uri']} version {obj.get('versionId')} no longer matches its recorded SHA-256")
        copy = s3util.put_bytes(ctx.s3, f"{prefix}{obj['split']}/{rel}", data, kms_key=ctx.outputs.kmsKeyArn)
        objects.append({"split": obj["split"], **copy.to_dict()})
    return datasets.Manifest(prefix, manifest.id, manifest.created, objects)
