"""The fault matrix: every fault at every AWS call of register, approve, reject, promote, rollback.

Each row runs the real `mlops` command with its AWS traffic going through the fault proxy
(faultproxy.py) in front of moto. The chosen call fails twice in a row (every attempt the
command's retry policy makes, MLOPS_AWS_MAX_ATTEMPTS=2), everything else passes. Then:
  1. the command either completed exactly once, or changed nothing (registry, S3, stack files);
     a failure is one line on stderr and an exit code, never a traceback;
  2. with the fault gone, the same command is run again and completes, with no duplicate.
`CALLS` lists each command's AWS calls in order; test_the_matrix_covers_every_call checks that
list against what the command really calls, so the matrix cannot fall behind the code.
See docs/reliability.md for what each row proves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import botocore.retries.standard
import pytest
import yaml
from ci_registration_kit import GROUP, arrange_dev, arrange_run, packages_of, s3_state
from ci_testkit import snapshot
from faultproxy import FAULTS, FaultProxy

from ci.aws import clients as aws
from ci.aws import registry, stackfile

pytestmark = pytest.mark.moto_server

JOB = "mlops-dev-churn-20261129-0001"
READ_TIMEOUT_S = 0.4  # the command's read timeout here; `slow` and `freeze` hold answers longer

# Each command's AWS calls, in order (a name repeats when the command calls it again).
CALLS = {
    "register": [
        "GetObject",  # the run record
        "ListModelPackages",  # already registered?
        "GetObject",  # the evaluation report
        "HeadObject",  # the model archive (download)
        "GetObject",
        "PutObject",  # baseline.json beside the model
        "HeadObject",
        "DescribeImages",  # the inference image's digest
        "PutObject",  # lineage.json beside the model
        "ListModelPackages",  # registered meanwhile?
        "CreateModelPackage",
        "DescribeModelPackage",
    ],
    "approve": ["DescribeModelPackage", "UpdateModelPackage", "DescribeModelPackage"],
    "reject": ["DescribeModelPackage", "UpdateModelPackage", "DescribeModelPackage"],
    "promote": ["DescribeModelPackage"],
    "rollback": ["DescribeModelPackage", "DescribeModelPackage"],
}


def call_sites(calls: list[str]) -> list[tuple[str, int]]:
    """(operation, how many earlier calls of it to let through) for each call of a command."""
    seen: dict[str, int] = {}
    sites = []
    for operation in calls:
        sites.append((operation, seen.get(operation, 0)))
        seen[operation] = seen.get(operation, 0) + 1
    return sites


def fault_rows(name: str, calls: list[str], in_core: Callable[[str, int, str], bool]) -> list:
    """A row (operation, skip, fault) for every fault at every call; rows outside the core are marked slow."""
    return [
        pytest.param(
            operation,
            skip,
            fault,
            id=f"{name}-{operation}#{skip + 1}-{fault}",
            marks=() if in_core(operation, skip, fault) else pytest.mark.slow,
        )
        for operation, skip in call_sites(calls)
        for fault in FAULTS
    ]


# The rows run by default (the core): every fault at each call that changes something
# (CreateModelPackage, UpdateModelPackage; S3 writes except the two timeouts) and at every call
# of promote and rollback; a lost response at registration's idempotency lookups; every fault
# but the two timeouts at the reads of approve and reject. The rest of the cross product (the same
# proofs at registration's other reads, and timeouts on its S3 writes) is marked slow.
WRITES = {"PutObject", "CreateModelPackage", "UpdateModelPackage"}


def in_core(command: str, operation: str, fault: str) -> bool:
    if command == "register":
        if operation == "PutObject":
            return fault not in ("slow", "freeze")
        return operation == "CreateModelPackage" or (operation == "ListModelPackages" and fault == "drop")
    if command in ("approve", "reject") and operation not in WRITES:
        return fault not in ("slow", "freeze")
    return True


ROWS = [
    pytest.param(command, *row.values, id=row.id, marks=row.marks)
    for command, calls in CALLS.items()
    for row in fault_rows(command, calls, lambda operation, _skip, fault, c=command: in_core(c, operation, fault))
]


# --- the world each command starts from, and what "done" means for it -----------------------


class Scenario:
    def __init__(self, boto, stacks, mlops):
        self.boto, self.stacks, self.mlops = boto, stacks, mlops

    def state(self) -> dict:
        sm = self.boto("sagemaker")
        packages = {}
        for summary in sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]:
            d = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            packages[d["ModelPackageArn"]] = (d["ModelApprovalStatus"], d.get("CustomerMetadataProperties") or {})
        return {"registry": packages, "s3": s3_state(self.boto), "stacks": snapshot(self.stacks)}

    def package(self, job: str, status: str | None) -> str:
        """A package as `mlops register` leaves it (one call, not registration's lookups)."""
        sm = self.boto("sagemaker")
        arn = sm.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-dev:abc"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties={
                registry.K_MODEL: "churn",
                registry.K_GATE: "passed",
                registry.K_STACK: "dev",
                registry.K_JOB: job,
            },
        )["ModelPackageArn"]
        if status:
            registry.set_status(sm, arn, status, by="arranger", reason="arranged")
        return arn


