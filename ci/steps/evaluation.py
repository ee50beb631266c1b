"""`mlops evaluate`: the candidate against the champion on the same held-out data, and the gate.

The champion is the newest Approved package in the model's group. Both models are scored on
the candidate's held-out `test` split (the validation split when the data set has no test
split, and the report says so; the exact object versions the data manifest recorded), read
with the candidate model's schema (a code such as "01" stays text),
so the comparison is fair even when the champion was trained on older data; a champion whose
archive cannot be scored any more falls back to the metrics its own evaluation report holds,
and the report says so. The gate (`ml.evaluate.compare`) uses the stack's metric, margin and
minimums. The report is written to S3 whether the gate passes or not: a refusal is evidence.

Beside the champion, the report scores a linear baseline (`ml.baseline`) fitted on the run's
own train split (at most `ml.baseline.MAX_TRAIN_ROWS` rows) and scored on the same held-out
data, and says plainly when the candidate does not beat it. That is information for people
choosing a model family, not a gate: it changes no verdict.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.aws import registry
from ci.aws import s3 as s3util
from ci.errors import MlopsError, NotFoundError
from ci.progress import QUIET, Progress
from ci.steps import integrity
from ci.steps.container import CorruptArchiveError, unpack_model
from ci.steps.datasets import Manifest, download_split
from kernel.records import EvaluationReport, RunRecord
from kernel.stack_outputs import StackOutputs
from ml.jsonable import plain
from ml.lineage import ModelIntegrityError, verify_model_dir

if TYPE_CHECKING:
    from kernel.stack_config import GateConfig

# The section of SageMaker's model-quality statistics each task's metrics go in.
QUALITY_SECTION = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}


def report_uri(artifact_bucket: str, job_name: str) -> str:
    return f"s3://{artifact_bucket}/evaluations/{job_name}/evaluation.json"


def fetch_model(s3, model_data_url: str, dest: Path, package: registry.Package | None = None) -> Path:
    """Download and unpack a model archive; a corrupt one is a clear error, not a traceback.
    Given its package, every file must hash as registration recorded (ci/steps/integrity.py), else
    ModelTamperedError names the file and nothing of it is left unpacked. Without one (a run
    not registered yet), the files must match the lineage.json the training container wrote."""
    archive = dest / "model.tar.gz"
    s3util.download(s3, model_data_url, archive)
    if package is not None:
        expected = integrity.recorded(s3, package)
        check: Callable[[Path], None] = partial(
            integrity.verify, archive, expected=expected, where=f"the lineage record of {package.arn}"
        )
    else:
        check = _self_consistent
    try:
        return unpack_model(archive, dest / "model", verify=check)
    except CorruptArchiveError as err:
        raise MlopsError(f"corrupt model archive {model_data_url}: {err}") from err


def _self_consistent(model_dir: Path) -> None:
    try:
        verify_model_dir(model_dir)
    except ModelIntegrityError as err:
        raise integrity.ModelTamperedError(str(err)) from None


def load_frame(directory: Path, schema=None):
    """The split's files as one frame (CSV or Parquet), through ml.data so that types follow the
    model's schema, as they did in training."""
    from ml.data import load_channel

    return load_channel(directory, schema)


def held_out_split(manifest: Manifest) -> str:
    """`test` when the data set has one, else `validation` (which early stopping has seen)."""
    return "test" if manifest.objects_in("test") else "validation"


