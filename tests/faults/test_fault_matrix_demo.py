"""The fault matrix, continued: `mlops demo`.

The demo starts its own emulator; here the fault proxy is put in front of it (the demo's
`_emulator` wrapped), so its AWS calls pass through the proxy. Each row faults one call (every
attempt) at the demo's first AWS calls (provisioning) or at its traffic step (the upload of the
captured requests) and asserts: the demo finishes, or fails with one `error:` line and no
traceback; it leaves nothing behind (its temporary folder, its emulator, the repository's stack
file as it was); and a re-run completes. Every row runs the whole demo at least once (~30 s), so
all are marked slow.
"""

from __future__ import annotations

import socket
import tempfile
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from ci_testkit import REPO
from faultproxy import FaultProxy

from ci.aws import clients as aws
from ci.emulator import demo

pytestmark = [pytest.mark.moto_server, pytest.mark.slow]
# A fresh emulator loads its backends on its first calls, slowly when the whole suite shares two cores
# (5 s once timed out before CreateKey was reached). No row here holds an answer (no slow or freeze),
# so a generous read timeout costs nothing.
READ_TIMEOUT_S = 30.0
CAPTURE = "mlops-local-capture-"  # the capture bucket's name starts so (one S3 path among many)

ROWS = [pytest.param("DescribeKey", "", fault, id=f"demo-DescribeKey#1-{fault}") for fault in ("drop", "error500")] + [
    pytest.param("CreateKey", "", "drop", id="demo-CreateKey#1-drop"),
    pytest.param("CreateBucket", "", "reset", id="demo-CreateBucket#1-reset"),
    pytest.param("PutObject", CAPTURE, "drop", id="demo-capture-PutObject-drop"),
    pytest.param("PutObject", CAPTURE, "error500", id="demo-capture-PutObject-error500"),
]


@pytest.fixture
def demo_world(tmp_path, monkeypatch):
    """The demo's emulator behind a fault proxy; its temporary folders under tmp_path."""
    for key in [k for k in __import__("os").environ if k.startswith(("AWS_", "MLOPS_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", READ_TIMEOUT_S)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT_S", READ_TIMEOUT_S)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    original = demo._emulator
    world = {"proxies": [], "emulators": [], "temp": temp, "armed": None}

    @contextmanager
    def behind_a_proxy(progress):
        with original(progress) as url, FaultProxy(url, late_s=READ_TIMEOUT_S + 0.3) as proxy:
            # `mlops demo` runs in its own process with an empty emulator; in-process, moto's backends
            # are shared by every test of this worker, so empty them as a new process would find them.
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30)
            world["emulators"].append(url)
            if world["armed"]:
                proxy.arm(*world["armed"][:2], times=2, path_contains=world["armed"][2])
            world["proxies"].append(proxy)
            yield proxy.url

    monkeypatch.setattr(demo, "_emulator", behind_a_proxy)
    return world


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((parts.hostname, parts.port)) == 0


@pytest.mark.parametrize("operation, path, fault", ROWS)
def test_demo_under_a_fault_finishes_or_fails_in_one_line_and_a_rerun_completes(
    operation, path, fault, demo_world, tmp_path, mlops, monkeypatch
):
    stack_file = (REPO / "stacks" / "Pulumi.local.yaml").read_bytes()
    demo_world["armed"] = (operation, fault, path)
    first = mlops("demo", "--out", tmp_path / "first", "--rows", "300")
    proxy = demo_world["proxies"][-1]
    assert proxy.faulted, f"{operation} ({path or 'any'}) was never called"
    assert "Traceback" not in first.err
    if first.code != 0:
        assert first.err.strip().splitlines()[-1].startswith("error: "), first
    assert list(demo_world["temp"].glob("mlops-demo-*")) == []  # its folder gone on every way out
    assert not _listening(demo_world["emulators"][-1])  # its emulator stopped
    assert (REPO / "stacks" / "Pulumi.local.yaml").read_bytes() == stack_file

    demo_world["armed"] = None
    monkeypatch.setenv("MLOPS_AWS_MAX_ATTEMPTS", "4")
    monkeypatch.setattr(aws, "READ_TIMEOUT_S", 8)
    again = mlops("demo", "--out", tmp_path / "again", "--rows", "300", "--json")
    assert again.code == 0, again.err[-3000:]
    assert again.json["ok"] is True and all(s["status"] == "ok" for s in again.json["steps"])
    assert list(demo_world["temp"].glob("mlops-demo-*")) == []
