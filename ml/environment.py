"""What a SageMaker training container is given, read the way SageMaker gives it.

Layout under the base directory (default /opt/ml; env SM_BASE_DIR or --base-dir for local runs):
  input/config/hyperparameters.json   name -> value, every value a string
  input/config/inputdataconfig.json   channel -> {ContentType, TrainingInputMode, ...}
  input/config/resourceconfig.json    {current_host, hosts, current_instance_type, ...}
  input/config/data_manifest.json     (ours, optional) S3 object versions and SHA-256 of the data
  input/data/<channel>/               the channel files
  model/                              what survives as model.tar.gz (SM_MODEL_DIR)
  output/                             `failure` on error; output/data (SM_OUTPUT_DATA_DIR)
  checkpoints/                        synced to S3 (SM_CHECKPOINT_DIR here, fixed path on SageMaker)
The SM_* variables, when set, win over the layout, as they do in SageMaker's own toolkit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_BASE_DIR = "/opt/ml"


class ContainerLayoutError(RuntimeError):
    """The container layout is unusable (a config file is not JSON, a channel is missing...)."""


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ContainerLayoutError(f"{path}: {what} is not valid JSON ({err.msg} at line {err.lineno})") from None


@dataclass
class TrainingEnvironment:
    base_dir: Path
    hyperparameters: dict[str, Any]
    input_data_config: dict[str, Any]
    resource_config: dict[str, Any]
    channels: dict[str, Path]
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    num_gpus: int
    data_manifest: dict[str, Any] | None = None
    environ: Mapping[str, str] = field(default_factory=dict)

    @property
    def hosts(self) -> list[str]:
        return list(self.resource_config.get("hosts") or ["algo-1"])

    @property
    def current_host(self) -> str:
        return str(self.resource_config.get("current_host") or self.hosts[0])

    @property
    def instance_type(self) -> str | None:
        return self.resource_config.get("current_instance_type")

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @classmethod
    def from_env(
        cls, base_dir: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> TrainingEnvironment:
        env = dict(os.environ if environ is None else environ)
        base = Path(base_dir or env.get("SM_BASE_DIR") or DEFAULT_BASE_DIR)
        config_dir = base / "input" / "config"

        hp_path = config_dir / "hyperparameters.json"
        if hp_path.is_file():
            hyperparameters = _read_json(hp_path, "hyperparameters")
        elif env.get("SM_HPS"):
            try:
                hyperparameters = json.loads(env["SM_HPS"])
            except json.JSONDecodeError as err:
                raise ContainerLayoutError(f"SM_HPS is not valid JSON ({err.msg})") from None
        else:
            hyperparameters = {}

        data_dir = base / "input" / "data"
        idc_path = config_dir / "inputdataconfig.json"
        if idc_path.is_file():
            input_data_config = _read_json(idc_path, "input data config")
        else:  # local runs without the file: every channel directory present
            input_data_config = (
                {p.name: {} for p in sorted(data_dir.iterdir()) if p.is_dir()} if data_dir.is_dir() else {}
            )
        if not isinstance(input_data_config, dict):
            raise ContainerLayoutError(f"{idc_path}: expected an object of channel -> settings")
        for name in env:
            if name.startswith("SM_CHANNEL_") and name != "SM_CHANNELS":
                input_data_config.setdefault(name[len("SM_CHANNEL_") :].lower(), {})
        channels = {name: Path(env.get(f"SM_CHANNEL_{name.upper()}") or data_dir / name) for name in input_data_config}

        rc_path = config_dir / "resourceconfig.json"
        resource_config: dict[str, Any] = _read_json(rc_path, "resource config") if rc_path.is_file() else {}
        if env.get("SM_HOSTS"):
            try:
                resource_config["hosts"] = json.loads(env["SM_HOSTS"])
            except json.JSONDecodeError:
                raise ContainerLayoutError("SM_HOSTS is not a JSON list of host names") from None
        if env.get("SM_CURRENT_HOST"):
            resource_config["current_host"] = env["SM_CURRENT_HOST"]
        resource_config.setdefault("hosts", ["algo-1"])
        resource_config.setdefault("current_host", resource_config["hosts"][0])
        if resource_config["current_host"] not in resource_config["hosts"]:
            raise ContainerLayoutError(
                f"resource config: current_host {resource_config['current_host']!r} is not in hosts "
                f"{resource_config['hosts']}"
            )

        manifest_path = config_dir / "data_manifest.json"
        manifest = _read_json(manifest_path, "data manifest") if manifest_path.is_file() else None

        if env.get("SM_NUM_GPUS") not in (None, ""):
            num_gpus = int(env["SM_NUM_GPUS"])
        else:
            import torch

            num_gpus = torch.cuda.device_count()

        output_dir = Path(env.get("SM_OUTPUT_DIR") or base / "output")
        return cls(
            base_dir=base,
            hyperparameters=hyperparameters,
            input_data_config=input_data_config,
            resource_config=resource_config,
            channels=channels,
            model_dir=Path(env.get("SM_MODEL_DIR") or base / "model"),
            output_dir=output_dir,
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR") or output_dir / "data"),
            checkpoint_dir=Path(env.get("SM_CHECKPOINT_DIR") or base / "checkpoints"),
            num_gpus=num_gpus,
            data_manifest=manifest,
            environ=env,
        )

    def channel(self, name: str) -> Path | None:
        path = self.channels.get(name)
        return path if path is not None and path.is_dir() else None

    def content_type(self, name: str) -> str | None:
        settings = self.input_data_config.get(name) or {}
        return settings.get("ContentType")

    def check_input_modes(self) -> None:
        for name, settings in self.input_data_config.items():
            mode = (settings or {}).get("TrainingInputMode", "File")
            if mode not in ("File", "FastFile"):
                raise ContainerLayoutError(
                    f"inputdataconfig.{name}.TrainingInputMode: {mode!r} is not supported; use File or FastFile"
                )
