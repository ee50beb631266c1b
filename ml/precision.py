"""Numeric precision and compilation by what the device can do.

- bf16 autocast where the GPU has bf16 tensor cores (compute capability 8.0 and up: A10G on g5,
  L4 on g6, L40S on g6e, A100 on p4d, H100 on p5); no loss scaling needed, bf16 keeps fp32's range.
- fp16 autocast with a gradient scaler on Volta/Turing (7.x: the T4 of g4dn, the V100 of p3),
  whose tensor cores do fp16 only; the scaler keeps small gradients from underflowing.
- fp32 otherwise (CPU, older GPUs, or `amp=fp32`).
torch.compile pays back its compile time (tens of seconds) only on a GPU and only for a model
big enough that kernel launch overhead, not arithmetic, is not already the bottleneck: the
`compile` hyperparameter's `auto` compiles on CUDA from `compile_min_params` parameters up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BF16_MIN_CAPABILITY = (8, 0)  # Ampere
FP16_MIN_CAPABILITY = (7, 0)  # Volta: fp16 tensor cores


class PrecisionError(ValueError):
    """A precision the device cannot do was asked for."""


@dataclass(frozen=True)
class Precision:
    name: str  # bf16 | fp16 | fp32
    device_type: str = "cpu"

    @property
    def dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name, torch.float32)

    @property
    def autocast(self) -> bool:
        return self.name != "fp32"

    @property
    def needs_scaler(self) -> bool:
        """fp16's narrow range: the loss is scaled up so gradients stay representable."""
        return self.name == "fp16"

    def context(self):
        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.autocast)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)


def capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def choose(device: torch.device, requested: str = "auto") -> Precision:
    """The precision for `amp` (auto | bf16 | fp16 | fp32; `off` means fp32) on `device`."""
    wanted = "fp32" if requested == "off" else requested
    if device.type != "cuda" or wanted == "fp32":  # CPU training stays fp32: autocast there is slower
        return Precision("fp32", device.type)
    cap = capability(device)
    bf16 = cap >= BF16_MIN_CAPABILITY and torch.cuda.is_bf16_supported()
    fp16 = cap >= FP16_MIN_CAPABILITY
    if wanted == "bf16" and not bf16:
        raise PrecisionError(
            f"amp=bf16: this GPU (compute capability {cap[0]}.{cap[1]}) has no bf16 tensor cores "
            f"(they start at {BF16_MIN_CAPABILITY[0]}.{BF16_MIN_CAPABILITY[1]}); use amp=auto or amp=fp16"
        )
    if wanted == "fp16" and not fp16:
        raise PrecisionError(
            f"amp=fp16: this GPU (compute capability {cap[0]}.{cap[1]}) has no fp16 tensor cores; use amp=auto"
        )
    if wanted == "bf16" or (wanted == "auto" and bf16):
        return Precision("bf16", "cuda")
    if wanted == "fp16" or (wanted == "auto" and fp16):
        return Precision("fp16", "cuda")
    return Precision("fp32", "cuda")


def should_compile(setting: str, device: torch.device, n_parameters: int, min_parameters: int) -> bool:
    """`compile`: true | false | auto (CUDA, and a model of at least `min_parameters`)."""
    if setting == "true":
        return True
    if setting == "false":
        return False
    return device.type == "cuda" and n_parameters >= min_parameters
