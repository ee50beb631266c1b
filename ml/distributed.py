"""Several GPUs and hosts through torch.distributed (DDP), the same code on one CPU.

On SageMaker the job is launched with the sagemaker SDK's `Torchrun` distributed configuration
(ci/steps/training.py): SageMaker's torchrun driver starts one worker per GPU on every host and
`ml/train.py` runs as the worker it is told to be (RANK/WORLD_SIZE set). Run directly with
N > 1 processes to start (`python ml/train.py` on a host with N GPUs, or the local runner), it
hands itself to torchrun (`python -m torch.distributed.run`) the same way: ranks numbered host
by host in SageMaker's host order (SM_HOSTS), rendezvous at the first host.
On CPU the backend is gloo, so two processes on this machine exercise the same code path
(`MLOPS_PROCS_PER_HOST=2`).

Data are sharded per rank, round robin: rank r holds rows r, r + world, r + 2·world, ... of the
training and validation tables (`Runtime.rows`), so shard sizes differ by at most one and a
file sorted by label still gives every rank a mix. Nothing is padded or dropped: every row
belongs to exactly one rank.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

DEFAULT_MASTER_PORT = 29500


@dataclass(frozen=True)
class Plan:
    """How many processes this host starts and where they meet."""

    procs_per_host: int
    n_hosts: int
    node_rank: int
    master_addr: str
    master_port: int

    @property
    def world_size(self) -> int:
        return self.procs_per_host * self.n_hosts


def plan(hosts: Sequence[str], current_host: str, num_gpus: int, environ: Mapping[str, str]) -> Plan:
    procs = int(environ.get("MLOPS_PROCS_PER_HOST") or max(1, num_gpus))
    if procs < 1:
        raise ValueError(f"MLOPS_PROCS_PER_HOST: expected a positive number, got {procs}")
    hosts = list(hosts)
    if len(hosts) == 1:
        addr = environ.get("MASTER_ADDR", "127.0.0.1")
        port = int(environ.get("MASTER_PORT") or (free_port() if procs > 1 else DEFAULT_MASTER_PORT))
    else:
        addr = environ.get("MASTER_ADDR", hosts[0])
        port = int(environ.get("MASTER_PORT") or DEFAULT_MASTER_PORT)
    return Plan(procs, len(hosts), hosts.index(current_host), addr, port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_worker(environ: Mapping[str, str]) -> bool:
    """True inside a process started by `launch` or by torchrun."""
    return "RANK" in environ and "WORLD_SIZE" in environ


def torchrun_command(p: Plan, command: Sequence[str]) -> list[str]:
    """`python -m torch.distributed.run` (torchrun) starting this host's workers for `command`
    (an executable and its arguments; `--no-python` runs it as given). torchrun sets RANK,
    LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT, stops the other
    workers when one fails, and passes SIGTERM on to them (SageMaker stopping the job)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={p.n_hosts}",
        f"--nproc-per-node={p.procs_per_host}",
        f"--node-rank={p.node_rank}",
        f"--master-addr={p.master_addr}",
        f"--master-port={p.master_port}",
        "--max-restarts=0",
        "--no-python",
        *command,
    ]


def launch(p: Plan, command: Sequence[str]) -> int:
    """Start this host's workers through torchrun and wait; non-zero when any worker failed.
    SIGTERM to this process is passed on to torchrun, which passes it on to the workers."""
    proc = subprocess.Popen(torchrun_command(p, command))

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


class GpuCountError(RuntimeError):
    """SageMaker says the instance has more GPUs than torch can use."""


def check_gpus(sm_num_gpus: int, visible: int, cuda_build: bool) -> None:
    """SM_NUM_GPUS (what the instance has) against torch.cuda.device_count() (what torch sees):
    fewer seen means a CPU build of torch in a GPU image, or devices hidden from the container."""
    if sm_num_gpus > visible:
        why = (
            "this torch is a CPU build (torch.version.cuda is None): build the image for a GPU type "
            "(container/Dockerfile, TORCH_VARIANT)"
            if not cuda_build
            else "check CUDA_VISIBLE_DEVICES and the NVIDIA driver in the container"
        )
        raise GpuCountError(f"SM_NUM_GPUS={sm_num_gpus} but torch.cuda.device_count() is {visible}: {why}")


def threads_per_worker(environ: Mapping[str, str]) -> int:
    """CPU threads for one worker: the host's cores shared by its workers (torchrun alone would
    leave each at 1 thread, torch alone each at every core, oversubscribing the host)."""
    cores = int(environ.get("SM_NUM_CPUS") or os.cpu_count() or 1)
    local_world = int(environ.get("LOCAL_WORLD_SIZE") or 1)
    return max(1, cores // max(1, local_world))


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank among `world_size` and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - immutable value

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def rows(self) -> slice:
        """This rank's shard of a table's rows (of a frame, an array, a tensor)."""
        return slice(self.rank, None, self.world_size)

    def own(self, batch: torch.Tensor) -> torch.Tensor:
        """The rows of `batch` (row numbers in the whole table) that this rank holds, as positions
        in its shard: each rank takes its own rows of a global batch, and together they take all."""
        if not self.distributed:
            return batch
        return batch[batch % self.world_size == self.rank] // self.world_size

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (any picklable object), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def gather_rows(self, part: np.ndarray) -> np.ndarray:
        """A table's rows back in the table's order, from every rank's `rows` shard of it."""
        if not self.distributed:
            return part
        parts = self.gather(part)
        whole = np.empty((sum(len(p) for p in parts), *part.shape[1:]), dtype=part.dtype)
        for rank, rows in enumerate(parts):
            whole[rank :: self.world_size] = rows
        return whole

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def from_main(self, value: int) -> int:
        """The main process's value, on every process (decisions everyone must share)."""
        if not self.distributed:
            return value
        box = torch.tensor([value], dtype=torch.int64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.broadcast(box, src=0)
        return int(box.item())

    def any(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any (a stop request must be shared)."""
        if not self.distributed:
            return bool(flag)
        box = torch.tensor([int(flag)], dtype=torch.int64, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(box, op=dist.ReduceOp.MAX)
        return bool(box.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start(environ: Mapping[str, str], use_cuda: bool, timeout_seconds: float = 1800) -> Runtime:
    """This process's runtime; joins the process group when there is more than one process.
    `timeout_seconds` bounds every collective, the barrier where the other ranks wait while
    rank 0 writes the model directory included (the `dist_timeout_seconds` hyperparameter)."""
    world = int(environ.get("WORLD_SIZE", "1"))
    rank = int(environ.get("RANK", "0"))
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1:
        torch.set_num_threads(threads_per_worker(environ))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            rank=rank,
            world_size=world,
            timeout=timedelta(seconds=timeout_seconds),
        )
    return Runtime(rank, local_rank, world, device)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
