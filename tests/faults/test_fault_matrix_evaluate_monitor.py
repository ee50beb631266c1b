"""The fault matrix, continued: `mlops evaluate` and `mlops monitor`.

Both need a real trained model, which takes seconds to make, so the world is made once per
module (`trained`: `local up` and a tiny `train --local` into moto) and each row only undoes what
the command under test writes. `evaluate` rows fault one of its eight AWS calls (every attempt)
and assert: the evaluation report in S3 is absent or complete (the whole document, the verdict of
a clean run), a failure is one `error:` line, and a re-run writes the one report with the same
verdict. See docs/reliability.md.
"""

from __future__ import annotations

import json
import shutil
import urllib.request

import pytest
import test_fault_matrix as matrix
from ci_testkit import REGION, REPO
from faultproxy import FaultProxy

from ci.aws import clients as aws
from ci.steps import monitor

pytestmark = pytest.mark.moto_server
READ_TIMEOUT_S = 1.0  # a busy shared machine must not fault a call the row did not choose
ACCOUNT = "123456789012"
BUCKET = f"mlops-local-artifacts-{ACCOUNT}"
TRAIN = ["train", "--stack", "local", "--local", "--synthetic", "300", "--json",
         "--hp", "epochs=2", "--hp", "importance_repeats=1", "--hp", "importance_max_rows=50",
         "--hp", "baseline_sample=100", "--hp", "model_card=false"]  # fmt: skip

EVALUATE_CALLS = [
    "GetObject",  # the run record
    "ListModelPackages",  # registered already? (its package pins the archive's digest)
    "HeadObject",  # the model archive
    "GetObject",
    "HeadObject",  # the held-out split
    "GetObject",
    "ListModelPackages",  # the champion
    "HeadObject",  # the train split, for the linear baseline: its data file...
    "GetObject",
    "HeadObject",  # ...and its schema.json
    "GetObject",
    "PutObject",  # the report
]


def _clients(url: str):
    import boto3

    session = boto3.session.Session(region_name=REGION)
    made: dict[str, object] = {}

    def client(name: str):
        if name not in made:
            made[name] = session.client(
                name, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
        return made[name]

    return client


def _cli(*args: str) -> int:
    from ci.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def trained(moto_url, tmp_path_factory):
    """One clean emulator with the local stack and one Completed local run, for the whole module."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    home = tmp_path_factory.mktemp("faults-eval")
    shutil.copytree(REPO / "stacks", home / "stacks")
    env = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MLOPS_STATE_DIR": str(home / "state"),
        "MLOPS_STACKS_DIR": str(home / "stacks"),
        "MLOPS_AWS_MAX_ATTEMPTS": "4",
        "SAGEMAKER_VALIDATE_ROLE": "false",
    }.items():
        env.setenv(key, value)
    env.delenv("AWS_PROFILE", raising=False)
    try:
        assert _cli("local", "up", "--stack", "local") == 0
        assert _cli(*TRAIN) == 0
        direct = _clients(moto_url)
        runs = direct("s3").list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]
        assert len(runs) == 1
        job = runs[0]["Key"].split("/")[1]
        assert _cli("evaluate", "--stack", "local", "--job", job) == 0
        clean = _report(direct, job)
        assert clean is not None
        yield {"job": job, "direct": direct, "url": moto_url, "verdict": _verdict(clean), "home": home}
    finally:
        env.undo()


def _report_key(job: str) -> str:
    return f"evaluations/{job}/evaluation.json"


def _report(direct, job: str) -> dict | None:
    try:
        body = direct("s3").get_object(Bucket=BUCKET, Key=_report_key(job))["Body"].read()
    except direct("s3").exceptions.NoSuchKey:
        return None
    return json.loads(body)  # a torn or partial report fails the row here


def _verdict(report: dict) -> tuple:
    gate = report["gate"]
    return (gate["passed"], report["candidate"]["metrics"]["roc_auc"], report["job"], report["testSet"]["split"])


def _forget_report(direct, job: str) -> None:
    """Every version of the report gone: the row starts from 'never evaluated'."""
    s3 = direct("s3")
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=_report_key(job))
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])


def _report_versions(direct, job: str) -> int:
    listed = direct("s3").list_object_versions(Bucket=BUCKET, Prefix=_report_key(job))
    return len(listed.get("Versions", []))


fast_failures = matrix.fast_failures


@pytest.fixture
def fast(fast_failures, monkeypatch):
    """The matrix's fast failures, with this module's longer timeout and no backoff between publications."""
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(monitor, "PUBLISH_BACKOFF_S", 0.0)


@pytest.fixture
def proxy(trained, monkeypatch, fast):
    with FaultProxy(trained["url"], late_s=READ_TIMEOUT_S + 0.3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy


# --- evaluate ---------------------------------------------------------------------------------
# The core: the report's write lost, late, reset or refused; a lost run record; a refused registry
# lookup. The rest of the cross product (48 rows) is marked slow.


def evaluate_in_core(operation: str, skip: int, fault: str) -> bool:
    if operation == "PutObject":
        return fault != "freeze" and fault != "throttle"
    return skip == 0 and (operation, fault) in {("GetObject", "drop"), ("ListModelPackages", "error500")}


EVALUATE_ROWS = matrix.fault_rows("evaluate", EVALUATE_CALLS, evaluate_in_core)


def test_evaluate_calls(trained, proxy, mlops, monkeypatch):
    """The guard: the list the rows are built from is what `evaluate` really calls."""
    matrix.normal_failures(monkeypatch)
    _forget_report(trained["direct"], trained["job"])
    proxy.clear()
    result = mlops("evaluate", "--stack", "local", "--job", trained["job"])
    assert result.code == 0, result
    assert proxy.calls == EVALUATE_CALLS


@pytest.mark.parametrize("operation, skip, fault", EVALUATE_ROWS)
def test_evaluate_under_a_fault_leaves_no_report_or_the_whole_one(
    operation, skip, fault, trained, proxy, mlops, monkeypatch
):
    direct, job = trained["direct"], trained["job"]
    _forget_report(direct, job)
    proxy.clear()
    proxy.arm(operation, fault, times=2, skip=skip)
    first = mlops("evaluate", "--stack", "local", "--job", job, "--json")
    assert proxy.faulted, f"{operation}#{skip + 1} was never called"
    assert "Traceback" not in first.err
    report = _report(direct, job)
    if first.code == 0:
        assert report is not None and _verdict(report) == trained["verdict"], first
        assert first.json["report"]["gate"]["passed"] == trained["verdict"][0]
    else:
        assert first.code == 3, first  # AWS access: the fault outlasted every attempt
        assert first.err.strip().splitlines()[-1].startswith("error: "), first
        assert report is None or _verdict(report) == trained["verdict"]  # absent, or complete (a lost PUT answer)
    proxy.clear()
    matrix.normal_failures(monkeypatch)
    again = mlops("evaluate", "--stack", "local", "--job", job, "--json")
    assert again.code == 0, again
    assert _verdict(_report(direct, job)) == trained["verdict"]
    assert (
        again.json["report"]["reportVersionId"]
        == direct("s3").head_object(Bucket=BUCKET, Key=_report_key(job))["VersionId"]
    )  # the one report at its key is the re-run's


# --- monitor ----------------------------------------------------------------------------------
# The run above, registered, approved, promoted to the local stack and deployed (`local up`), with
# drifted traffic captured: `monitor --no-retrain` publishes the drift score and notifies. An SQS
# queue on the alert topic counts notifications; CloudWatch's SampleCount counts publications.

MONITOR = ["monitor", "--stack", "local", "--no-retrain", "--json"]
MONITOR_CALLS = [
    "DescribeModelPackage",  # the deployed package (its baseline)
    "GetObject",  # the baseline
    "ListObjectsV2",  # the captured traffic
    "GetObject",
    "PutMetricData",  # the drift score (and per-feature scores)
    "PutObject",  # the monitoring report
    "Publish",  # the alert
]
ENDPOINT = "mlops-local-churn"


@pytest.fixture(scope="module")
def deployed(trained):
    from ci.emulator.hosting import send_traffic
    from ci.steps.evaluation import fetch_model
    from ci.steps.pipeline import open_context
    from ml.data import make_synthetic

    direct, job = trained["direct"], trained["job"]
    assert _cli("evaluate", "--stack", "local", "--job", job) == 0
    assert _cli("register", "--stack", "local", "--job", job) == 0
    arn = direct("sagemaker").list_model_packages(ModelPackageGroupName="churn-local")["ModelPackageSummaryList"][0][
        "ModelPackageArn"
    ]
    assert _cli("approve", arn, "--by", "alice", "--reason", "the fault matrix") == 0
    assert _cli("promote", arn, "--to", "local") == 0
    assert _cli("local", "up", "--stack", "local") == 0
    ctx = open_context("local")
    assert ctx.outputs.endpoints["churn"] == ENDPOINT
    model_dir = fetch_model(ctx.s3, direct("sagemaker").describe_model_package(ModelPackageName=arn)[
        "InferenceSpecification"]["Containers"][0]["ModelDataUrl"], trained["home"] / "served")  # fmt: skip
    traffic = send_traffic(ctx.session, ctx.outputs, "churn", model_dir, make_synthetic(400, seed=7, drift=0.9))
    assert traffic["captureObjects"]
    sqs = direct("sqs")
    queue = sqs.create_queue(QueueName="fault-matrix-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    direct("sns").subscribe(TopicArn=ctx.outputs.alertTopicArn, Protocol="sqs", Endpoint=queue_arn)
    world = {**trained, "queue": queue, "outputs": ctx.outputs, "per_run": 1}
    before = _publications(world)
    assert _cli(*MONITOR) == 0
    world["per_run"] = _publications(world) - before  # the score and each feature's, one data point each
    assert world["per_run"] >= 1 and _alerts(direct, queue) == 1
    return world


def _alerts(direct, queue: str) -> int:
    """Notifications waiting in the queue, taken out."""
    sqs, count = direct("sqs"), 0
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return count
        count += len(got)
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def _publications(world) -> int:
    """Publications of the endpoint's drift scores so far (moto counts the per-feature data points
    under the endpoint's dimension too: one publication is `per_run` data points)."""
    import datetime

    monitoring = world["outputs"].monitoring
    now = datetime.datetime.now(datetime.UTC)
    stats = world["direct"]("cloudwatch").get_metric_statistics(
        Namespace=monitoring.driftNamespace,
        MetricName=monitoring.driftMetricName,
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        StartTime=now - datetime.timedelta(hours=1),
        EndTime=now + datetime.timedelta(hours=1),
        Period=7200,
        Statistics=["SampleCount"],
    )["Datapoints"]
    points = int(sum(p["SampleCount"] for p in stats))
    assert points % world["per_run"] == 0, (points, world["per_run"])  # never part of a publication
    return points // world["per_run"]


def monitor_in_core(operation: str, skip: int, fault: str) -> bool:
    """The publications lost (drop), late (slow) or refused (error500); the package read lost."""
    if operation in ("PutMetricData", "Publish"):
        return fault in ("drop", "slow", "error500")
    return operation == "DescribeModelPackage" and fault == "drop"


MONITOR_ROWS = matrix.fault_rows("monitor", MONITOR_CALLS, monitor_in_core)


def test_monitor_calls(deployed, proxy, mlops, monkeypatch):
    """The guard: the list the rows are built from is what `monitor` really calls."""
    matrix.normal_failures(monkeypatch)
    _alerts(deployed["direct"], deployed["queue"])
    published = _publications(deployed)
    proxy.clear()
    result = mlops(*MONITOR)
    assert result.code == 0, result
    assert result.json["drifted"] and result.json["notified"]
    assert proxy.calls == MONITOR_CALLS
    assert _publications(deployed) == published + 1 and _alerts(deployed["direct"], deployed["queue"]) == 1


@pytest.mark.parametrize("operation, skip, fault", MONITOR_ROWS)
def test_monitor_under_a_fault_publishes_and_notifies_at_most_once(
    operation, skip, fault, deployed, proxy, mlops, monkeypatch
):
    direct, queue = deployed["direct"], deployed["queue"]
    _alerts(direct, queue)
    published = _publications(deployed)
    proxy.clear()
    proxy.arm(operation, fault, times=2, skip=skip)
    first = mlops(*MONITOR)
    assert proxy.faulted, f"{operation}#{skip + 1} was never called"
    assert "Traceback" not in first.err
    metric, alerts = _publications(deployed) - published, _alerts(direct, queue)
    if first.code == 0:
        assert (metric, alerts) == (1, 1), (first, proxy.faulted)
    else:
        assert first.code == 3, first
        assert first.err.strip().splitlines()[-1].startswith("error: "), first
        assert metric <= 1 and alerts <= 1, (metric, alerts, proxy.faulted)  # never twice in one run
    proxy.clear()
    matrix.normal_failures(monkeypatch)
    published = _publications(deployed)
    again = mlops(*MONITOR)
    assert again.code == 0, again
    assert (_publications(deployed) - published, _alerts(direct, queue)) == (1, 1)
