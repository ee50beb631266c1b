"""Unpacking a model archive is bounded: size, entry count, no links, nothing outside the folder.

Every refusal is a CorruptArchiveError with a reason, and leaves no unpacked files behind.
"""

from __future__ import annotations

import io
import tarfile

import pytest

from ci.steps import container
from ci.steps.container import CorruptArchiveError, unpack_model


def archive(path, entries):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_entry(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link_entry(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def test_a_compression_bomb_stops_at_the_size_cap_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "MAX_UNPACKED_BYTES", 1024 * 1024)
    zeros = b"\0" * (8 * 1024 * 1024)  # 8 MB of zeros: about 8 KB compressed
    bomb = archive(tmp_path / "bomb.tar.gz", [file_entry("schema.json", b"{}"), file_entry("weights.bin", zeros)])
    assert bomb.stat().st_size < 64 * 1024
    dest = tmp_path / "model"
    with pytest.raises(CorruptArchiveError, match=r"unpacks to more than 1048576 bytes"):
        unpack_model(bomb, dest)
    assert not dest.exists()


def test_too_many_entries_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(container, "MAX_MEMBERS", 5)
    many = archive(tmp_path / "many.tar.gz", [file_entry(f"f{i}") for i in range(6)])
    with pytest.raises(CorruptArchiveError, match="more than 5 entries"):
        unpack_model(many, tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "entry, words",
    [
        (link_entry("schema.json", "/etc/passwd", tarfile.SYMTYPE), "is a link"),
        (link_entry("inside", "schema.json", tarfile.SYMTYPE), "is a link"),  # even pointing inside
        (link_entry("hard", "schema.json", tarfile.LNKTYPE), "is a link"),
        (file_entry("../escaped.txt"), "points outside the model folder"),
        (file_entry("/tmp/absolute.txt"), "points outside the model folder"),
    ],
    ids=["symlink out", "symlink in", "hardlink", "dot-dot", "absolute"],
)
def test_links_and_escaping_paths_are_refused(entry, words, tmp_path):
    path = archive(tmp_path / "evil.tar.gz", [file_entry("schema.json", b"{}"), entry])
    dest = tmp_path / "out" / "model"
    with pytest.raises(CorruptArchiveError, match=words):
        unpack_model(path, dest)
    assert not dest.exists() and not (tmp_path / "out" / "escaped.txt").exists()


def test_a_refusal_removes_only_what_it_unpacked(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    path = archive(tmp_path / "no-schema.tar.gz", [file_entry("weights.bin", b"123")])
    with pytest.raises(CorruptArchiveError, match=r"lacks schema\.json"):
        unpack_model(path, dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_a_model_archive_still_unpacks(tmp_path):
    path = archive(tmp_path / "ok.tar.gz", [file_entry("schema.json", b"{}"), file_entry("sub/w.bin", b"12")])
    dest = unpack_model(path, tmp_path / "model")
    assert (dest / "sub" / "w.bin").read_bytes() == b"12"
