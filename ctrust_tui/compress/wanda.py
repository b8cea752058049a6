"""Wanda (Sun et al. 2024), as locuslab/wanda `prune_wanda` without the variant search:
metric |W_ij| * ||X_j||_2 (L2 norm of input feature j over all calibration tokens, from the
*dense* layer: all linears of a layer are measured in one pass, then pruned, then the layer's
outputs recomputed for the next layer). Unstructured: per output row, prune the int(cols *
sparsity) lowest; N:M: the m - n lowest of every m consecutive inputs of a row.

Public API:

    NormCollector(in_features, device)      # .add(x): per-feature sum of x^2 (float32); .sq
    wanda_mask(W, sq_norms, sparsity=None, n=None, m=None) -> bool mask (True = pruned)
    wanda_compress(module, sq_norms, sparsity=None, n=None, m=None) -> dict   # in place
"""

from __future__ import annotations

import torch
from torch import nn

from .masks import apply_mask, nm_mask, row_mask


class NormCollector:
    def __init__(self, in_features: int, device: torch.device | str):
        self.sq = torch.zeros(in_features, dtype=torch.float32, device=device)
        self.ntokens = 0

    def add(self, x: torch.Tensor) -> None:
        x2 = x.reshape(-1, x.shape[-1]).to(torch.float32)
        self.ntokens += x2.shape[0]
        self.sq += x2.square().sum(dim=0)  # the reference's norm(x) ** 2 (vector_norm is 2-6x slower here)


def wanda_mask(W: torch.Tensor, sq_norms: torch.Tensor, sparsity=None, n=None, m=None) -> torch.Tensor:
    metric = W.detach().abs().float() * torch.sqrt(sq_norms.float()).reshape(1, -1)
    if n is not None and m is not None:
        return nm_mask(metric, n, m)
    return row_mask(metric, float(sparsity))


@torch.no_grad()
def wanda_compress(module: nn.Linear, sq_norms: torch.Tensor, sparsity=None, n=None, m=None) -> dict:
    return apply_mask(module, wanda_mask(module.weight.data, sq_norms, sparsity, n, m))
