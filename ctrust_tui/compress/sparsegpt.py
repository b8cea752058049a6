"""SparseGPT (Frantar & Alistarh 2023), following IST-DASLab/sparsegpt `sparsegpt.py` (`fasterprune`).

Public API:

    sparsegpt_prune_weight(W, H, sparsity=None, n=None, m=None, blocksize=128, percdamp=0.01,
                           row_splits=None) -> (W_pruned float32, loss per row)
    sparsegpt_compress(module, H, sparsity=None, n=None, m=None) -> dict   # in place; {"error", "sparsity"}
    sparsegpt_compress_shared(modules, H, ...) -> list[dict]     # q/k/v in one pass, masks per matrix

H is the same Hessian as GPTQ's (`gptq.HessianCollector`). Dead inputs get H_ii = 1 and
W[:, i] = 0; damping 0.01 * mean(diag H); Hinv = upper Cholesky factor of H^-1. Columns are
visited in lazy blocks of 128: unstructured masks are chosen once per block as the lowest
w^2 / Hinv_ii^2 over the block (exactly int(block numel * sparsity) weights -- the reference
prunes `<= threshold`, one more); N:M masks are chosen every m columns from the current
(updated) weights, pruning the m - n lowest of each group. Each pruned weight's error is
compensated on the remaining columns (OBS update), as in GPTQ, with GPTQ's two-level lazy
updates (`gptq.spread_error`; N:M groups that would straddle an inner block fall back to one
level). Pruned weights are exactly 0.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidSpec
from .gptq import INNER_BLOCK, _prepare, one_thread, spread_error, write_back_rows
from .masks import lowest_k


@torch.no_grad()
def sparsegpt_prune_weight(
    W: torch.Tensor,
    H: torch.Tensor,
    sparsity: float | None = None,
    n: int | None = None,
    m: int | None = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
    row_splits: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune W [rows, cols] given H [cols, cols]; returns (W_pruned float32, loss per row).
    `row_splits`: sizes of stacked matrices sharing H (q/k/v): masks are chosen per matrix.
    Weights are held transposed ([cols, rows]) so the column loop touches contiguous memory."""
    rows, cols = W.shape
    structured = n is not None and m is not None
    if structured and (cols % m or blocksize % m):
        raise InvalidSpec(f"{n}:{m} sparsity needs the input size ({cols}) to be a multiple of {m}")
    WT, Hinv, _ = _prepare(W, H, percdamp, act_order=False)
    # an N:M group read at column i must already carry every earlier column's update: true when
    # groups never straddle two inner blocks
    inner = INNER_BLOCK if not structured or INNER_BLOCK % m == 0 or m % INNER_BLOCK == 0 else blocksize
    with one_thread():
        losses = torch.zeros(rows, dtype=torch.float32, device=WT.device)
        for i1 in range(0, cols, blocksize):
            i2 = min(i1 + blocksize, cols)
            count = i2 - i1
            W1 = WT[i1:i2].clone()
            Err1 = torch.empty_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            dinv = torch.diag(Hinv1).reshape(-1, 1)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if not structured:
                score = (W1 * W1) / (dinv**2)  # [count, rows]
                r0 = 0
                for size in row_splits or [rows]:
                    seg = score[:, r0 : r0 + size].t()  # the reference's [rows, count] order (ties)
                    k = int(seg.numel() * float(sparsity))
                    mask1[:, r0 : r0 + size] = lowest_k(seg.reshape(1, -1), k).reshape(seg.shape).t()
                    r0 += size
            pruned = mask1.to(W1.dtype)  # 1.0 where pruned (float: no per-column bool casts)
            for i in range(count):
                if structured and i % m == 0:
                    score = W1[i : i + m] ** 2 / (dinv[i : i + m] ** 2)  # [m, rows]
                    idx = torch.sort(score.t(), dim=1, stable=True).indices[:, : m - n]
                    mask1[i : i + m].t().scatter_(1, idx, True)
                    pruned[i : i + m] = mask1[i : i + m]
                w = W1[i]
                err = Err1[i]
                torch.mul(w, pruned[i], out=err).div_(Hinv1[i, i])  # w - q: the pruned weights
                w.masked_fill_(mask1[i], 0.0)
                losses.addcmul_(err, err)
                spread_error(W1, Err1, Hinv1, i, count, inner)
            WT[i1:i2] = W1
            if i2 < cols:
                WT[i2:].addmm_(Hinv[i1:i2, i2:].t(), Err1, alpha=-1.0)
    return WT.t().contiguous(), losses / 2


@torch.no_grad()
def sparsegpt_compress_shared(modules: list[nn.Linear], H: torch.Tensor, sparsity=None, n=None, m=None) -> list[dict]:
    """SparseGPT for linears sharing one Hessian (q/k/v, gate/up) in one pass over their stacked rows;
    masks are still chosen per matrix, so the result equals one call per module."""
    Ws = [mod.weight.data for mod in modules]
    P, losses = sparsegpt_prune_weight(
        torch.cat([w.float() for w in Ws]), H, sparsity, n, m, row_splits=[w.shape[0] for w in Ws]
    )
    return write_back_rows(modules, P, losses)


@torch.no_grad()
def sparsegpt_compress(module: nn.Linear, H: torch.Tensor, sparsity=None, n=None, m=None) -> dict:
    return sparsegpt_compress_shared([module], H, sparsity, n, m)[0]