def evaluate_run(
    session,
    outputs: StackOutputs,
    run: RunRecord,
    gate: GateConfig,  # the stack's mlops:gate
    progress: Progress = QUIET,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Score candidate and champion, apply the gate, write the report; returns the report."""
    from ml.evaluate import compare, evaluate
    from ml.model import load_model

    if run.status != "Completed":
        raise MlopsError(
            f"training job {run.job} is {run.status}: only a Completed job can be evaluated"
            + (f" ({run.failureReason})" if run.failureReason else "")
        )
    model = run.model
    group = registry.group_of(outputs, model)
    s3 = session.client("s3")
    sm = session.client("sagemaker")
    work = Path(work_dir or tempfile.mkdtemp(prefix="mlops-evaluate-"))
    try:
        manifest = Manifest.from_dict(run.dataset)
        split = held_out_split(manifest)
        progress.step(f"evaluating {run.job} on the {split} split of data set {manifest.id}")
        if split != "test":
            progress.info("the data set has no test split: scoring on validation, which early stopping has seen")
        registered = registry.find_by_training_job(sm, group, run.job, registry.job_started(run))
        candidate_dir = fetch_model(s3, run.modelDataUrl, work / "candidate", registered)
        candidate_model = load_model(candidate_dir)
        frame = load_frame(download_split(s3, manifest, split, work / split), candidate_model.schema)
        candidate = plain(evaluate(candidate_model, frame))
        progress.info("candidate: " + _summary(candidate, gate.metric))

        champion_pkg = registry.champion(sm, group)
        champion_block: dict[str, Any] | None = None
        champion_metrics = None
        if champion_pkg is not None and champion_pkg.training_job == run.job:
            champion_pkg = None  # re-evaluating the champion itself: nothing to compare against
        if champion_pkg is not None:
            champion_metrics, source = _champion_metrics(s3, champion_pkg, frame, work / "champion", evaluate)
            champion_block = {
                "arn": champion_pkg.arn,
                "trainingJob": champion_pkg.training_job,
                "metrics": champion_metrics,
                "source": source,
            }
            progress.info(f"champion {champion_pkg.arn}: " + _summary(champion_metrics, gate.metric) + f" ({source})")
        else:
            progress.info(f"no Approved package in {group}: the candidate is measured against the minimums alone")
        baseline_block = _baseline(s3, manifest, candidate_model, candidate, frame, gate.metric, work, progress)
        result = compare(candidate, champion_metrics, gate.metric, gate.minImprovement, gate.minimums)
        report = {
            "job": run.job,
            "model": model,
            "stack": outputs.stackName,
            "modelDataUrl": run.modelDataUrl,
            "evaluatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "testSet": {
                "dataset": manifest.id,
                "split": split,
                "objects": manifest.objects_in(split),
                "rows": len(frame),
            },
            "candidate": {"metrics": candidate},
            "champion": champion_block,
            "baseline": baseline_block,
            "gate": {
                "metric": gate.metric,
                "margin": gate.minImprovement,
                "minimums": gate.minimums,
                **plain(result.to_dict()),
            },
            # SageMaker's model-quality statistics shape, so the registry console can show the numbers.
            QUALITY_SECTION[candidate_model.task]: {
                k: {"value": v, "standard_deviation": "NaN"}
                for k, v in candidate.items()
                if isinstance(v, (int, float))
            },
        }
        uri = report_uri(outputs.artifactBucket, run.job)
        version = s3util.put_json(s3, uri, EvaluationReport.from_dict(report, uri).to_dict(), outputs.kmsKeyArn)
        report["reportUri"] = uri
        report["reportVersionId"] = version.version_id
        verdict = "PASSED" if result.passed else "FAILED"
        progress.step(f"gate {verdict}: {result.reason}")
        return report
    finally:
        if work_dir is None:  # our temporary folder (models, data): gone on every way out
            shutil.rmtree(work, ignore_errors=True)


def _baseline(s3, manifest: Manifest, model, candidate: dict[str, Any], held_out, metric: str, work: Path, progress):
    """The linear baseline's report block: fitted on the run's train split, scored on `held_out`.
    Information only; a data set without a train split, or a baseline that cannot be fitted,
    is said and skipped, never a failed evaluation."""
    from ml.baseline import FAMILY, MAX_TRAIN_ROWS, beats, fit_and_score

    if not manifest.objects_in("train"):
        progress.info(f"data set {manifest.id} has no train split: no linear baseline to compare with")
        return {"family": FAMILY, "skipped": "the data set has no train split"}
    train = load_frame(download_split(s3, manifest, "train", work / "train"), model.schema)
    try:
        fitted = fit_and_score(model, train, held_out)
    except ValueError as err:
        progress.info(f"no linear baseline: {err}")
        return {"family": FAMILY, "skipped": str(err)}
    metrics = plain(fitted.metrics)
    better = beats(candidate, metrics, metric)
    rows = (
        f"a seeded sample of {fitted.train_rows} of {fitted.train_rows_available} train rows (cap {MAX_TRAIN_ROWS})"
        if fitted.capped
        else f"{fitted.train_rows} train rows"
    )
    progress.info(f"linear baseline ({fitted.estimator}, {rows}): " + _summary(metrics, metric))
    if better is False:
        progress.warn(
            f"the candidate does not beat a linear baseline ({metric} {candidate[metric]:.4f} vs "
            f"{metrics[metric]:.4f}): a simpler model would do"
        )
    elif better is None:
        progress.info(f"the candidate and the linear baseline cannot be compared on {metric}")
    return {
        "family": FAMILY,
        "estimator": fitted.estimator,
        "trainSplit": "train",
        "trainRows": fitted.train_rows,
        "trainRowsAvailable": fitted.train_rows_available,
        "trainRowsCap": MAX_TRAIN_ROWS,
        "metrics": metrics,
        "candidateBeatsBaseline": better,
    }


def _champion_metrics(s3, package, frame, dest: Path, evaluate) -> tuple[dict[str, Any], str]:
    """Re-scored when it can be; a champion that no longer loads (or predates digests) falls
    back to its recorded metrics. A champion whose files changed stops the evaluation."""
    try:
        model_dir = fetch_model(s3, package.model_data_url, dest, package)
        return plain(evaluate(model_dir, frame)), "re-scored on the candidate's held-out data"
    except integrity.ModelTamperedError:
        raise
    except Exception as err:
        report_uri_ = package.metadata.get(registry.K_REPORT)
        if not report_uri_:
            raise MlopsError(f"cannot score champion {package.arn} ({err}) and it has no evaluation report") from err
        recorded = s3util.get_json(s3, report_uri_)
        return dict(recorded["candidate"]["metrics"]), f"recorded in {report_uri_} (re-scoring failed: {err})"


def load_report(s3, artifact_bucket: str, job_name: str) -> EvaluationReport:
    uri = report_uri(artifact_bucket, job_name)
    try:
        report = s3util.get_json(s3, uri)
    except NotFoundError as err:
        raise NotFoundError(
            f"no evaluation report for {job_name} at {uri}; run `mlops evaluate --job {job_name}` first"
        ) from err
    return s3util.as_record(EvaluationReport, {**report, "reportUri": uri}, uri)


def _summary(metrics: dict[str, Any], main: str) -> str:
    from ml.evaluate import METRIC_NAMES

    keys = [main] + [k for k in METRIC_NAMES if k != main]
    return ", ".join(f"{k}={metrics[k]:.4f}" for k in keys if isinstance(metrics.get(k), (int, float)))
