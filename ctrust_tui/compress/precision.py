"""Precision of the calibration forward passes (GPTQ, SparseGPT, Wanda).

Those methods spend most of their CPU time running decoder layers over the calibration tokens
(Wanda and SparseGPT: the dense layer for statistics, then the compressed layer for the next
layer's inputs). The reference implementations run those passes in fp16 on a GPU, and so does
ctrust on a GPU (the model is loaded in bf16/fp16). On a CPU the model is held in float32;
with `precision="auto"` the layer forwards run under `torch.autocast(cpu, bfloat16)` when bf16
is measurably faster on this machine for this model's matmul shapes (`engine.dtype.cpu_probe`,
the same measurement `--dtype auto` uses), otherwise in float32. CPU flags do not predict it:
an AMX machine ran bf16 ~2x faster than float32, an avx512_bf16 machine without AMX 1.8x slower
(161 vs 290 GFLOP/s), an AMD EPYC without either 5x slower. Under autocast the residual stream,
norms and every statistic (input norms, Hessians X^T X) stay float32; only the linear layers' and
attention's products take bf16 inputs with float32 accumulation. Measured on SmolLM2-135M
(docs/compression.md): perplexity after GPTQ, SparseGPT and Wanda within float noise of the
float32 run and never above the literal reference loops'; 1.3-1.6x less time per method where
bf16 is the faster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import CtrustError
from .types import CALIBRATION_PRECISIONS


def forward_dtype(precision: str, device: torch.device | str, param_dtype: torch.dtype,
                  bf16_faster: bool | None = None, config: Any = None) -> torch.dtype | None:
    """The autocast dtype for calibration forwards, or None to run them in the weights' own dtype.
    `bf16_faster` overrides the measurement (tests); `config` gives the shapes to measure."""
    if precision not in CALIBRATION_PRECISIONS:
        raise CtrustError(f"calibration precision {precision!r}: choose one of {', '.join(CALIBRATION_PRECISIONS)}")
    device = torch.device(device)
    if precision == "fp32" or param_dtype != torch.float32 or device.type not in ("cpu", "cuda"):
        return None  # a half-precision model already runs its forwards in half precision
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cpu":
        if bf16_faster is None:
            from ..engine.dtype import bf16_is_faster

            bf16_faster = bf16_is_faster(config)
        return torch.bfloat16 if bf16_faster else None
    return None  # auto on a GPU: the model's dtype (api loads it in bf16/fp16)


@contextlib.contextmanager
def forward_precision(dtype: torch.dtype | None, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed layer forwards under autocast to `dtype` (no-op for None)."""
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield
