"""Min-max uniform quantizer with GPTQ's `Quantizer` semantics (IST-DASLab/gptq quant.py).

Public API:

    minmax_params(x, bits, sym) -> (scale [rows, 1], zero [rows, 1])   # one (scale, zero) per row of x
    fake_quantize(x, scale, zero, maxq) -> Tensor                        # scale * (clamp(round(x/scale)+zero) - zero)
    quantize_groups(W, bits, group_size, sym) -> Tensor                  # min-max round-to-nearest per group

Semantics (weights, per channel = per output row; a "group" = `group_size` consecutive input
columns of a row): maxq = 2^bits - 1; the range always includes 0 (xmin <= 0 <= xmax);
symmetric: xmax = max(|xmin|, xmax), xmin = -xmax where xmin < 0, zero = (maxq + 1) / 2;
asymmetric: zero = round(-xmin / scale); scale = (xmax - xmin) / maxq; an all-zero row gets the
range [-1, 1]. Reference quirk kept: under sym a row with no negative value keeps
xmin = 0, so only half of its range is representable (values above 7/15 * xmax at 4 bits clamp).
Every group therefore holds at most 2^bits distinct values. No MSE grid search
(GPTQ's default is off).
"""

from __future__ import annotations

import torch


def minmax_params(x: torch.Tensor, bits: int, sym: bool) -> tuple[torch.Tensor, torch.Tensor]:
    maxq = 2**bits - 1
    x = x.float()
    zeros = torch.zeros(x.shape[0], device=x.device)
    xmin = torch.minimum(x.min(dim=1).values, zeros)
    xmax = torch.maximum(x.max(dim=1).values, zeros)
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        neg = xmin < 0
        xmin = torch.where(neg, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both0, torch.full_like(xmin, -1.0), xmin)
    xmax = torch.where(both0, torch.full_like(xmax, 1.0), xmax)
    scale = (xmax - xmin) / maxq
    if sym:
        zero = torch.full_like(scale, (maxq + 1) / 2)
    else:
        zero = torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, maxq: int) -> torch.Tensor:
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def quantize_groups(W: torch.Tensor, bits: int, group_size: int, sym: bool) -> torch.Tensor:
    """Round-to-nearest fake quantization of a [rows, cols] matrix (float32 result).
    `group_size=-1`: one range per row; otherwise per `group_size` columns (last group may be shorter)."""
    maxq = 2**bits - 1
    W = W.float()
    cols = W.shape[1]
    gs = cols if group_size == -1 else group_size
    if cols % gs == 0:
        g = W.reshape(W.shape[0] * (cols // gs), gs)
        scale, zero = minmax_params(g, bits, sym)
        return fake_quantize(g, scale, zero, maxq).reshape(W.shape)
    out = torch.empty_like(W)
    for c in range(0, cols, gs):
        blk = W[:, c : c + gs]
        scale, zero = minmax_params(blk, bits, sym)
        out[:, c : c + gs] = fake_quantize(blk, scale, zero, maxq)
    return out
