"""`mlops demo`: the whole lifecycle on this machine, against moto on loopback, with no account.

Provision the `local` stack (the local backend), train with the local runner on a small
synthetic data set, evaluate against the (absent) champion, register, approve, promote into a
temporary copy of `stacks/Pulumi.local.yaml`, deploy, send traffic through `ml.serve` with data
capture (first like the training data, then drifted), run the monitor twice, and see the drift
alert arrive in an SQS queue subscribed to the alert topic. Ends with an HTML report (linking
the model card) and, with --json, a summary.

The emulator plays two parts it does not have: SageMaker hosting (ml.serve answers the
requests) and CloudWatch's alarm evaluation (the demo compares the published datapoint with the
alarm's threshold and sets the alarm state, saying so in the report). Everything else is the
same code CI runs.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci.errors import MlopsError, UsageError
from ci.progress import QUIET, Progress
from kernel.paths import REPO_ROOT

DEMO_HP = {
    "model": "gbdt",
    "gbdt_max_iter": "60",
    "importance_repeats": "2",
    "importance_max_rows": "500",
    "baseline_sample": "2000",
}
STACK = "local"
MODEL = "churn"


@contextmanager
def _emulator(progress: Progress) -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        raise UsageError(
            "the demo needs the AWS emulator: pip install 'moto[server]' (it is in requirements.lock)"
        ) from err

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    progress.step(f"AWS emulator (moto) listening on {url}")
    try:
        yield url
    finally:
        server.stop()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Steps:
    """Times each step for the report."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        row: dict[str, Any] = {"step": name, "status": "running", "detail": ""}
        self.rows.append(row)
        self.progress.step(f"demo: {name}")
        started = time.monotonic()
        try:
            yield row
            row["status"] = "ok"
        except BaseException as err:
            row["status"] = "failed"
            row["detail"] = str(err)
            raise
        finally:
            row["seconds"] = round(time.monotonic() - started, 2)


