"""The bad-input tables' one assertion: refused, with its documented exit code, in one line,
never a traceback, never accepted silently."""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass
class Refusal:
    code: int
    out: str
    err: str


def run_mlops(capsys, *args: str) -> Refusal:
    from ci.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Refusal(code, captured.out, captured.err)


def assert_refused(result: Refusal, code: int, says: str) -> None:
    assert "Traceback" not in result.err + result.out, result.err[-3000:]
    assert result.code == code, (result.code, result.err[-2000:], result.out[-1000:])
    assert says.lower() in (result.err + result.out).lower(), (says, result.err[-2000:], result.out[-1000:])
    assert "internal error" not in result.err, result.err[-2000:]


def dump(document) -> bytes:
    return yaml.safe_dump(document, sort_keys=False).encode()