def arrange(command: str, sc: Scenario) -> dict:
    arrange_dev(sc.boto)
    if command == "register":
        arrange_run(sc.boto, JOB)
        return {"args": ["register", "--stack", "dev", "--job", JOB, "--outputs-from", "preview", "--json"]}
    if command in ("approve", "reject"):
        arn = sc.package(JOB, None)
        return {"arn": arn, "args": [command, arn, "--by", "alice", "--reason", f"{command} in the matrix"]}
    if command == "promote":
        arn = sc.package(JOB, "Approved")
        return {"arn": arn, "args": ["promote", arn, "--to", "dev", "--outputs-from", "preview", "--json"]}
    first, second = sc.package("job-first", "Approved"), sc.package("job-second", "Approved")
    stackfile.write_keys(
        sc.stacks / "Pulumi.dev.yaml",
        {stackfile.APPROVED_KEY: {"churn": second}, stackfile.PREVIOUS_KEY: {"churn": [first]}},
    )
    return {"first": first, "args": ["rollback", "--env", "dev", "--model", "churn", "--json"]}


def done(command: str, ctx: dict, before: dict, after: dict) -> bool:
    """The command's effect happened exactly once, and nothing else changed."""
    config = yaml.safe_load(after["stacks"]["Pulumi.dev.yaml"])["config"]
    if command == "register":
        mine = [(arn, m) for arn, (status, m) in after["registry"].items() if m.get(registry.K_JOB) == JOB]
        if len(after["registry"]) != 1 or len(mine) != 1:
            return False
        lineage = after["s3"].get(f"training-output/{JOB}/lineage.json")
        return (
            lineage is not None
            and hashlib.sha256(lineage).hexdigest() == mine[0][1][registry.K_LINEAGE_SHA]
            and after["stacks"] == before["stacks"]
        )
    if command in ("approve", "reject"):
        status, metadata = after["registry"][ctx["arn"]]
        who = registry.K_APPROVED_BY if command == "approve" else registry.K_REJECTED_BY
        return (
            status == ("Approved" if command == "approve" else "Rejected")
            and metadata.get(who) == "alice"
            and after["registry"].keys() == before["registry"].keys()
            and after["s3"] == before["s3"]
            and after["stacks"] == before["stacks"]
        )
    unchanged_elsewhere = after["registry"] == before["registry"] and after["s3"] == before["s3"]
    others = {k: v for k, v in after["stacks"].items() if k != "Pulumi.dev.yaml"}
    unchanged_elsewhere &= others == {k: v for k, v in before["stacks"].items() if k != "Pulumi.dev.yaml"}
    if command == "promote":
        return unchanged_elsewhere and config["mlops:approvedPackages"]["churn"] == ctx["arn"]
    return (
        unchanged_elsewhere
        and config["mlops:approvedPackages"]["churn"] == ctx["first"]
        and config["mlops:previousPackages"]["churn"] == []
    )


