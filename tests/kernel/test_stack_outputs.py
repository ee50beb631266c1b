"""The stack outputs contract as one typed object: what the program exports reads back, and writes back, unchanged."""

from __future__ import annotations

import pytest

from infra.preview import preview_stack
from kernel.stack_outputs import OUTPUT_KEYS, MissingOutputsError, StackOutputs


@pytest.fixture(scope="module")
def exported() -> dict:
    return preview_stack("prod").outputs


def test_exported_outputs_round_trip_in_their_json_shape(exported):
    assert StackOutputs.from_dict(exported).model_dump(mode="json") == exported
    assert set(OUTPUT_KEYS) == set(StackOutputs.model_fields)


def test_wire_form_seconds_read_as_whole_numbers(exported):
    raw = {**exported, "trainingDefaults": {**exported["trainingDefaults"], "maxRuntimeSeconds": 7200.0}}
    assert StackOutputs.from_dict(raw).trainingDefaults.maxRuntimeSeconds == 7200


def test_missing_keys_are_named_top_level_first_then_inside_their_block(exported):
    with pytest.raises(MissingOutputsError, match=r"lack dataBucket, monitoring;"):
        StackOutputs.from_dict({k: v for k, v in exported.items() if k not in ("dataBucket", "monitoring")})
    block = {k: v for k, v in exported["monitoring"].items() if k != "logGroupName"}
    with pytest.raises(MissingOutputsError, match=r"lack MonitoringOutputs\.logGroupName;"):
        StackOutputs.from_dict({**exported, "monitoring": block})
    without_roles = {k: v for k, v in exported.items() if not k.endswith(("pipelineRoleArn", "monitorRoleArn"))}
    assert StackOutputs.from_dict(without_roles).monitorRoleArn == ""  # stacks deployed before the roles
