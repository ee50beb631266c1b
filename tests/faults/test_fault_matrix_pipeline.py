"""The fault matrix, continued: `local up` (provisioning the local stack into the emulator) and
`train --local` (S3 faults on the model upload and on the checkpoint sync).

`local up` is idempotent provisioning: each row faults one of its AWS calls (every attempt), then
asserts the failure is one `error:` line with exit 3 (or that the command absorbed the fault), and
that a re-run converges to exactly the state a clean run leaves: the same buckets, keys, roles,
groups, repositories, topics and log groups, none twice. (It found that a lost CreateKey answer, or a
failed rotation or alias after it, left an orphan key and the re-run made a second: ci/emulator/pulumi_up.py
now creates the key in one attempt and adopts the stack's unaliased key on the re-run.)
"""

from __future__ import annotations

import pytest
import test_fault_matrix as matrix

pytestmark = pytest.mark.moto_server
# The matrix's fixtures (clients around the proxy, fast failures), shared; the proxy here gives a
# call 1.5 s, not 0.4 s, before it counts as lost: a busy shared machine must not fault a call the
# row did not choose (`local up` makes 28 calls; a slow one failed rows as "never called").
direct, fast_failures = matrix.direct, matrix.fast_failures
READ_TIMEOUT_S = 1.5


