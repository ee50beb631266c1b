"""A stand-in for SageMaker's training service behind moto's server.

moto accepts `CreateTrainingJob` and marks it Completed at once without running anything.
This drives each job as SageMaker would, one step per `DescribeTrainingJob`: Starting ->
Downloading -> Training (the job's own code channel, i.e. the `ml/` that the SDK uploaded,
runs under the container contract on its S3 channels; its lines go to CloudWatch Logs) ->
Uploading -> Completed with `model.tar.gz` at `S3ModelArtifacts` and FinalMetricDataList
scraped with the job's own metric definitions. Each state lasts at least `min_state_seconds`.
Scripted outcomes: Failed (with SageMaker's reason),
Stopped, or a corrupt model archive.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from ci.steps.container import package_model, run_training

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class SageMakerSimulator:
    def __init__(self, endpoint: str, region: str = "us-east-1"):
        self.endpoint = endpoint
        self.region = region
        self.outcome = "Completed"  # Completed | Failed | Stopped | Corrupt
        # (model.tar.gz bytes, log lines) of a finished run: jobs then "train" by uploading them
        # instead of running the container again (tests that need a model, not a training run).
        self.replay: tuple[bytes, list[str]] | None = None
        self.results: dict[str, tuple[bytes, list[str]]] = {}  # job -> what its real run produced
        self.failure_reason = "AlgorithmError: ClientError: out of memory on GPU 0"
        self.min_state_seconds = 0.3
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, dict[str, Any]] = {}  # what each CreateTrainingJob asked for
        self._lock = threading.Lock()

    def _client(self, service: str):
        session = boto3.session.Session(
            region_name=self.region, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        return session.client(service, endpoint_url=self.endpoint)

    def install(self, monkeypatch) -> SageMakerSimulator:
        from moto.sagemaker import models

        sim = self
        original_init = models.FakeTrainingJob.__init__
        original_describe = models.SageMakerModelBackend.describe_training_job

        def init(job, *args, **kwargs):
            spec = dict(kwargs.get("algorithm_specification") or {})
            metric_definitions = list(spec.get("MetricDefinitions") or [])
            original_init(job, *args, **kwargs)
            job.algorithm_specification["MetricDefinitions"] = metric_definitions  # moto overwrites them
            job.training_job_status, job.secondary_status = "InProgress", "Starting"
            job.final_metric_data_list = []
            job.secondary_status_transitions = [_transition("Starting", "Preparing the instances for training")]
            with sim._lock:
                sim.requests[job.training_job_name] = dict(kwargs.items())
                sim.jobs[job.training_job_name] = {
                    "job": job,
                    "step": 0,
                    "thread": None,
                    "outcome": sim.outcome,
                    "since": time.monotonic(),
                }

        def describe(backend, training_job_name):
            sim._advance(training_job_name)
            return original_describe(backend, training_job_name)

        monkeypatch.setattr(models.FakeTrainingJob, "__init__", init)
        monkeypatch.setattr(models.SageMakerModelBackend, "describe_training_job", describe)
        return self

    # --- the state machine -----------------------------------------------------------------

    def _advance(self, name: str) -> None:
        with self._lock:
            state = self.jobs.get(name)
        if state is None:
            return
        job = state["job"]
        if job.training_job_status in ("Completed", "Failed", "Stopped"):
            return
        if time.monotonic() - state["since"] < self.min_state_seconds:
            return  # each state lasts a moment, as on SageMaker, whoever polls how often
        state["since"] = time.monotonic()
        step = state["step"]
        state["step"] += 1
        if step == 0:
            self._set(job, "InProgress", "Downloading", "Downloading input data")
        elif state["thread"] is None:
            self._set(job, "InProgress", "Training", "Training image download completed. Training in progress.")
            if state["outcome"] == "Stopped":
                self._set(job, "Stopped", "Stopped", "Training job stopped")
                job.failure_reason = "Training job stopped by the user (StopTrainingJob)"
                return
            if state["outcome"] == "Failed":  # as SageMaker reports a container that exited non-zero
                self._set(job, "Failed", "Failed", self.failure_reason)
                job.failure_reason = self.failure_reason
                return
            state["thread"] = threading.Thread(target=self._run, args=(state,), daemon=True)
            state["thread"].start()
        elif not state["thread"].is_alive():
            result = state.get("result")
            if state.get("error") or result is None or not result["ok"]:
                reason = state.get("error") or (result or {}).get("reason") or "unknown"
                self._set(job, "Failed", "Failed", reason)
                job.failure_reason = reason
            elif job.secondary_status != "Uploading":
                self._set(job, "InProgress", "Uploading", "Uploading generated training model")
            else:
                job.final_metric_data_list = result["final_metrics"]
                job.billable_time_in_seconds = max(1, int(result["seconds"]))
                self._set(job, "Completed", "Completed", "Training job completed")

    def _set(self, job, status: str, secondary: str, message: str) -> None:
        job.training_job_status, job.secondary_status = status, secondary
        job.secondary_status_transitions.append(_transition(secondary, message))

    # --- the "container" -------------------------------------------------------------------

    def _run(self, state: dict[str, Any]) -> None:
        job = state["job"]
        try:
            state["result"] = self._train(job, state["outcome"])
        except Exception as err:
            state["error"] = f"simulator error: {err}"

    def _train(self, job, outcome: str) -> dict[str, Any]:
        s3 = self._client("s3")
        logs = self._client("logs")
        base = Path(tempfile.mkdtemp(prefix=f"sim-{job.training_job_name}-"))
        channels: dict[str, Path] = {}
        code_dir = None
        for channel in job.input_data_config:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            dest = base / "downloaded" / channel["ChannelName"]
            _download_prefix(s3, uri, dest)
            if channel["ChannelName"] == "code":
                code_dir = dest
            elif channel["ChannelName"] != "sm_drivers":
                channels[channel["ChannelName"]] = dest
        assert code_dir is not None and (code_dir / "ml" / "train.py").exists(), (
            "the SDK did not upload ml/ as the code channel"
        )
        stream = f"{job.training_job_name}/algo-1-{int(time.time())}"
        try:
            logs.create_log_group(logGroupName=LOG_GROUP)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        bucket, key = job.model_artifacts["S3ModelArtifacts"][5:].split("/", 1)
        if outcome == "Corrupt" or self.replay is not None:
            body, lines = (b"this is not a gzip tar archive", []) if outcome == "Corrupt" else self.replay
            logs.put_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": ln} for ln in lines or ["(replayed)"]],
            )
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return {
                "ok": True,
                "final_metrics": _scrape(job.algorithm_specification["MetricDefinitions"], lines),
                "seconds": 1,
            }
        lines: list[str] = []
        hyperparameters = dict(job.hyper_parameters or {})
        started = time.monotonic()
        result = run_training(base / "opt_ml", hyperparameters, channels, code_dir=code_dir, on_line=lines.append)
        now = int(time.time() * 1000)
        if lines:
            logs.put_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )
        if not result.succeeded:
            return {"ok": False, "reason": f"AlgorithmError: {result.failure_reason}"}
        archive = package_model(result.model_dir, base / "model.tar.gz").read_bytes()
        s3.put_object(Bucket=bucket, Key=key, Body=archive)
        self.results[job.training_job_name] = (archive, lines)
        return {
            "ok": True,
            "final_metrics": _scrape(job.algorithm_specification["MetricDefinitions"], lines),
            "seconds": time.monotonic() - started,
        }


def _transition(status: str, message: str) -> dict[str, Any]:
    from moto.core.utils import utcnow

    now = utcnow()
    return {"Status": status, "StartTime": now, "EndTime": now, "StatusMessage": message}


def _download_prefix(s3, uri: str, dest: Path) -> None:
    bucket, prefix = uri[5:].split("/", 1)
    dest.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :].lstrip("/")
            if not rel:
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())


def _scrape(definitions: list[dict[str, str]], lines: list[str]) -> list[dict[str, Any]]:
    """What SageMaker does with metric definitions: the last match of each regex in the logs."""
    from moto.core.utils import utcnow

    final = []
    for definition in definitions:
        pattern = re.compile(definition["Regex"])
        values = [float(m.group(1)) for line in lines for m in [pattern.search(line)] if m]
        if values:
            final.append({"MetricName": definition["Name"], "Value": values[-1], "Timestamp": utcnow()})
    return final