def run_demo(out_dir: Path, rows: int = 2000, progress: Progress = QUIET, keep_server: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlops-demo-"))
    stacks_dir = work / "stacks"
    shutil.copytree(REPO_ROOT / "stacks", stacks_dir)
    steps = Steps(progress)
    summary: dict[str, Any] = {"stack": STACK, "model": MODEL, "stacksDir": str(stacks_dir)}
    try:
        with (
            _emulator(progress) as url,
            _environment(
                {
                    "AWS_ENDPOINT_URL": url,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "MLOPS_STATE_DIR": str(work / "state"),
                    "MLOPS_STACKS_DIR": str(stacks_dir),
                }
            ),
        ):
            summary["emulator"] = url
            _lifecycle(steps, summary, rows, out_dir, progress, work)
    except MlopsError as err:
        raise MlopsError(f"{err} (the report shows the steps so far: {out_dir / 'index.html'})") from err
    finally:
        summary["steps"] = steps.rows
        summary["seconds"] = round(time.monotonic() - started, 1)
        report = out_dir / "index.html"
        report.write_text(render_report(summary))
        summary["report"] = str(report)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str))
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _lifecycle(steps: Steps, summary: dict[str, Any], rows: int, out_dir: Path, progress: Progress, work: Path) -> None:
    """The steps; everything temporary under `work`, which run_demo removes on every way out."""
    from ci.aws import registry
    from ci.emulator import pulumi_up as local
    from ci.emulator.hosting import send_traffic
    from ci.steps import pipeline
    from ci.steps.evaluation import fetch_model
    from ci.steps.monitor import monitor
    from ci.steps.promote import promote
    from ml.data import make_synthetic

    with steps.step("provision the local stack in the emulator") as row:
        outputs = local.provision(STACK, progress=progress)
        row["detail"] = f"buckets, KMS key, role, group {outputs['modelPackageGroups'][MODEL]}, ECR, SNS topic"
    ctx = pipeline.open_context(STACK, progress=progress)
    sqs, queue_url = _subscribe(ctx)

    with steps.step("train (local runner, container contract)") as row:
        req = pipeline.TrainRequest(model=MODEL, synthetic_rows=rows, local=True, hyperparameters=DEMO_HP)
        run = pipeline.train(ctx, req)
        summary["run"] = {
            k: run[k] for k in ("job", "status", "modelDataUrl", "metrics", "instanceType", "pinnedImage")
        }
        summary["dataset"] = {k: run["dataset"][k] for k in ("uri", "id", "sha256")} | {
            "objects": run["dataset"]["objects"]
        }
        row["detail"] = f"{run['job']}: roc_auc {run['metrics'].get('final_roc_auc', float('nan')):.3f}"

    with steps.step("evaluate against the champion (the gate)") as row:
        report = pipeline.evaluate(ctx, run["job"])
        summary["gate"] = report["gate"]
        summary["evaluation"] = {"uri": report["reportUri"], "candidate": report["candidate"]["metrics"]}
        row["detail"] = report["gate"]["reason"]
        if not report["gate"]["passed"]:
            raise MlopsError(f"the gate failed: {report['gate']['reason']}")

    with steps.step("register the model package") as row:
        image = _push_placeholder_image(ctx)
        registered = pipeline.register(ctx, run["job"], inference_image=image)
        arn = registered["package"]["arn"]
        summary["package"] = registered["package"]
        row["detail"] = (
            f"{arn} (PendingManualApproval); placeholder serving image pinned by digest "
            f"{registered['package']['image'].split('@')[-1][:19]}..."
        )

    with steps.step("approve (who and why recorded)") as row:
        approved = registry.set_status(
            ctx.sagemaker, arn, registry.APPROVED, by="mlops-demo", reason="demo: gate passed on held-out data"
        )
        summary["package"] = approved.to_dict()
        row["detail"] = approved.approval_description

    with steps.step("promote into stacks/Pulumi.local.yaml") as row:
        promoted = promote(ctx.session, arn, STACK, progress=progress)
        summary["promotion"] = promoted
        row["detail"] = f"mlops:approvedPackages.{MODEL} = {arn}"

    with steps.step("deploy (local backend: model, endpoint config with capture, endpoint)") as row:
        deployed = local.provision(STACK, progress=progress)
        endpoint = deployed["endpoints"][MODEL]
        summary["endpoint"] = endpoint
        row["detail"] = endpoint
    ctx = pipeline.open_context(STACK, progress=progress)  # outputs now carry the endpoint

    model_dir = fetch_model(ctx.s3, run["modelDataUrl"], work / "model")
    card = model_dir / "model_card.html"
    if card.exists():
        shutil.copy2(card, out_dir / "model_card.html")
        summary["modelCard"] = "model_card.html"

    phases = {}
    for name, drift, seed in (("normal traffic", 0.0, 101), ("drifted traffic", 0.9, 202)):
        since = datetime.now(UTC)
        with steps.step(f"{name} through ml.serve with data capture") as row:
            traffic = send_traffic(
                ctx.session,
                ctx.outputs,
                MODEL,
                model_dir,
                make_synthetic(400, seed=seed, drift=drift),
                progress=progress,
            )
            row["detail"] = f"{traffic['requests']} requests, {len(traffic['captureObjects'])} capture object(s)"
        with steps.step(f"monitor after {name}") as row:
            time.sleep(0.01)
            hours = max((datetime.now(UTC) - since).total_seconds() + 1, 1) / 3600
            result = monitor(ctx.session, ctx.outputs, MODEL, since_hours=hours, retrain=None, progress=progress)
            alarm = _evaluate_alarm(ctx, result)
            phases[name] = {
                "score": result["score"],
                "drifted": result["drifted"],
                "metric": result["metric"],
                "report": result["reportUri"],
                "alarm": alarm,
                "perFeature": result["perFeature"],
                "notified": result["notified"],
            }
            row["detail"] = (
                f"drift score {result['score']:.3f} (threshold {result['threshold']:g}); alarm {alarm['state']}"
            )
    summary["monitoring"] = phases

    with steps.step("the alert arrives (SQS subscription of the alert topic)") as row:
        messages = _receive(sqs, queue_url)
        summary["alerts"] = messages
        if not messages:
            raise MlopsError("no drift notification reached the alert topic's subscription")
        row["detail"] = messages[0]["Subject"]


