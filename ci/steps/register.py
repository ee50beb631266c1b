"""`mlops register`: turn a gated training run into a model package, once.

Refuses when the gate failed (unless forced, with the reason recorded on the package), when
the job did not complete, when there is no evaluation report, or when the model archive does
not unpack into a model whose files match the lineage.json it carries. Otherwise it stores
the drift baseline and the merged lineage record beside the model, and creates the package
(inference image pinned by digest when ECR knows
it, content and instance types, model metrics pointing at the evaluation report, lineage as
customer metadata, the SHA-256 of the archive and of every file in it: ci/steps/integrity.py) as
PendingManualApproval. The same training job never makes two packages.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.aws import registry
from ci.aws import s3 as s3util
from ci.aws.registry import job_started
from ci.errors import RefusedError, UsageError
from ci.progress import QUIET, Progress
from ci.steps import integrity, lineage
from ci.steps.evaluation import fetch_model, load_report
from ci.steps.training import pin_image, resolve_digest
from kernel.records import EvaluationReport, RunRecord
from kernel.stack_outputs import StackOutputs
from ml.lineage import ENV_MODEL_DIGEST

if TYPE_CHECKING:
    from kernel.stack_config import StackConfig

CONTENT_TYPES = ["text/csv", "application/json", "application/jsonlines"]  # what ml/serve.py reads
RESPONSE_TYPES = ["application/json", "application/jsonlines"]  # what it answers


def default_inference_image(outputs: StackOutputs, tag: str) -> str:
    """This environment's serving image (ml/serve.py behind SageMaker's inference contract)."""
    return f"{outputs.ecrRepositoryUrl}:{tag}"


def register_run(
    session,
    outputs: StackOutputs,
    run: RunRecord,
    *,
    inference_image: str,
    instance_types: list[str],
    tags: dict[str, str],
    force_reason: str | None = None,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    model = run.model
    group = registry.group_of(outputs, model)
    sm = session.client("sagemaker")
    s3 = session.client("s3")
    started = job_started(run)
    existing = registry.find_by_training_job(sm, group, run.job, started)
    if existing is not None:
        progress.step(f"{run.job} is already registered as {existing.arn}; nothing to do")
        return {"package": existing.to_dict(), "created": False}
    if run.status != "Completed":
        raise RefusedError(
            f"training job {run.job} is {run.status}: nothing to register"
            + (f" ({run.failureReason})" if run.failureReason else "")
        )
    report = load_report(s3, outputs.artifactBucket, run.job)
    gate = report.gate
    if not gate.passed:
        if not force_reason:
            raise RefusedError(
                f"the gate failed for {run.job}: {gate.reason}; register anyway only with --force --reason 'why'",
                details={"gate": gate.to_dict()},
            )
        progress.warn(f"registering despite a failed gate, forced: {force_reason}")
    elif force_reason:
        progress.info("--force given but the gate passed; the reason is recorded anyway")
    options = dict(
        inference_image=inference_image,
        instance_types=instance_types,
        tags=tags,
        force_reason=force_reason,
        progress=progress,
    )

    with tempfile.TemporaryDirectory(prefix="mlops-register-") as work:  # the unpacked model is not kept
        return _register_checked(session, outputs, run, report, Path(work), **options)


def _register_checked(
    session,
    outputs,
    run: RunRecord,
    report: EvaluationReport,
    work: Path,
    *,
    inference_image,
    instance_types,
    tags,
    force_reason,
    progress,
) -> dict[str, Any]:
    """The checked, gated run: store baseline and lineage beside the model, create the package."""
    model, gate, started = run.model, report.gate, job_started(run)
    group = outputs.modelPackageGroups[model]
    sm, s3 = session.client("sagemaker"), session.client("s3")
    progress.step(f"checking the model archive {run.modelDataUrl}")
    model_dir = fetch_model(s3, run.modelDataUrl, work)  # its files match the container's lineage.json
    digests = integrity.ModelDigests.measure(work / "model.tar.gz", model_dir)
    output_root = run.modelDataUrl.rsplit("/output/", 1)[0]
    baseline_uri = ""
    if (model_dir / "baseline.json").exists():
        baseline_uri = s3util.join(output_root, "baseline.json")
        s3util.upload_file(s3, model_dir / "baseline.json", baseline_uri, outputs.kmsKeyArn)
    else:
        progress.warn("the model has no baseline.json: `mlops monitor` will have nothing to compare against")

    ecr = session.client("ecr")
    digest = resolve_digest(ecr, inference_image)
    image = pin_image(inference_image, digest)
    if not digest:
        progress.warn(f"no digest for {inference_image} in ECR; the package references the tag")
    record = lineage.merge(
        lineage.read_container_record(model_dir),
        {
            "git": run.git,
            "dataManifest": run.dataset,
            "trainingImage": {"uri": run.imageUri, "digest": run.imageDigest, "pinned": run.pinnedImage},
            "inferenceImage": {"uri": inference_image, "digest": digest, "pinned": image},
            "hyperparameters": run.hyperparameters,
            "seed": run.seed,
            "stack": outputs.stackName,
            "trainingJob": run.job,
            "mode": run.mode,
            "instanceType": run.instanceType,
            "metrics": {"training": run.metrics, "evaluation": report.candidate_metrics},
            "evaluationReport": report.uri,
            "model": {"uri": run.modelDataUrl, **digests.to_record()},
        },
    )
    lineage_uri = s3util.join(output_root, "lineage.json")
    stored = s3util.put_bytes(s3, lineage_uri, lineage.canonical_bytes(record), "application/json", outputs.kmsKeyArn)

    gate_state = "passed" if gate.passed else "forced"
    metadata = {
        registry.K_MODEL: model,
        registry.K_STACK: outputs.stackName,
        registry.K_GATE: gate_state,
        registry.K_GATE_REASON: gate.reason[: registry.MAX_VALUE_LEN],
        registry.K_REPORT: report.uri,
        registry.K_LINEAGE: lineage_uri,
        registry.K_LINEAGE_SHA: stored.sha256,
        **integrity.metadata(digests),
        "lineage:gitCommit": str(record["git"].get("commit", "unknown")),
        "lineage:gitDirty": str(record["git"].get("dirty")).lower(),
        "lineage:dataManifest": record["dataManifest"].get("manifestUri", "") or record["dataManifest"].get("uri", ""),
        "lineage:dataSha256": record["dataManifest"].get("sha256", ""),
        "lineage:trainingImage": str(run.pinnedImage or ""),
        "lineage:seed": str(run.seed),
    }
    if baseline_uri:
        metadata[registry.K_BASELINE] = baseline_uri
    if force_reason:
        metadata[registry.K_FORCE_REASON] = force_reason[:256]
    # Console copies of the hyperparameters, as many as fit; lineage.json (its SHA-256 above) has them all.
    hyperparameters = {f"{registry.HP_PREFIX}{k}": str(v) for k, v in sorted(run.hyperparameters.items())}
    description = f"{model} from {run.job} ({outputs.stackName}); gate {gate_state}: {gate.reason}"
    package, created = registry.register(
        sm,
        registry.Registration(
            group=group,
            training_job=run.job,
            model_data_url=run.modelDataUrl,
            image=image,
            content_types=CONTENT_TYPES,
            response_types=RESPONSE_TYPES,
            realtime_instance_types=instance_types,
            evaluation_report_uri=report.uri,
            metadata=metadata,
            description=description,
            tags={**tags, "mlops:model": model, "mlops:stack": outputs.stackName},
            job_started=started,
            optional_metadata=hyperparameters,
            environment=serving_environment(digests),
        ),
        create_client=registry.single_attempt_client(session),
    )
    progress.step(f"registered {package.arn} ({package.status})" if created else f"already registered: {package.arn}")
    return {"package": package.to_dict(), "created": created, "lineageUri": lineage_uri, "baselineUri": baseline_uri}


def serving_environment(digests: integrity.ModelDigests) -> dict[str, str]:
    """The serving container checks lineage.json against this digest, then every file against it."""
    return {ENV_MODEL_DIGEST: digests.lineage_sha256} if digests.lineage_sha256 else {}


def require_reason(force: bool, reason: str | None) -> str | None:
    if force and not (reason or "").strip():
        raise UsageError("--force needs --reason 'why the gate is overridden'; it is recorded on the package")
    if reason and not force:
        raise UsageError("--reason is only for --force")
    return reason.strip() if force and reason else None


def serving_instance_types(stack_config: StackConfig) -> list[str]:
    types = [stack_config.serving.instanceType]
    return list(dict.fromkeys(types + ["ml.m5.large", "ml.m5.xlarge"]))
