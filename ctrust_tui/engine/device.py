"""Device memory for batch sizing; the device itself is picked by `ctrust_tui.device.pick_device`,
the one picker, re-exported here for the engine. The dtype is chosen in `engine.dtype`."""

from __future__ import annotations

import torch

from ..device import pick_device

__all__ = ["free_memory_bytes", "pick_device"]


def free_memory_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return None
