"""Editing stack files: one key changes, every other byte survives, a bad edit writes nothing."""

from __future__ import annotations

import re

import pytest
import yaml

from ci.aws import stackfile
from ci.errors import UsageError

ARN1 = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/1"
ARN2 = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/2"

TEXT = """\
# dev stack: what runs in the dev account
config:
  aws:region: us-east-1   # the region
  mlops:environment: dev
  # Models this stack serves.
  mlops:models:
    - churn
  # What is deployed; written by `mlops promote`.
  mlops:approvedPackages:
    churn: ""
  mlops:previousPackages: {churn: []}  # history for rollback
  mlops:gate:
    metric: roc_auc   # the one that counts
    minImprovement: 0.0
"""


def promote(path, model, arn):
    plan = stackfile.plan_promotion(path, model, arn)
    stackfile.write_keys(path, {k: plan[k] for k in (stackfile.APPROVED_KEY, stackfile.PREVIOUS_KEY)})
    return plan


def test_promotion_changes_only_the_two_keys(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(TEXT)
    promote(path, "churn", ARN1)
    promote(path, "churn", ARN2)
    text = path.read_text()
    before, after = TEXT.splitlines(), text.splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert changed == [
        ('    churn: ""', f'    churn: "{ARN2}"'),
        (
            "  mlops:previousPackages: {churn: []}  # history for rollback",
            # the key keeps its plain spelling; ruamel puts one space before a comment after a flow value
            f'  mlops:previousPackages: {{churn: ["{ARN1}"]}} # history for rollback',
        ),
    ]
    assert len(before) == len(after)
    config = yaml.safe_load(text)["config"]
    assert config["mlops:approvedPackages"] == {"churn": ARN2}
    assert config["mlops:previousPackages"] == {"churn": [ARN1]}


def test_a_missing_history_key_is_added_after_the_approved_block(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(TEXT.replace("  mlops:previousPackages: {churn: []}  # history for rollback\n", ""))
    promote(path, "churn", ARN1)
    promote(path, "churn", ARN2)
    lines = path.read_text().splitlines()
    at = lines.index("  mlops:approvedPackages:")
    assert lines[at : at + 5] == [
        "  mlops:approvedPackages:",
        f'    churn: "{ARN2}"',
        "  mlops:previousPackages:",
        "    churn:",
        f'      - "{ARN1}"',
    ]
    assert "    metric: roc_auc   # the one that counts" in lines


def test_rollback_restores_the_newest_earlier_package(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(TEXT)
    promote(path, "churn", ARN1)
    promote(path, "churn", ARN2)
    plan = stackfile.plan_rollback(path, "churn")
    stackfile.write_keys(path, {k: plan[k] for k in (stackfile.APPROVED_KEY, stackfile.PREVIOUS_KEY)})
    assert plan["restored"] == ARN1 and plan["replaced"] == ARN2
    assert stackfile.approved_packages(path) == {"churn": ARN1}
    assert stackfile.previous_packages(path) == {"churn": []}


def test_rollback_without_history_is_refused(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(TEXT)
    with pytest.raises(UsageError, match="nothing to roll back to"):
        stackfile.plan_rollback(path, "churn")


def test_a_vetoed_edit_leaves_the_file_byte_for_byte(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_bytes(TEXT.encode())

    def veto(text):
        raise UsageError("no")

    with pytest.raises(UsageError):
        stackfile.write_keys(path, {stackfile.APPROVED_KEY: {"churn": ARN1}}, validate=veto)
    assert path.read_bytes() == TEXT.encode()
    assert [p.name for p in tmp_path.iterdir()] == ["Pulumi.dev.yaml"]  # no temp file left behind


def test_crlf_files_and_a_missing_final_newline_survive(tmp_path):
    path = tmp_path / "Pulumi.dev.yaml"
    original = TEXT.replace("\n", "\r\n").rstrip("\r\n")
    path.write_bytes(original.encode())
    promote(path, "churn", ARN1)
    data = path.read_bytes().decode()
    assert "\n" not in data.replace("\r\n", "")
    assert not data.endswith("\n")
    assert yaml.safe_load(data)["config"]["mlops:approvedPackages"] == {"churn": ARN1}


def test_the_real_stack_files_keep_their_comments(stacks):
    for name in ("dev", "staging", "prod", "local"):
        path = stacks / f"Pulumi.{name}.yaml"
        before = path.read_text()
        promote(path, "churn", ARN1.replace("churn-dev", f"churn-{name}"))
        after = path.read_text()
        kept = [ln for ln in before.splitlines() if ln.strip().startswith("#")]
        assert all(ln in after.splitlines() for ln in kept)
        old = yaml.safe_load(before)["config"]
        new = yaml.safe_load(after)["config"]
        assert {k: v for k, v in new.items() if k not in (stackfile.APPROVED_KEY, stackfile.PREVIOUS_KEY)} == {
            k: v for k, v in old.items() if k not in (stackfile.APPROVED_KEY, stackfile.PREVIOUS_KEY)
        }


def test_comments_inside_the_edited_block_survive(tmp_path):
    """Issue 11: the editor used to re-render the whole block and drop comments inside it."""
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(TEXT.replace('    churn: ""\n', '    churn: ""  # the churn model\n    # fraud: later\n'))
    promote(path, "churn", ARN1)
    text = path.read_text()
    assert re.search(rf'^    churn: "{re.escape(ARN1)}" +# the churn model$', text, re.M)
    assert "    # fraud: later" in text


def test_a_symlinked_stack_file_is_edited_where_it_points(tmp_path):
    target = tmp_path / "real" / "Pulumi.dev.yaml"
    target.parent.mkdir()
    target.write_text(TEXT)
    link = tmp_path / "Pulumi.dev.yaml"
    link.symlink_to(target)
    promote(link, "churn", ARN1)
    assert link.is_symlink()
    assert stackfile.approved_packages(target) == {"churn": ARN1}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"config:\n  mlops:environment: dev\xff\n", "is not UTF-8"),
        (b"config: [1, 2\n", "is not valid YAML"),
        (b"- just\n- a list\n", "must be a mapping"),
    ],
    ids=["bad-utf8", "bad-yaml", "not-a-mapping"],
)
def test_a_broken_stack_file_is_refused_and_left_as_it_was(tmp_path, content, message):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_bytes(content)
    with pytest.raises(stackfile.StackFileError, match=message):
        stackfile.write_keys(path, {stackfile.APPROVED_KEY: {"churn": ARN1}})
    assert path.read_bytes() == content
