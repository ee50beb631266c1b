"""Bad state files for `mlops audit --state` and `mlops cost --state`: each refused with a clear
line (exit 2, or 1 where the AWS preflight refuses what the file holds), never a traceback and
never judged as if it were fine."""

from __future__ import annotations

import json

import pytest
from badinput_kit import assert_refused, run_mlops

good = {
    "version": 3,
    "deployment": {
        "manifest": {},
        "resources": [
            {
                "urn": "urn:pulumi:dev::mlops::pulumi:pulumi:Stack::mlops-dev",
                "type": "pulumi:pulumi:Stack",
                "custom": False,
            }
        ],
    },
}


ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def _variant_count(literal: str) -> bytes:
    """An endpoint config whose instance count is a JSON non-number Python's parser still takes."""
    variant = {"initialInstanceCount": "COUNT", "instanceType": "ml.g5.xlarge"}
    resource = {"urn": f"urn:pulumi:dev::mlops::{ENDPOINT_CONFIG}::e", "type": ENDPOINT_CONFIG,
                "inputs": {"productionVariants": [variant]}}  # fmt: skip
    return res(resource).replace(b'"COUNT"', literal.encode())


def res(r):
    return json.dumps({"version": 3, "deployment": {"resources": [r]}}).encode()


CASES = {
    "not-json": b"{version: 3",
    "not-utf8": b'{"version": 3, "deployment": {"x": "\xff"}}',
    "utf16": json.dumps(good).encode("utf-16"),
    "empty": b"",
    "list": b"[]",
    "string": b'"state"',
    "no-deployment": b'{"version": 3}',
    "version-2": b'{"version": 2, "deployment": {}}',
    "version-string": b'{"version": "3", "deployment": {}}',
    "deployment-list": b'{"version": 3, "deployment": []}',
    "resources-object": b'{"version": 3, "deployment": {"resources": {}}}',
    "resource-string": res("x"),
    "resource-number": res(5),
    "resource-null": res(None),
    "resource-no-type": res({"urn": "u"}),
    "resource-type-number": res({"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": 5}),
    "resource-urn-number": res({"urn": 5, "type": "aws:s3/bucket:Bucket"}),
    "resource-inputs-list": res(
        {"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket", "inputs": [1]}
    ),
    "resource-outputs-string": res(
        {"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket", "outputs": "x"}
    ),
    "resource-nan": _variant_count("NaN"),
    "resource-infinity": _variant_count("Infinity"),
    "deep": b'{"version": 3, "deployment": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    "parent-number": res(
        {"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket", "parent": 7}
    ),
    "dependencies-string": res(
        {"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket", "dependencies": "abc"}
    ),
    "provider-number": res(
        {"urn": "urn:pulumi:dev::mlops::aws:s3/bucket:Bucket::b", "type": "aws:s3/bucket:Bucket", "provider": 3}
    ),
}

# What each command says; NaN/Infinity parse (Python's json allows them) and the preflight refuses
# the value in audit; cost needs a region first.
SAYS = {
    "not-json": "not JSON", "not-utf8": "utf-8", "utf16": "utf-8", "empty": "not JSON", "list": "no 'deployment'",
    "string": "no 'deployment'", "no-deployment": "no 'deployment'", "version-2": "version 2",
    "version-string": "version '3'", "deployment-list": "not an object", "resources-object": "not a list",
    "resource-string": "malformed", "resource-number": "malformed", "resource-null": "malformed",
    "resource-no-type": "not a Pulumi URN", "resource-type-number": "not a Pulumi type token",
    "resource-urn-number": "not a Pulumi URN", "resource-inputs-list": "malformed",
    "resource-outputs-string": "malformed", "deep": "nested too deeply", "parent-number": "parent",
    "dependencies-string": "dependencies", "provider-number": "provider",
}  # fmt: skip
PREFLIGHT = {"resource-nan", "resource-infinity"}


@pytest.mark.parametrize("command", ["audit", "cost"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_state_file_is_refused(command, case, tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_bytes(CASES[case])
    result = run_mlops(capsys, command, "--state", state)
    if case in PREFLIGHT:
        code, says = (1, "AWS preflight") if command == "audit" else (2, "region")
    else:
        code, says = 2, SAYS[case]
    assert_refused(result, code, says)


@pytest.mark.parametrize("command", ["audit", "cost"])
def test_a_state_file_over_the_limit_is_refused_unread(command, tmp_path, capsys, monkeypatch):
    from policies import audit

    monkeypatch.setattr(audit, "MAX_STATE_FILE_BYTES", 1000)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({**good, "padding": "x" * 2000}))
    assert_refused(run_mlops(capsys, command, "--state", state), 2, "at most 1000")


TABLE_SIZE = 2 * len(CASES) + 2
