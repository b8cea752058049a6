"""Pruning masks shared by magnitude / Wanda / SparseGPT. A mask is a bool tensor, True = prune.

Public API:

    nm_mask(metric [rows, cols], n, m) -> mask     # keep the n largest of every m consecutive inputs per row
    row_mask(metric, sparsity) -> mask             # per output row: the int(cols*sparsity) smallest (Wanda)
    matrix_mask(metric, sparsity) -> mask          # whole matrix: the int(numel*sparsity) smallest (magnitude)
    apply_mask(module, mask) -> dict               # zero the weights in place; {"sparsity": ...}

`n` is the number of weights KEPT per group (CompressionSpec: target sparsity 1 - n/m), so
m - n are pruned; for 1:2, 2:4 and 4:8 that is half. Ties are broken by position (stable sort),
so exactly the requested count is pruned (the references prune `<= threshold`, which can take
one more weight or extra ties).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidSpec


def nm_mask(metric: torch.Tensor, n: int, m: int) -> torch.Tensor:
    rows, cols = metric.shape
    if cols % m:
        raise InvalidSpec(f"{n}:{m} sparsity needs the input size ({cols}) to be a multiple of {m}")
    g = metric.reshape(rows, cols // m, m)
    idx = torch.sort(g, dim=-1, stable=True).indices[..., : m - n]
    mask = torch.zeros_like(g, dtype=torch.bool)
    mask.scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def row_mask(metric: torch.Tensor, sparsity: float) -> torch.Tensor:
    k = int(metric.shape[1] * sparsity)
    idx = torch.sort(metric, dim=-1, stable=True).indices[:, :k]
    mask = torch.zeros_like(metric, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


def matrix_mask(metric: torch.Tensor, sparsity: float) -> torch.Tensor:
    k = int(metric.numel() * sparsity)
    idx = torch.sort(metric.flatten(), stable=True).indices[:k]
    mask = torch.zeros(metric.numel(), dtype=torch.bool, device=metric.device)
    mask[idx] = True
    return mask.reshape(metric.shape)


@torch.no_grad()
def apply_mask(module: nn.Linear, mask: torch.Tensor) -> dict:
    module.weight.data[mask] = 0
    return {"sparsity": float((module.weight.data == 0).float().mean())}
