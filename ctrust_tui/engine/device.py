"""dtype choice per device (half precision on accelerators, fp32 on CPU); the device itself is
picked by `ctrust_tui.device.pick_device`, the one picker, re-exported here for the engine."""

from __future__ import annotations

import torch

from ..device import pick_device

__all__ = ["free_memory_bytes", "pick_device", "pick_dtype"]

def pick_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def free_memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None