def nothing_changed(command: str, before: dict, after: dict) -> bool:
    """Registry and stack files as they were; S3 too, except registration's side files.

    Registration writes baseline.json and lineage.json beside the model before it creates the
    package (the package points at them). Their bytes are what a successful run writes, so a
    re-run overwrites them with the same content; nothing else in S3 may change."""
    if after["registry"] != before["registry"] or after["stacks"] != before["stacks"]:
        return False
    side = (
        {f"training-output/{JOB}/baseline.json", f"training-output/{JOB}/lineage.json"}
        if command == "register"
        else set()
    )
    return all(before["s3"].get(key) == data for key, data in after["s3"].items() if key not in side)


@pytest.fixture
def fast_failures(monkeypatch):
    """Two attempts per call, tiny timeouts, no backoff: a faulted call fails in about a second."""
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(registry, "CREATE_BACKOFF_S", 0.0)
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def normal_failures(monkeypatch) -> None:
    """Back to the default policy, so a re-run is not failed by a busy machine."""
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", 8)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", 3)


_CLIENTS: dict[tuple[str, str], object] = {}


@pytest.fixture
def direct(emulator):
    """boto3 clients straight to moto (around the proxy), made once per process: building a
    SageMaker client parses its model and makes ~400 methods, a real cost over 131 rows."""
    import boto3

    def client(name: str):
        key = (name, emulator)
        if key not in _CLIENTS:
            session = _CLIENTS.setdefault(("session", ""), boto3.session.Session(region_name="us-east-1"))
            _CLIENTS[key] = session.client(
                name, endpoint_url=emulator, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
        return _CLIENTS[key]

    return client


@pytest.fixture
def proxy(emulator, monkeypatch, fast_failures, direct):
    direct("sagemaker").list_model_package_groups()  # moto's first call loads its backends: not under a fault
    with FaultProxy(emulator, late_s=READ_TIMEOUT_S + 0.3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy


@pytest.mark.parametrize("command", list(CALLS))
def test_the_matrix_covers_every_call(command, proxy, direct, stacks, mlops):
    sc = Scenario(direct, stacks, mlops)
    ctx = arrange(command, sc)
    proxy.clear()
    result = mlops(*ctx["args"])
    assert result.code == 0, result
    assert proxy.calls == CALLS[command]


@pytest.mark.parametrize("command, operation, skip, fault", ROWS)
def test_a_fault_leaves_it_done_once_or_undone_and_a_rerun_completes(
    command, operation, skip, fault, proxy, direct, stacks, mlops, monkeypatch
):
    sc = Scenario(direct, stacks, mlops)
    ctx = arrange(command, sc)
    before = sc.state()
    proxy.clear()
    proxy.arm(operation, fault, times=2, skip=skip)

    first = mlops(*ctx["args"])
    assert proxy.faulted, f"{operation}#{skip + 1} was never called"
    after = sc.state()
    if first.code == 0:
        assert done(command, ctx, before, after), (first, proxy.faulted)
    else:
        assert done(command, ctx, before, after) or nothing_changed(command, before, after), (first, proxy.faulted)
        assert "Traceback" not in first.err and first.err.strip().splitlines()[-1].startswith("error: "), first

    if command == "rollback" and first.code == 0:
        return  # a second rollback is another step back, not a retry of this one
    proxy.clear()
    normal_failures(monkeypatch)
    again = mlops(*ctx["args"])
    assert again.code == 0, again
    assert done(command, ctx, before, sc.state())
    if command == "register":
        assert len(packages_of(direct, JOB)) == 1