def _subscribe(ctx) -> tuple[Any, str]:
    sqs = ctx.session.client("sqs")
    url = sqs.create_queue(QueueName="mlops-demo-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ctx.session.client("sns").subscribe(TopicArn=ctx.outputs.alertTopicArn, Protocol="sqs", Endpoint=arn)
    return sqs, url


def _receive(sqs, url: str) -> list[dict[str, Any]]:
    out = []
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        body = json.loads(message["Body"])
        out.append({"Subject": body.get("Subject"), "Message": json.loads(body.get("Message", "{}"))})
    return out


def _push_placeholder_image(ctx) -> str:
    """An image manifest in the emulator's ECR, so the package shows digest pinning (nothing runs it)."""
    ecr = ctx.session.client("ecr")
    repository = ctx.outputs.ecrRepositoryUrl.split("/", 1)[1]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": "sha256:" + "0" * 64,
            },
            "layers": [],
        }
    )
    tag = "demo-serve"
    try:
        ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    except ecr.exceptions.ClientError:
        pass
    return f"{ctx.outputs.ecrRepositoryUrl}:{tag}"


def _evaluate_alarm(ctx, result: dict[str, Any]) -> dict[str, Any]:
    """Play CloudWatch: compare the published datapoint with the drift alarm and set its state."""
    cloudwatch = ctx.session.client("cloudwatch")
    alarms = [
        a
        for a in cloudwatch.describe_alarms()["MetricAlarms"]
        if a["Namespace"] == result["metric"]["namespace"]
        and a["MetricName"] == result["metric"]["name"]
        and {d["Name"]: d["Value"] for d in a["Dimensions"]} == result["metric"]["dimensions"]
    ]
    if not alarms:
        return {"state": "NO ALARM WATCHES THIS METRIC", "name": None}
    alarm = alarms[0]
    breaching = result["score"] > alarm["Threshold"]
    state = "ALARM" if breaching else "OK"
    cloudwatch.set_alarm_state(
        AlarmName=alarm["AlarmName"],
        StateValue=state,
        StateReason=f"demo evaluation: {result['score']:.4f} vs threshold {alarm['Threshold']:g}",
    )
    return {
        "state": state,
        "name": alarm["AlarmName"],
        "threshold": alarm["Threshold"],
        "dimensions": {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
    }


# --- the report ----------------------------------------------------------------------------

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#1f2933;max-width:1040px;margin:32px auto;padding:0 16px}
h1{font-size:24px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{padding:6px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
code{font-family:ui-monospace,Menlo,monospace;font-size:12px;background:#f0f3f7;padding:1px 4px;border-radius:4px;word-break:break-all}
.ok{color:#2f9e6b;font-weight:600}.failed{color:#c92a2a;font-weight:600}.alarm{color:#c92a2a;font-weight:600}
.note{color:#7b8794;font-size:13px}pre{background:#f0f3f7;padding:10px;border-radius:6px;overflow:auto;font-size:12px}"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def render_report(summary: dict[str, Any]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>mlops demo</title><style>{CSS}</style></head><body>",
        "<h1>mlops demo: the lifecycle against an emulator on loopback</h1>",
        f"<p class='note'>stack <code>{_e(summary.get('stack'))}</code>, model "
        f"<code>{_e(summary.get('model'))}</code>, "
        f"emulator <code>{_e(summary.get('emulator', '-'))}</code>, {summary.get('seconds', 0)} s in all. "
        "The emulator stands in for two things it lacks: SageMaker hosting (ml.serve answered the requests) and "
        "CloudWatch's alarm evaluation (the demo compared the datapoint with the alarm's threshold).</p>",
    ]
    if summary.get("modelCard"):
        parts.append(f"<p><a href='{_e(summary['modelCard'])}'>Model card</a> of the trained model.</p>")
    parts.append("<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>seconds</th><th>detail</th></tr>")
    for row in summary.get("steps", []):
        parts.append(
            f"<tr><td>{_e(row['step'])}</td><td class='{_e(row['status'])}'>{_e(row['status'])}</td>"
            f"<td>{row.get('seconds', '')}</td><td>{_e(row.get('detail', ''))}</td></tr>"
        )
    parts.append("</table>")
    if "gate" in summary:
        gate = summary["gate"]
        parts.append(
            "<h2>Gate</h2><p "
            f"class='{'ok' if gate['passed'] else 'failed'}'>{'passed' if gate['passed'] else 'failed'}: "
            f"{_e(gate['reason'])}</p>"
        )
        metrics = summary.get("evaluation", {}).get("candidate", {})
        parts.append(
            "<table><tr><th>metric (held-out)</th><th>value</th></tr>"
            + "".join(
                f"<tr><td>{_e(k)}</td><td>{v:.4f}</td></tr>"
                for k, v in sorted(metrics.items())
                if isinstance(v, (int, float)) and k != "n_rows"
            )
            + "</table>"
        )
    if "package" in summary:
        pkg = summary["package"]
        parts.append(
            f"<h2>Model package</h2><p><code>{_e(pkg['arn'])}</code> &mdash; {_e(pkg['status'])}: "
            f"{_e(pkg.get('approvalDescription', ''))}</p><p>image <code>{_e(pkg['image'])}</code><br>"
            f"model data <code>{_e(pkg['modelDataUrl'])}</code></p>"
        )
        parts.append(
            "<table><tr><th>customer metadata (lineage)</th><th>value</th></tr>"
            + "".join(
                f"<tr><td><code>{_e(k)}</code></td><td>{_e(v)}</td></tr>"
                for k, v in sorted(pkg.get("metadata", {}).items())
            )
            + "</table>"
        )
    if "dataset" in summary:
        ds = summary["dataset"]
        parts.append(
            f"<h2>Data set version</h2><p><code>{_e(ds['uri'])}</code> sha256 <code>{_e(ds['sha256'])}</code></p>"
            "<table><tr><th>split</th><th>object</th><th>version</th><th>sha256</th></tr>"
            + "".join(
                f"<tr><td>{_e(o['split'])}</td><td><code>{_e(o['uri'])}</code></td><td><code>{_e(o['versionId'])}</code></td>"
                f"<td><code>{_e(o['sha256'][:16])}...</code></td></tr>"
                for o in ds["objects"]
            )
            + "</table>"
        )
    for name, phase in (summary.get("monitoring") or {}).items():
        alarm = phase["alarm"]
        parts.append(
            f"<h2>Monitoring after {_e(name)}</h2><p>drift score <b>{phase['score']:.4f}</b> published as "
            f"<code>{_e(phase['metric']['namespace'])}/{_e(phase['metric']['name'])}</code> "
            f"<code>{_e(json.dumps(phase['metric']['dimensions']))}</code>; alarm <code>{_e(alarm.get('name'))}</code> "
            f"(threshold {alarm.get('threshold')}) is <span class='{'alarm' if alarm['state'] == 'ALARM' else 'ok'}'>"
            f"{_e(alarm['state'])}</span>.</p>"
        )
        top = sorted(phase["perFeature"].items(), key=lambda kv: kv[1], reverse=True)[:8]
        parts.append(
            "<table><tr><th>feature</th><th>PSI</th></tr>"
            + "".join(f"<tr><td>{_e(k)}</td><td>{v:.4f}</td></tr>" for k, v in top)
            + "</table>"
        )
    if summary.get("alerts"):
        parts.append("<h2>Alert received (SQS subscription of the alert topic)</h2>")
        for alert in summary["alerts"]:
            parts.append(f"<p><b>{_e(alert['Subject'])}</b></p><pre>{_e(json.dumps(alert['Message'], indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
