"""Precision of the calibration forward passes (GPTQ, SparseGPT, Wanda).

Those methods spend most of their CPU time running decoder layers over the calibration tokens
(Wanda and SparseGPT: the dense layer for statistics, then the compressed layer for the next
layer's inputs). The reference implementations run those passes in fp16 on a GPU, and so does
ctrust on a GPU (the model is loaded in bf16/fp16). On a CPU the model is held in float32;
with `precision="auto"` the layer forwards run under `torch.autocast(cpu, bfloat16)` when the
CPU multiplies bf16 natively (AVX512-BF16 or AMX: measured 380-420 GFLOP/s against 120-190
for float32 on 2 cores), otherwise in float32. Under autocast the residual stream, norms and
every statistic (input norms, Hessians X^T X) stay float32; only the linear layers' and
attention's products take bf16 inputs with float32 accumulation. Measured on SmolLM2-135M
(docs/compression.md): perplexity after GPTQ, SparseGPT and Wanda within float noise of the
float32 run and never above the literal reference loops'; 1.3-1.6x less time per method.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import CtrustError
from .types import CALIBRATION_PRECISIONS

_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when /proc/cpuinfo (or `cpuinfo`) lists bf16 instructions. Elsewhere (macOS, Windows)
    False: bf16 would be emulated there, slower than float32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(f in flags for f in _NATIVE_BF16_FLAGS)
    return False


def forward_dtype(precision: str, device: torch.device | str, param_dtype: torch.dtype,
                  native_bf16: bool | None = None) -> torch.dtype | None:
    """The autocast dtype for calibration forwards, or None to run them in the weights' own dtype."""
    if precision not in CALIBRATION_PRECISIONS:
        raise CtrustError(f"calibration precision {precision!r}: choose one of {', '.join(CALIBRATION_PRECISIONS)}")
    device = torch.device(device)
    if precision == "fp32" or param_dtype != torch.float32 or device.type not in ("cpu", "cuda"):
        return None  # a half-precision model already runs its forwards in half precision
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cpu":
        native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
        return torch.bfloat16 if native else None
    return None  # auto on a GPU: the model's dtype (api loads it in bf16/fp16)


@contextlib.contextmanager
def forward_precision(dtype: torch.dtype | None, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed layer forwards under autocast to `dtype` (no-op for None)."""
    if dtype is None:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield
