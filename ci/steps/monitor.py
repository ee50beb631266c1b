"""`mlops monitor`: captured traffic -> drift score -> the metric the stack's alarm watches.

Reads the endpoint's data capture (SageMaker's JSON Lines under
`s3://<captureBucket>/<model>/<endpoint>/<variant>/yyyy/mm/dd/hh/`), compares it with the
baseline stored with the deployed package, and publishes the score under exactly the
namespace, metric name and dimensions the stack's drift alarm declares (from the outputs, not
from constants here). Drift means what `ml.drift` says it means, the same for `mlops drift`,
this command and the alarm: the published score is the largest PSI among columns whose test is
significant, and "drifted" is that score above the stack's threshold. Fewer captured rows than
the minimum is "not enough data": nothing is published, nobody is notified, nothing retrains.
On drift it notifies the alert topic itself (an emulator never evaluates alarms, and a person
should not have to wait an alarm period to hear about it) and, unless told not to, retrains on
the newest data through the same gates. No captured data is an error that publishes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ci.aws import clients as aws
from ci.aws import registry
from ci.aws import s3 as s3util
from ci.errors import MlopsError, NotFoundError
from ci.progress import QUIET, Progress
from kernel.stack_outputs import StackOutputs
from ml.jsonable import plain

PUBLISH_BACKOFF_S = 0.2  # first wait before sending a throttled publication again (doubles, capped)


def capture_prefix(outputs: StackOutputs, model: str, endpoint: str) -> str:
    return f"s3://{outputs.captureBucket}/{model}/{endpoint}/"


def drift_dimensions(outputs: StackOutputs, model: str, endpoint: str) -> dict[str, str]:
    dims = (outputs.monitoring.driftDimensions or {}).get(model)
    return dict(dims) if dims else {"EndpointName": endpoint}


def read_captured_lines(s3, prefix: str, since: datetime | None) -> tuple[list[str], list[str]]:
    """All capture lines under the prefix written since `since`; (lines, object URIs)."""
    bucket, _ = s3util.split_uri(prefix)
    lines: list[str] = []
    uris: list[str] = []
    for obj in s3util.list_objects(s3, prefix):
        if since is not None and obj["LastModified"] < since:
            continue
        uri = f"s3://{bucket}/{obj['Key']}"
        text = s3util.get_bytes(s3, uri).decode("utf-8", errors="replace")
        lines.extend(ln for ln in text.splitlines() if ln.strip())
        uris.append(uri)
    return lines, uris


def monitor(
    session,
    outputs: StackOutputs,
    model: str,
    *,
    since_hours: float | None = 24.0,
    retrain: Callable[[registry.Package], dict[str, Any]] | None = None,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    """`retrain(package)` runs when drift passes the threshold, given the deployed package."""
    from ml.drift import Baseline, drift_report, read_capture

    # The window starts now, before any AWS call: computed after them, a slow answer would slide it
    # past traffic that was just captured (S3's LastModified has whole seconds).
    since = datetime.now(UTC) - timedelta(hours=since_hours) if since_hours else None

    endpoint = outputs.endpoints.get(model)
    package_arn = outputs.approvedPackages.get(model, "")
    if not endpoint or not package_arn:
        raise NotFoundError(
            f"model {model!r} is not deployed in stack {outputs.stackName} (no endpoint); "
            "promote a package there and deploy it first"
        )
    s3 = session.client("s3")
    package = registry.describe(session.client("sagemaker"), package_arn)
    baseline_uri = package.metadata.get(registry.K_BASELINE)
    if not baseline_uri:
        raise NotFoundError(f"the deployed package {package_arn} has no drift baseline ({registry.K_BASELINE})")
    baseline = Baseline(s3util.get_json(s3, baseline_uri))

    prefix = capture_prefix(outputs, model, endpoint)
    progress.step(
        f"reading captured traffic of {endpoint} from {prefix}"
        + (f" (since {since.isoformat(timespec='seconds')})" if since else "")
    )
    lines, objects = read_captured_lines(s3, prefix, since)
    if not lines:
        raise NotFoundError(
            f"no captured data for endpoint {endpoint} under {prefix}"
            + (f" since {since.isoformat(timespec='seconds')}" if since else "")
            + "; is data capture on (mlops:serving.dataCaptureSamplingPercent) and is there traffic? "
            "Nothing was published"
        )
    frame = read_capture(lines, schema=baseline.schema())  # requests typed as the server typed them
    if len(frame) == 0:
        raise NotFoundError(f"the captured data of {endpoint} holds no request rows; nothing was published")
    threshold = float(outputs.monitoring.driftThreshold)
    report = drift_report(baseline, frame, threshold=threshold)
    score = float(report.score)
    drifted = report.drifted
    progress.info(
        f"{len(frame)} captured rows from {len(objects)} objects; {report.status}: drift score {score:.4f} "
        f"(threshold {threshold:g})"
    )
    dims = drift_dimensions(outputs, model, endpoint)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    report_doc = {
        "endpoint": endpoint,
        "model": model,
        "package": package_arn,
        "stack": outputs.stackName,
        "score": score,
        "threshold": threshold,
        "drifted": drifted,
        "status": report.status,
        "minRows": report.min_rows,
        "rows": len(frame),
        "captureObjects": objects,
        "baseline": baseline_uri,
        "at": now.isoformat(timespec="seconds"),
        "report": plain(report.to_dict()),
    }
    report_uri = f"s3://{outputs.artifactBucket}/monitoring/{endpoint}/{stamp}.json"
    if not report.enough_data:
        s3util.put_json(s3, report_uri, report_doc, outputs.kmsKeyArn)
        progress.step(
            f"not enough data: {len(frame)} captured rows, at least {report.min_rows} are needed for a drift "
            "decision; nothing was published, notified or retrained"
        )
        result: dict[str, Any] = {
            **report_doc,
            "reportUri": report_uri,
            "metric": None,
            "notified": None,
            "retrain": None,
        }
        result.pop("report")
        result["perFeature"] = {}
        return result

    metric_data = [
        {
            "MetricName": outputs.monitoring.driftMetricName,
            "Dimensions": _dims(dims),
            "Value": score,
            "Timestamp": now,
            "Unit": "None",
        }
    ]
    for feature, value in sorted(_per_feature_scores(report).items()):
        metric_data.append(
            {
                "MetricName": outputs.monitoring.driftMetricName,
                "Dimensions": _dims({**dims, "Feature": feature}),
                "Value": value,
                "Timestamp": now,
                "Unit": "None",
            }
        )
    cloudwatch = _single_attempt_client(session, "cloudwatch")
    for start in range(0, len(metric_data), 500):  # PutMetricData takes up to 1000 data points a call
        batch = metric_data[start : start + 500]
        _send_once(partial(cloudwatch.put_metric_data, Namespace=outputs.monitoring.driftNamespace, MetricData=batch))
    progress.step(
        f"published {outputs.monitoring.driftNamespace}/{outputs.monitoring.driftMetricName} {dims} = {score:.4f}"
    )

    s3util.put_json(s3, report_uri, report_doc, outputs.kmsKeyArn)
    result = {
        **report_doc,
        "reportUri": report_uri,
        "metric": {
            "namespace": outputs.monitoring.driftNamespace,
            "name": outputs.monitoring.driftMetricName,
            "dimensions": dims,
            "value": score,
        },
        "notified": None,
        "retrain": None,
    }
    result.pop("report")
    result["perFeature"] = _per_feature_scores(report)
    if not drifted:
        progress.step("no drift past the threshold: nothing else to do")
        return result
    top = sorted(result["perFeature"].items(), key=lambda kv: kv[1], reverse=True)[:5]
    message = {
        "event": "mlops.drift",
        "stack": outputs.stackName,
        "endpoint": endpoint,
        "model": model,
        "package": package_arn,
        "score": score,
        "threshold": threshold,
        "topFeatures": dict(top),
        "report": report_uri,
        "action": "retraining on the newest data" if retrain else "retraining not requested (--no-retrain)",
    }
    sns = _single_attempt_client(session, "sns")
    sent = _send_once(
        lambda: sns.publish(
            TopicArn=outputs.alertTopicArn,
            Subject=f"Drift on {endpoint}: {score:.3f} > {threshold:g}"[:100],
            Message=json.dumps(message, indent=2),
            MessageAttributes={"event": {"DataType": "String", "StringValue": "mlops.drift"}},
        )
    )
    result["notified"] = {"topic": outputs.alertTopicArn, "messageId": sent["MessageId"]}
    progress.step(f"drift past the threshold: notified {outputs.alertTopicArn}")
    if retrain is not None:
        progress.step("retraining on the newest data (same gates as any candidate)")
        try:
            result["retrain"] = retrain(package)
        except MlopsError as err:
            result["retrain"] = {"error": str(err)}
            raise MlopsError(f"drift notified, but retraining failed: {err}", details={"monitor": result}) from err
    return result


def _single_attempt_client(session, service: str):
    """A client that sends each call once. A publication whose answer is lost (dropped, late) was
    still made, and botocore's retry would make it again: two data points, two alerts per run."""
    from botocore.config import Config

    return session.client(service, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _send_once(call: Callable[[], Any]) -> Any:
    """`call()`, sent again only after a throttling refusal (the request was not served); a
    failure that may have been served (a lost answer, a 5xx) is raised: run the command again."""
    from botocore.exceptions import ClientError

    attempts = aws.max_attempts()
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ClientError as err:
            if attempt == attempts or not aws.is_throttling(err):
                raise
            time.sleep(min(PUBLISH_BACKOFF_S * 2 ** (attempt - 1), 4.0))
    raise AssertionError("unreachable")


def _dims(dims: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in dims.items()]


def _per_feature_scores(report) -> dict[str, float]:
    per = getattr(report, "per_feature", {}) or {}
    out = {}
    for name, value in per.items():
        score: Any = value.get("psi", value.get("score")) if isinstance(value, dict) else getattr(value, "psi", value)
        try:
            out[str(name)] = float(score)
        except (TypeError, ValueError):
            continue
    return out
