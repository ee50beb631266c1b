"""Several GPUs and hosts through torch.distributed (DDP), the same code on one CPU.

`python ml/train.py` on a host with N GPUs starts N worker processes itself (no torchrun
needed), one per GPU, ranks numbered host by host in SageMaker's host order, rendezvous at the
first host. Under torchrun (RANK/WORLD_SIZE already set) it runs as the worker it is told to be.
On CPU the backend is gloo, so two processes on this machine exercise the same code path
(`MLOPS_PROCS_PER_HOST=2`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def launch(p: Plan, command: Sequence[str]) -> int:
    """Start this host's workers, wait for all; if one fails, stop the others. Returns the first
    non-zero exit code (or 0). SIGTERM (SageMaker stopping the job) is passed on to the workers."""
    procs: list[subprocess.Popen] = []
    for local_rank in range(p.procs_per_host):
        env = dict(os.environ)
        env.update(
            RANK=str(p.node_rank * p.procs_per_host + local_rank),
            LOCAL_RANK=str(local_rank),
            WORLD_SIZE=str(p.world_size),
            LOCAL_WORLD_SIZE=str(p.procs_per_host),
            MASTER_ADDR=p.master_addr,
            MASTER_PORT=str(p.master_port),
        )
        procs.append(subprocess.Popen(list(command), env=env))

    def forward(signum, _frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        code = 0
        while True:
            states = [proc.poll() for proc in procs]  # poll every one: returncode is set by poll()
            failed = [state for state in states if state not in (None, 0)]
            if failed:
                code = failed[0]
                for proc in procs:
                    if proc.poll() is None:
                        proc.terminate()
                break
            if all(state == 0 for state in states):
                break
            time.sleep(0.05)
        for proc in procs:
            proc.wait()
            if proc.returncode != 0 and code == 0:
                code = proc.returncode
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)


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

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start(environ: Mapping[str, str], use_cuda: bool) -> Runtime:
    """This process's runtime; joins the process group when there is more than one process."""
    world = int(environ.get("WORLD_SIZE", "1"))
    rank = int(environ.get("RANK", "0"))
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world)
    return Runtime(rank, local_rank, world, device)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
