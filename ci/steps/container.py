"""The SageMaker training-container contract, reproduced on this machine.

`mlops train --local`, `mlops reproduce --local` and the tests' SageMaker stand-in all run
`ml/train.py` through here, under exactly what a SageMaker training container sees: an
`/opt/ml`-shaped tree (input/config/*.json, input/data/<channel>/, model/, output/,
checkpoints/), the `SM_*` environment, the code staged as SageMaker's ModelTrainer stages it
(`input/data/code`), and the same exit contract: a non-zero exit with `output/failure` holding
the reason. Only `model/` (tarred to model.tar.gz) and `output/` survive, as on SageMaker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernel.paths import REPO_ROOT

ML_PACKAGE = REPO_ROOT / "ml"
HOST = "algo-1"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


@dataclass
class ContainerResult:
    exit_code: int
    base_dir: Path
    failure_reason: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.base_dir / "checkpoints"

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def prepare_tree(
    base_dir: Path,
    hyperparameters: dict[str, str],
    channels: dict[str, Path],
    content_types: dict[str, str] | None = None,
    data_manifest: dict | None = None,
) -> None:
    """Lay out `/opt/ml` under base_dir: config files, channel data, empty model/output/checkpoints.

    `data_manifest` (S3 versions and SHA-256 of the channels) goes to input/config/data_manifest.json,
    where ml/environment.py looks for it; SageMaker jobs get it merged into lineage at registration.
    """
    config = base_dir / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    if data_manifest is not None:
        (config / "data_manifest.json").write_text(json.dumps(data_manifest, indent=2, sort_keys=True))
    # SageMaker hands hyperparameters to the container as strings, whatever they were.
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}, indent=2))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                name: {
                    "ContentType": (content_types or {}).get(name, "text/csv"),
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for name in channels
            },
            indent=2,
        )
    )
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {"current_host": HOST, "current_instance_type": "local", "hosts": [HOST], "network_interface_name": "lo"},
            indent=2,
        )
    )
    for name, source in channels.items():
        dest = base_dir / "input" / "data" / name
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest) if source.is_dir() else _copy_file(source, dest)
    for sub in ("model", "output/data", "output/metrics", "checkpoints"):
        (base_dir / sub).mkdir(parents=True, exist_ok=True)


def _copy_file(source: Path, dest_dir: Path) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest_dir / source.name)


def stage_code(base_dir: Path, ml_package: Path = ML_PACKAGE) -> Path:
    """Copy `ml/` where ModelTrainer puts source code; the container gets `ml/` alone."""
    code = base_dir / "input" / "data" / "code"
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(ml_package, code / "ml", ignore=IGNORE)
    return code


def container_env(
    base_dir: Path, hyperparameters: dict[str, str], channels: list[str], extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The `SM_*` variables SageMaker's training toolkit sets, pointing into base_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_", "SAGEMAKER_"))}
    env.update(
        {
            "SM_BASE_DIR": str(base_dir),
            "SM_MODEL_DIR": str(base_dir / "model"),
            "SM_OUTPUT_DIR": str(base_dir / "output"),
            "SM_OUTPUT_DATA_DIR": str(base_dir / "output" / "data"),
            "SM_INPUT_DIR": str(base_dir / "input"),
            "SM_INPUT_CONFIG_DIR": str(base_dir / "input" / "config"),
            "SM_CHECKPOINT_DIR": str(base_dir / "checkpoints"),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps({k: str(v) for k, v in hyperparameters.items()}),
            "SM_HOSTS": json.dumps([HOST]),
            "SM_CURRENT_HOST": HOST,
            "SM_NUM_GPUS": str(_num_gpus()),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(base_dir / "input" / "data" / name)
    env.update(extra or {})
    return env


def _num_gpus() -> int:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=5)
        return len([ln for ln in out.stdout.splitlines() if ln.startswith("GPU ")]) if out.returncode == 0 else 0
    except (OSError, subprocess.SubprocessError):
        return 0


def run_training(
    base_dir: Path,
    hyperparameters: dict[str, str],
    channels: dict[str, Path],
    *,
    on_line: Callable[[str], None] | None = None,
    checkpoint_sync: Callable[[Path], None] | None = None,
    sync_every_seconds: float = 30.0,
    extra_env: dict[str, str] | None = None,
    timeout_seconds: float | None = None,
    data_manifest: dict | None = None,
    code_dir: Path | None = None,
    python: str = sys.executable,
) -> ContainerResult:
    """Run `python -m ml.train` in the tree; stream its lines; sync checkpoints while it runs.

    `code_dir` is a source tree holding `ml/` (what a SageMaker job's code channel delivered);
    by default this repository's `ml/` is staged.
    """
    prepare_tree(base_dir, hyperparameters, channels, data_manifest=data_manifest)
    code = stage_code(base_dir, Path(code_dir) / "ml" if code_dir else ML_PACKAGE)
    env = container_env(base_dir, hyperparameters, list(channels), extra_env)
    env["PYTHONPATH"] = str(code)
    result = ContainerResult(exit_code=-1, base_dir=base_dir)
    stop = threading.Event()
    syncer = None
    if checkpoint_sync is not None:

        def _sync_loop() -> None:
            while not stop.wait(sync_every_seconds):
                checkpoint_sync(base_dir / "checkpoints")

        syncer = threading.Thread(target=_sync_loop, name="checkpoint-sync", daemon=True)
        syncer.start()
    proc = subprocess.Popen(
        [python, "-m", "ml.train", "--base-dir", str(base_dir)],
        cwd=code,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    timer = threading.Timer(timeout_seconds, proc.kill) if timeout_seconds else None
    if timer:
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            result.lines.append(line)
            if on_line:
                on_line(line)
        result.exit_code = proc.wait()
    finally:
        if timer:
            timer.cancel()
        stop.set()
        if syncer is not None:
            syncer.join()
        if checkpoint_sync is not None:
            checkpoint_sync(base_dir / "checkpoints")
    if result.exit_code != 0:
        failure = base_dir / "output" / "failure"
        reason = failure.read_text().strip() if failure.exists() else ""
        if not reason:
            tail = [ln for ln in result.lines if ln.strip()][-5:]
            reason = f"exit code {result.exit_code}" + (": " + " | ".join(tail) if tail else "")
        if timer and result.exit_code < 0:
            reason = f"stopped after {timeout_seconds:.0f} s (MaxRuntimeInSeconds): {reason}"
        result.failure_reason = reason
    return result


def package_model(model_dir: Path, dest: Path) -> Path:
    """`model.tar.gz` as SageMaker writes it: the model dir's contents at the archive root."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return dest


def package_output(output_dir: Path, dest: Path) -> Path:
    """`output.tar.gz`: what the job left in output/data."""
    return package_model(output_dir / "data", dest)


class CorruptArchiveError(ValueError):
    pass


# A model archive is untrusted input: bound what unpacking it may cost. (An 830 KB archive once
# unpacked to 503 MB.) Models here are megabytes; the caps leave room for large torch weights.
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 10_000


def unpack_model(
    archive: Path,
    dest: Path,
    required: tuple[str, ...] = ("schema.json",),
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Unpack a model.tar.gz safely; refuse archives that are not models, and (given `verify`,
    ci/steps/integrity.py) files that do not hash as registration recorded them.

    Refused, with dest removed again: more than MAX_MEMBERS entries or MAX_UNPACKED_BYTES in all
    (counted from the headers before each entry is written), links of either kind, devices, and
    any path outside dest. Entries are read one at a time, so a bomb stops at the cap.
    """
    existed = dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    try:
        _extract_bounded(archive, dest)
        missing = [name for name in required if not (dest / name).exists()]
        if missing:
            raise CorruptArchiveError(f"{archive.name} lacks {', '.join(missing)}: not a model written by ml/train.py")
        if verify is not None:
            verify(dest)
    except BaseException:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        for child in set(dest.iterdir() if existed else ()) - before:  # only what this call wrote
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return dest


def _extract_bounded(archive: Path, dest: Path) -> None:
    root = dest.resolve()
    total = members = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                members += 1
                if members > MAX_MEMBERS:
                    raise CorruptArchiveError(f"{archive.name} has more than {MAX_MEMBERS} entries; refused")
                if member.issym() or member.islnk():
                    raise CorruptArchiveError(f"{archive.name}: {member.name!r} is a link; a model archive has none")
                if not (member.isfile() or member.isdir()):
                    raise CorruptArchiveError(f"{archive.name}: {member.name!r} is not a file or folder")
                target = (root / member.name).resolve()
                if target != root and root not in target.parents:
                    raise CorruptArchiveError(f"{archive.name}: {member.name!r} points outside the model folder")
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise CorruptArchiveError(
                        f"{archive.name} unpacks to more than {MAX_UNPACKED_BYTES} bytes; refused"
                    )
                tar.extract(member, dest, filter="data")
    except CorruptArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise CorruptArchiveError(f"{archive.name} is not a readable gzip tar archive ({err})") from err
