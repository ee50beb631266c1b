"""Checkpoints that survive a spot interruption: atomic writes, resume from the newest complete one.

SageMaker syncs the checkpoint directory to S3 while the job runs and restores it when a
replacement instance starts, so a job that saves every N steps loses at most N steps. Files are
named by a fingerprint of the run (hyperparameters, data, world size) and the global step:
a checkpoint from another configuration in the same directory is never resumed by mistake.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch

PATTERN = re.compile(r"^ckpt-(?P<fp>[0-9a-f]{12})-step(?P<step>\d{9})\.pt$")


def fingerprint(*parts: Any) -> str:
    """12 hex digits identifying a run configuration."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class CheckpointStore:
    def __init__(self, directory: str | Path, run_fingerprint: str, keep: int = 2):
        self.directory = Path(directory)
        self.fingerprint = run_fingerprint
        self.keep = max(1, keep)

    def path_for(self, step: int) -> Path:
        return self.directory / f"ckpt-{self.fingerprint}-step{step:09d}.pt"

    def steps(self) -> list[int]:
        """Global steps with a complete checkpoint of this run, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = PATTERN.match(path.name)
            if match and match["fp"] == self.fingerprint:
                found.append(int(match["step"]))
        return sorted(found)

    def others(self) -> list[str]:
        """Checkpoint files of other run configurations (reported, never used)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name for p in self.directory.iterdir() if (m := PATTERN.match(p.name)) and m["fp"] != self.fingerprint
        )

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write to a temporary file, fsync, then rename: a reader sees the old set or the new one,
        never half a file. Older checkpoints beyond `keep` are removed afterwards."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path_for(step)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        for old in self.steps()[: -self.keep]:
            self.path_for(old).unlink(missing_ok=True)
        return final

    def load(self, step: int) -> dict[str, Any]:
        return torch.load(self.path_for(step), map_location="cpu", weights_only=True)

    def load_latest(self, required: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]] | None:
        """The newest complete checkpoint: one that loads and holds every `required` key. A corrupt
        or incomplete newer one (truncated by a copy tool, an interrupted sync) is skipped, with a
        warning, in favour of the one before it; None when none is usable."""
        for step in reversed(self.steps()):
            try:
                state = self.load(step)
                missing = [key for key in required if key not in state]
                if missing:
                    raise KeyError(f"lacks {', '.join(missing)}")
                return step, state
            except Exception as err:
                print(
                    f"warning: checkpoint {self.path_for(step).name} is unusable ({type(err).__name__}: "
                    f"{err}); falling back to the one before it",
                    file=sys.stderr,
                    flush=True,
                )
        return None
