"""Magnitude pruning, as locuslab/wanda `prune_magnitude`: metric |W|; unstructured = the smallest
fraction over the whole matrix; N:M = the smallest m-n of every m consecutive inputs of a row.
No calibration data.

Public API:

    magnitude_mask(W, sparsity=None, n=None, m=None) -> bool mask (True = pruned)
    magnitude_compress(module, sparsity=None, n=None, m=None) -> dict   # in place; {"sparsity"}
"""

from __future__ import annotations

import torch
from torch import nn

from .gptq import single_threaded
from .masks import apply_mask, matrix_mask, nm_mask


def magnitude_mask(W: torch.Tensor, sparsity: float | None = None, n: int | None = None, m: int | None = None):
    metric = W.detach().abs().float()
    if n is not None and m is not None:
        return nm_mask(metric, n, m)
    return matrix_mask(metric, float(sparsity))


@torch.no_grad()
@single_threaded  # small ops: OpenMP hand-offs cost more than the work
def magnitude_compress(module: nn.Linear, sparsity=None, n=None, m=None) -> dict:
    return apply_mask(module, magnitude_mask(module.weight.data, sparsity, n, m))
