"""Pruning masks shared by magnitude / Wanda / SparseGPT. A mask is a bool tensor, True = prune.

Public API:

    nm_mask(metric [rows, cols], n, m) -> mask     # keep the n largest of every m consecutive inputs per row
    lowest_k(metric [rows, cols], k) -> mask        # the k smallest per row, ties to the lower index
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


def lowest_k(metric: torch.Tensor, k: int) -> torch.Tensor:
    """Mask of the k smallest entries of each row of a 2-D tensor; equal values go to the lower
    index first (the same set as a stable ascending sort), via kthvalue: ~3x faster than sorting."""
    if k <= 0:
        return torch.zeros_like(metric, dtype=torch.bool)
    if k >= metric.shape[1]:
        return torch.ones_like(metric, dtype=torch.bool)
    thr = torch.kthvalue(metric, k, dim=1, keepdim=True).values
    below = metric < thr
    tied = metric == thr
    need = k - below.sum(dim=1, keepdim=True)
    if bool((tied.sum(dim=1, keepdim=True) == need).all()):  # the usual case: no surplus ties
        return below | tied
    return below | (tied & (torch.cumsum(tied, dim=1) <= need))


def row_mask(metric: torch.Tensor, sparsity: float) -> torch.Tensor:
    return lowest_k(metric, int(metric.shape[1] * sparsity))


def matrix_mask(metric: torch.Tensor, sparsity: float) -> torch.Tensor:
    flat = metric.reshape(1, -1)
    return lowest_k(flat, int(flat.shape[1] * sparsity)).reshape(metric.shape)


@torch.no_grad()
def apply_mask(module: nn.Linear, mask: torch.Tensor) -> dict:
    module.weight.data.masked_fill_(mask, 0)
    return {"sparsity": float((module.weight.data == 0).float().mean())}
