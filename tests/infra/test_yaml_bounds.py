"""Stack files are read with bounds: PyYAML's SafeLoader expands aliases, so a small file could
become billions of nodes. The bounded loader refuses it at once, with one clear line."""

from __future__ import annotations

import time

import pytest

from kernel.stack_config import ConfigError, read_raw_config

BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    + "config:\n  mlops:environment: *i\n"
)


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    stack = tmp_path / "Pulumi.bomb.yaml"
    stack.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="alias bomb"):
        read_raw_config(stack)
    assert time.monotonic() - started < 1.0


def test_a_few_anchors_are_still_fine(tmp_path):
    stack = tmp_path / "Pulumi.anchors.yaml"
    stack.write_text("tags: &tags {owner: ml}\nconfig:\n  mlops:tags: *tags\n  mlops:other: *tags\n")
    assert read_raw_config(stack)[1]["mlops:tags"] == {"owner": "ml"}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"config:\n  mlops:environment: d\xffv\n", "not UTF-8"),
        (b"config: {}\n" + b"#" * 300_000, "at most"),
        (b"x: &x [*x]\nconfig: {}\n", "stack"),  # a recursive alias
    ],
)
def test_undecodable_oversized_and_recursive_files_are_refused(tmp_path, data, says):
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_bytes(data)
    with pytest.raises(ConfigError, match=says):
        read_raw_config(stack)


def test_the_stack_file_editor_reads_through_the_same_bounds(tmp_path):
    from ci.aws.stackfile import StackFileError, load_document

    stack = tmp_path / "Pulumi.bomb.yaml"
    stack.write_text(BOMB)
    with pytest.raises(StackFileError, match="alias bomb"):
        load_document(stack)