@pytest.fixture
def proxy(emulator, monkeypatch, fast_failures, direct):
    monkeypatch.setattr(matrix.aws, "READ_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(matrix.aws, "CONNECT_TIMEOUT_S", READ_TIMEOUT_S)
    direct("sagemaker").list_model_package_groups()  # moto loads its backends on the first call
    with matrix.FaultProxy(emulator, late_s=READ_TIMEOUT_S + 0.3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy


LOCAL_UP = ["local", "up", "--stack", "local"]


LOCAL_UP_CALLS = [
    "DescribeKey", "ListKeys", "CreateKey", "EnableKeyRotation", "CreateAlias",
    *["CreateBucket", "PutBucketVersioning", "PutBucketEncryption", "PutBucketPublicaccessblock"] * 4,
    "CreateRole", "DescribeModelPackageGroup", "CreateModelPackageGroup", "CreateRepository", "CreateTopic",
    "CreateLogGroup", "DescribeEndpoint",
]  # fmt: skip
ACCOUNT = "123456789012"
CLEAN = {
    "buckets": [f"mlops-local-{b}-{ACCOUNT}" for b in ("access-logs", "artifacts", "capture", "data")],
    "keys": 1,
    "aliases": ["alias/mlops-local"],
    "roles": ["mlops-local-sagemaker-execution"],
    "groups": ["churn-local"],
    "repositories": ["mlops-local"],
    "topics": [f"arn:aws:sns:us-east-1:{ACCOUNT}:mlops-local-alerts"],
    "logGroups": ["/mlops/local/pipeline"],
}
# The core (run by default): a lost answer (`drop`) and a refused call (`error500`) at each call
# that creates something; the rest of the cross product is marked slow.
CREATES = {"CreateKey", "CreateAlias", "CreateBucket", "CreateRole", "CreateModelPackageGroup", "CreateRepository",
           "CreateTopic", "CreateLogGroup"}  # fmt: skip


def in_core(operation: str, skip: int, fault: str) -> bool:
    return operation in CREATES and skip == 0 and fault in ("drop", "error500")


ROWS = matrix.fault_rows("local-up", LOCAL_UP_CALLS, in_core)


def world(direct) -> dict:
    """What provisioning leaves, as sets and counts a duplicate would change."""
    s3, kms, iam, sm = direct("s3"), direct("kms"), direct("iam"), direct("sagemaker")
    ecr, sns, logs = direct("ecr"), direct("sns"), direct("logs")
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "keys": len(kms.list_keys()["Keys"]),
        "aliases": sorted(a["AliasName"] for a in kms.list_aliases()["Aliases"] if "mlops" in a["AliasName"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "groups": sorted(
            g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        ),
        "repositories": sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"]),
        "topics": sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]),
        "logGroups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
    }


def test_local_up_calls(proxy, direct, stacks, mlops, monkeypatch):
    """The guard: the list the rows are built from is what `local up` really calls."""
    matrix.normal_failures(monkeypatch)  # no retry of a call that was merely slow on a busy machine
    proxy.clear()
    result = mlops(*LOCAL_UP)
    assert result.code == 0, result
    assert proxy.calls == LOCAL_UP_CALLS
    assert world(direct) == CLEAN


@pytest.mark.parametrize("operation, skip, fault", ROWS)
def test_local_up_under_a_fault_fails_in_one_line_and_a_rerun_converges(
    operation, skip, fault, proxy, direct, stacks, mlops, monkeypatch
):
    proxy.clear()
    proxy.arm(operation, fault, times=2, skip=skip)
    first = mlops(*LOCAL_UP)
    assert proxy.faulted, f"{operation}#{skip + 1} was never called"
    assert "Traceback" not in first.err
    if first.code != 0:
        assert first.code == 3, first  # AWS access: the fault outlasted every attempt
        assert first.err.strip().splitlines()[-1].startswith("error: "), first
    proxy.clear()
    matrix.normal_failures(monkeypatch)
    again = mlops(*LOCAL_UP)
    assert again.code == 0, again
    assert world(direct) == CLEAN  # nothing twice (a second KMS key, a second topic), nothing missing


# --- train --local: S3 faults on the model upload and on the checkpoint sync -------------------

TRAIN = ["train", "--stack", "local", "--local", "--synthetic", "300", "--json",
         "--hp", "epochs=2", "--hp", "checkpoint_every=1", "--hp", "importance_repeats=1",
         "--hp", "importance_max_rows=50", "--hp", "baseline_sample=100", "--hp", "model_card=false"]  # fmt: skip
BUCKET = f"mlops-local-artifacts-{ACCOUNT}"
TRAIN_ROWS = [
    pytest.param(where, fault, id=f"train-local-{where}-{fault}", marks=pytest.mark.slow)
    for where in ("model-upload", "checkpoint-sync")
    for fault in ("drop", "reset", "throttle", "error500")
]


def _runs(direct) -> list[dict]:
    import json

    s3 = direct("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in listed]


@pytest.mark.parametrize("where, fault", TRAIN_ROWS)
def test_train_local_under_an_s3_fault(where, fault, proxy, direct, stacks, mlops, monkeypatch):
    """The model upload failing every attempt: exit 3 in one line, the record Failed (terminal),
    and a re-run completes. The checkpoint sync failing (four uploads in a row): the run still
    completes (the sync retries; what is left is a warning in the record), and the final sync
    catches up."""
    monkeypatch.setenv("MLOPS_CHECKPOINT_SYNC_SECONDS", "0.2")
    matrix.normal_failures(monkeypatch)
    assert mlops(*LOCAL_UP).code == 0
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    proxy.clear()
    if where == "model-upload":
        proxy.arm("PutObject", fault, times=2, path_contains="/output/model.tar.gz")
    else:
        proxy.arm("PutObject", fault, times=4, path_contains="/ckpt-")  # checkpoint files, not owner.json
    first = mlops(*TRAIN)
    assert proxy.faulted, f"{where} was never called"
    assert "Traceback" not in first.err
    runs = _runs(direct)
    assert all(r["status"] in ("Completed", "Failed", "Stopped") for r in runs), runs
    if where == "model-upload":
        assert first.code == 3 and first.err.strip().splitlines()[-1].startswith("error: "), first
        assert [r["status"] for r in runs] == ["Failed"]
        proxy.clear()
        again = mlops(*TRAIN)
        assert again.code == 0, again
        assert again.json["run"]["status"] == "Completed"
    else:
        assert first.code == 0, first
        run = first.json["run"]
        assert run["status"] == "Completed", run  # four failed uploads in a row: retried, or left to the next sync
        assert len(proxy.faulted) == 4
        prefix = run["checkpointS3Uri"].split(f"s3://{BUCKET}/", 1)[1]
        synced = direct("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        assert any(o["Key"].endswith(".pt") for o in synced)  # the final sync caught up
