"""Literal, unoptimised forms of the reference GPTQ / SparseGPT column loops, for tests only.

Written from the algorithms as IST-DASLab gptq `fasterquant` and sparsegpt `fasterprune` state
them: weights as [rows, cols], Hinv = upper Cholesky factor of (H + damp)^-1 computed with two
factorisations, one level of lazy 128-column blocks, every remaining column of the block
updated after each column. The package's loops (transposed weights, one Cholesky plus a
triangular inverse, two-level lazy updates) must give the same weights.
"""

from __future__ import annotations

import torch

from ctrust_tui.compress.quantizer import fake_quantize, minmax_params


def _hinv(H: torch.Tensor, W: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    H = H.clone()
    W = W.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    idx = torch.arange(H.shape[0])
    H[idx, idx] += percdamp * torch.mean(torch.diag(H))
    L = torch.linalg.cholesky(H)
    return torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True), W


def gptq_literal(W, H, bits, group_size=128, sym=True, act_order=False, blocksize=128, percdamp=0.01,
                 static_groups=False):
    """`static_groups` (AutoGPTQ's option): each group's range is taken once, before anything is
    quantized, from the dead-zeroed original weights of its consecutive columns; column c always
    uses the range of group c // group_size, in whatever order act-order visits it."""
    maxq = 2**bits - 1
    W = W.float().clone()
    H = H.float().clone()
    groups = None
    if static_groups and group_size != -1:
        W0 = W.clone()
        W0[:, torch.diag(H) == 0] = 0
        groups = [minmax_params(W0[:, c : c + group_size], bits, sym) for c in range(0, W.shape[1], group_size)]
    perm = None
    if act_order:
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
    Hinv, W = _hinv(H, W, percdamp)
    rows, cols = W.shape
    Q = torch.zeros_like(W)
    scale, zero = minmax_params(W, bits, sym)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if groups is not None:
                original_col = int(perm[i1 + i]) if perm is not None else i1 + i
                scale, zero = groups[original_col // group_size]
            elif group_size != -1 and (i1 + i) % group_size == 0:
                scale, zero = minmax_params(W[:, i1 + i : i1 + i + group_size], bits, sym)
            w = W1[:, i]
            q = fake_quantize(w.unsqueeze(1), scale, zero, maxq).flatten()
            Q[:, i1 + i] = q
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    if perm is not None:
        Q = Q[:, torch.argsort(perm)]
    return Q


def sparsegpt_literal(W, H, sparsity=None, n=None, m=None, blocksize=128, percdamp=0.01):
    W = W.float().clone()
    Hinv, W = _hinv(H.float(), W, percdamp)
    rows, cols = W.shape
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if n is None:
            score = W1**2 / torch.diag(Hinv1).reshape(1, -1) ** 2
            k = int(score.numel() * sparsity)
            order = torch.sort(score.flatten(), stable=True).indices[:k]
            mask1 = torch.zeros(score.numel(), dtype=torch.bool)
            mask1[order] = True
            mask1 = mask1.reshape(score.shape)
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if n is not None and i % m == 0:
                score = W1[:, i : i + m] ** 2 / torch.diag(Hinv1)[i : i + m].reshape(1, -1) ** 2
                idx = torch.sort(score, dim=1, stable=True).indices[:, : m - n]
                mask1.scatter_(1, i + idx, True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W
