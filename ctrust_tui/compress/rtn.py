"""RTN: plain round-to-nearest min-max quantization, no calibration (GPTQ's `--nearest` baseline,
extended to groups). Same quantizer as GPTQ (see quantizer.py), so RTN vs GPTQ isolates the effect
of GPTQ's error compensation.

Public API:

    rtn_quantize_weight(W, bits, group_size=128, sym=True) -> Tensor   # float32 fake-quantized
    rtn_compress(module: nn.Linear, bits, group_size, sym) -> dict     # in place; {"error": ||W-Q||_F^2}
"""

from __future__ import annotations

import torch
from torch import nn

from .quantizer import quantize_groups


def rtn_quantize_weight(W: torch.Tensor, bits: int, group_size: int = 128, sym: bool = True) -> torch.Tensor:
    return quantize_groups(W, bits, group_size, sym)


@torch.no_grad()
def rtn_compress(module: nn.Linear, bits: int, group_size: int, sym: bool) -> dict:
    W = module.weight.data
    Q = rtn_quantize_weight(W, bits, group_size, sym)
    err = float(((W.float() - Q) ** 2).sum())
    module.weight.data = Q.to(W.dtype)
    return {"error": err, "sparsity": float((module.weight.data == 0).float().mean())}
