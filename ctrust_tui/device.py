"""The one device picker (engine loading, compression, the CLI and the Setup screen).

`auto` prefers CUDA, then Apple's MPS, then the CPU. Compression asks without MPS: GPTQ's
Cholesky solves and SparseGPT's inverse Hessians are not implemented there, so `auto` compresses
on the CPU of a Mac; an explicit `--device mps` is still honoured. Importing this module does not
import torch (the names serve CLI help and the TUI); `pick_device` imports it when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import CtrustError

if TYPE_CHECKING:
    import torch

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
DEVICE_HELP = "auto | cpu | cuda[:N] | mps (auto: CUDA, then MPS, then CPU)"
# the precision a model generates in (engine.dtype chooses and measures; these names serve CLI and TUI)
DTYPE_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
DTYPE_HELP = ("auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA, fp16 on MPS; on a CPU whichever of fp32 and bf16 a "
              "short benchmark of the model's matmuls finds faster here, measured once and cached; "
              "CTRUST_DTYPE sets what auto means)")


def validate_device(requested: str | None) -> str:
    """The normalised request ('auto', 'cpu', 'cuda', 'cuda:1', 'mps'); one clear error otherwise."""
    req = (requested or "auto").strip().lower()
    if req in DEVICES or (req.startswith("cuda:") and req[5:].isdigit()):
        return req
    raise CtrustError(f"unknown device {requested!r}; choose one of: {', '.join(DEVICES)} (or cuda:N)")


def pick_device(requested: str | None = "auto", *, mps: bool = True) -> torch.device:
    """The torch device for a request; `mps=False` keeps `auto` off MPS (compression)."""
    import torch

    req = validate_device(requested)
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if req == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps and has_mps else "cpu")
    if req.startswith("cuda") and not torch.cuda.is_available():
        raise CtrustError(f"device {req!r} requested but no CUDA GPU is available; use --device cpu or auto")
    if req == "mps" and not has_mps:
        raise CtrustError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    return torch.device(req)
