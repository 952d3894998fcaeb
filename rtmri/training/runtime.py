"""Where a training run executes: the device (CUDA when present, CPU otherwise) and, when
started by torchrun, the DistributedDataParallel process group and its reductions."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rtmri.training.config import CommonConfig, ConfigError


@dataclass
class Runtime:
    device: torch.device
    amp: bool
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` itself, or its DistributedDataParallel wrapper under torchrun."""
        if not self.distributed:
            return module

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def all_mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the processes."""
        value = value.detach().float().reshape(1).clone()
        if self.distributed:
            dist.all_reduce(value)
            value /= self.world_size
        return float(value.item())

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (in place)."""
        if self.distributed:
            dist.all_reduce(values)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed:
            if dist.is_initialized():
                dist.destroy_process_group()


def setup_runtime(cfg: CommonConfig) -> Runtime:
    """CUDA when present (or asked), CPU otherwise; DDP when started by torchrun (its
    WORLD_SIZE / RANK / LOCAL_RANK environment), with no option to set."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {cfg.device!r}: CUDA is not available here")
        device = torch.device(f"cuda:{local_rank}") if (want == "cuda" and world_size > 1) else torch.device(want if want != "cuda" else "cuda:0")
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    elif want == "cpu":
        device = torch.device("cpu")
    else:
        raise ConfigError(f"device {cfg.device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if world_size > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        if cfg.batch_size % world_size:
            raise ConfigError(f"batch_size {cfg.batch_size} must be a multiple of the {world_size} processes")
    return Runtime(device=device, amp=bool(cfg.amp and device.type == "cuda"), rank=rank, local_rank=local_rank, world_size=world_size)
