"""Registration that is idempotent for real: hashed client tokens, lost responses, metadata limits.

Runs against moto's server; the run to register is laid out directly in S3 (ci_registration_kit).
"""

from __future__ import annotations

import hashlib
import json
import re

import botocore.loaders
import pytest
from botocore.exceptions import ReadTimeoutError
from ci_registration_kit import BUCKET, GROUP, a_registration, arrange_dev, arrange_run, packages_of

from ci.aws import registry

pytestmark = pytest.mark.moto_server

SAGEMAKER = botocore.loaders.create_loader().load_service_model("sagemaker", "service-2")["shapes"]
# Two jobs of a long-named model: the same first 36 characters, and the 36th is a hyphen.
LONG_JOBS = [
    "mlops-staging-customer-lifetime-val-20261129-0101-a1b2",
    "mlops-staging-customer-lifetime-val-20261129-0202-c3d4",
]


def registration(job: str, **changes) -> registry.Registration:
    return a_registration(job, bucket=BUCKET, **changes)


def sent_tokens(sm) -> list[str]:
    tokens: list[str] = []

    def capture(params, **kwargs):
        tokens.append(params.get("ClientToken"))

    sm.meta.events.register("provide-client-params.sagemaker.CreateModelPackage", capture)
    return tokens


def test_client_tokens_are_valid_for_sagemaker_and_never_shared_between_jobs(boto):
    """AWS rule: SM-CLIENT-TOKEN. botocore's sagemaker model: ClientToken is 1-36 characters
    matching [a-zA-Z0-9-]+. The old token, the job name cut to 36 characters, was the same for
    both jobs below, so SageMaker would have answered the second create with the first package."""
    shape = SAGEMAKER["ClientToken"]
    assert LONG_JOBS[0][:36] == LONG_JOBS[1][:36] and LONG_JOBS[0][35] == "-"
    arrange_dev(boto)
    sm = boto("sagemaker")
    tokens = sent_tokens(sm)
    for job in LONG_JOBS:
        registry.register(sm, registration(job))
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    for token in tokens:
        assert shape["min"] <= len(token) <= shape["max"]
        assert re.fullmatch(shape["pattern"], token) and token[-1] != "-"
    assert len(packages_of(boto)) == 2
    # derived from the operation and the job: a re-run sends the same token, another operation another
    assert tokens[0] == registry.client_token("CreateModelPackage", GROUP, LONG_JOBS[0])
    assert registry.client_token("UpdateModelPackage", GROUP, LONG_JOBS[0]) != tokens[0]


class LostResponse:
    """A client whose CreateModelPackage is served, but whose answer never arrives."""

    def __init__(self, sm):
        self.sm, self.calls = sm, 0

    def create_model_package(self, **kwargs):
        self.calls += 1
        self.sm.create_model_package(**kwargs)
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1/")


def test_a_create_whose_response_was_lost_is_found_not_repeated(boto):
    arrange_dev(boto)
    sm = boto("sagemaker")
    lossy = LostResponse(sm)
    package, created = registry.register(sm, registration("mlops-dev-churn-7"), create_client=lossy)
    assert created and lossy.calls == 1
    assert [p["ModelPackageArn"] for p in packages_of(boto)] == [package.arn]
    again, created = registry.register(sm, registration("mlops-dev-churn-7"), create_client=lossy)
    assert not created and again.arn == package.arn and lossy.calls == 1


def test_a_refused_create_is_not_retried(boto):
    arrange_dev(boto)
    sm = boto("sagemaker")
    calls = []
    sm.meta.events.register("before-send.sagemaker.CreateModelPackage", lambda request, **kw: calls.append(1))
    with pytest.raises(Exception, match=r"ValidationException|does not exist|not found"):
        registry.register(sm, registration("mlops-dev-churn-8", group="no-such-group"))
    assert len(calls) == 1


def test_metadata_limits_are_sagemakers():
    """AWS rule: SM-METADATA-LIMITS. botocore's sagemaker model: CustomerMetadataMap holds at most
    50 entries, keys 1-128 and values 1-256 characters."""
    assert SAGEMAKER["CustomerMetadataMap"]["max"] == registry.MAX_KEYS
    assert SAGEMAKER["CustomerMetadataKey"]["max"] == registry.MAX_KEY_LEN
    assert SAGEMAKER["CustomerMetadataValue"]["max"] == registry.MAX_VALUE_LEN
    assert SAGEMAKER["CustomerMetadataValue"]["min"] == 1
    assert registry.REGISTRATION_MAX_KEYS + len(registry.APPROVAL_KEYS) + len(registry.REJECTION_KEYS) == 50
    assert registry.check_metadata({"lineage:dataSha256": "", "mlops:model": "churn"}) == {"mlops:model": "churn"}


def test_sixty_hyperparameters_register_then_approve_then_reject(boto, stacks, mlops):
    """AWS rule: SM-METADATA-LIMITS. Registration used to fill all 50 keys with hyperparameters,
    so the approval that followed (three more keys) failed. The full record lives in lineage.json."""
    arrange_dev(boto)
    hps = {f"param_{i:02d}": str(i) for i in range(60)} | {"x" * 130: "too long a key", "odd{name}": "bad key"}
    job = "mlops-dev-churn-60"
    arrange_run(boto, job, hps)
    result = mlops("register", "--stack", "dev", "--job", job, "--outputs-from", "preview", "--json")
    assert result.code == 0, result
    arn = result.json["package"]["arn"]
    metadata = result.json["package"]["metadata"]
    assert len(metadata) == registry.REGISTRATION_MAX_KEYS
    record_bytes = boto("s3").get_object(Bucket=BUCKET, Key=f"training-output/{job}/lineage.json")["Body"].read()
    assert hashlib.sha256(record_bytes).hexdigest() == metadata[registry.K_LINEAGE_SHA]
    assert json.loads(record_bytes)["hyperparameters"] == hps

    long_reason = "beats the champion on every slice; " * 12  # 420 characters
    approved = mlops("approve", arn, "--by", "alice", "--reason", long_reason, "--json")
    assert approved.code == 0, approved
    assert approved.json["package"]["approvalDescription"] == f"Approved by alice: {long_reason}"
    assert len(approved.json["package"]["metadata"][registry.K_APPROVAL_REASON]) == registry.MAX_VALUE_LEN
    rejected = mlops("reject", arn, "--by", "bob", "--reason", "leak found", "--json")
    assert rejected.code == 0, rejected
    final = rejected.json["package"]["metadata"]
    assert len(final) <= registry.MAX_KEYS
    assert final[registry.K_APPROVED_BY] == "alice" and final[registry.K_REJECTED_BY] == "bob"


def test_a_package_registered_with_fifty_keys_can_still_be_approved(boto):
    """Packages registered before the budget hold 50 keys: approval drops hyperparameter copies."""
    arrange_dev(boto)
    sm = boto("sagemaker")
    full = {registry.K_JOB: "old-job", registry.K_GATE: "passed"}
    full |= {f"{registry.HP_PREFIX}p{i:02d}": str(i) for i in range(48)}
    arn = sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "x", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=full,
    )["ModelPackageArn"]
    package = registry.set_status(sm, arn, "Approved", by="alice", reason="ok")
    assert package.status == "Approved" and len(package.metadata) == registry.MAX_KEYS
    assert package.metadata[registry.K_JOB] == "old-job" and package.metadata[registry.K_APPROVED_BY] == "alice"
    assert f"{registry.HP_PREFIX}p00" in package.metadata and f"{registry.HP_PREFIX}p47" not in package.metadata
