"""One entry point for the plain-PyTorch methods: gptq, rtn, sparsegpt, wanda, magnitude.

Public API (for compress/api.py):

    OWN_METHODS = ("gptq", "rtn", "sparsegpt", "wanda", "magnitude")
    needs_calibration(spec) -> bool          # gptq, sparsegpt, wanda
    apply_method(model, spec, calib_ids=None, *, device=None, progress=None, cancel=None,
                 batch=None) -> dict

`apply_method` compresses `model` (a Llama-family *ForCausalLM, any dtype, any device; weights
are changed in place: fake-quantized values / exact zeros, same dtype and shapes, so it saves
with `save_pretrained` as a normal dense checkpoint). Layers are moved one at a time to
`device` (default: cuda if available, else cpu) and back. `calib_ids` is the LongTensor
[nsamples, seqlen] from `calibration.load_calibration_ids(tokenizer, cfg)`; ignored (may be
None) for rtn and magnitude. `precision` (auto | fp32 | bf16) sets the calibration forwards'
precision (`precision.py`; fp32 here by default, so results do not depend on the CPU; the
app passes the user's CalibrationConfig.precision, `auto` by default). `progress` gets
`CompressProgress` events (layer is 1-based; steps "capture", "calibrate", "compress
<module>", "outputs", "done"). `cancel()` is polled
before each layer; on True it raises `errors.Cancelled` and the model is left PARTLY compressed
-- discard it. Raises `CtrustError` for unsupported architectures, `InvalidSpec` for specs this
module does not handle or that do not fit the model (e.g. N:M with a width not divisible by M).

Returns stats (JSON-serialisable):
    {"method", "spec", "device", "seconds", "true_sequential": bool, "forward_dtype": "bfloat16" | ... | None,
     "sparsity": zeros / weights over all compressed linears,
     "error": sum of per-module errors (GPTQ/SparseGPT: the reference's OBS loss; RTN: ||W-Q||^2),
     "layers": {"<layer idx>.<module name>": {"sparsity": float, "error": float (if any)}}}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CtrustError, InvalidSpec
from .spec import METHODS, CompressionSpec, validate
from .types import CancelFn, ProgressFn

OWN_METHODS = tuple(name for name, info in METHODS.items() if info.pipeline in ("weight_only", "sequential"))


def needs_calibration(spec: CompressionSpec) -> bool:
    return spec.info.pipeline == "sequential"


# -- the implementations, by spec name (the registry in spec.py says which pipeline runs them) --------
def _rtn(spec: CompressionSpec) -> Callable[[int, str, nn.Linear], dict]:
    from .rtn import rtn_compress

    return lambda i, name, mod: rtn_compress(mod, spec.bits, spec.group_size, spec.sym)


def _magnitude(spec: CompressionSpec) -> Callable[[int, str, nn.Linear], dict]:
    from .magnitude import magnitude_compress

    return lambda i, name, mod: magnitude_compress(mod, spec.sparsity, spec.n, spec.m)


@dataclass(frozen=True)
class SequentialPlan:
    """What `layers.run_sequential` needs for one method."""

    make_collector: Callable[[str, nn.Linear], Any]
    compress: Callable[[int, str, nn.Linear, Any], dict]
    compress_shared: Callable[[int, list[str], list[nn.Linear], Any], dict[str, dict]] | None = None
    true_sequential: bool = False  # GPTQ quantizes q/k/v, then o, then the MLP, on updated inputs


def _gptq(spec: CompressionSpec, device: torch.device) -> SequentialPlan:
    from .gptq import HessianCollector, gptq_compress, gptq_compress_shared

    args = (spec.bits, spec.group_size, spec.sym, spec.act_order, spec.static_groups)
    return SequentialPlan(
        make_collector=lambda name, mod: HessianCollector(mod.in_features, device),
        compress=lambda i, name, mod, c: gptq_compress(mod, c.hessian(), *args),
        compress_shared=lambda i, names, mods, c: dict(zip(names, gptq_compress_shared(mods, c.hessian(), *args))),
        true_sequential=True,
    )


def _sparsegpt(spec: CompressionSpec, device: torch.device) -> SequentialPlan:
    from .gptq import HessianCollector
    from .sparsegpt import sparsegpt_compress, sparsegpt_compress_shared

    args = (spec.sparsity, spec.n, spec.m)
    return SequentialPlan(
        make_collector=lambda name, mod: HessianCollector(mod.in_features, device),
        compress=lambda i, name, mod, c: sparsegpt_compress(mod, c.hessian(), *args),
        compress_shared=lambda i, names, mods, c: dict(zip(names, sparsegpt_compress_shared(mods, c.hessian(), *args))),
    )


def _wanda(spec: CompressionSpec, device: torch.device) -> SequentialPlan:
    from .wanda import NormCollector, wanda_compress

    return SequentialPlan(
        make_collector=lambda name, mod: NormCollector(mod.in_features, device),
        compress=lambda i, name, mod, c: wanda_compress(mod, c.sq, spec.sparsity, spec.n, spec.m),
    )


WEIGHT_ONLY: dict[str, Callable[[CompressionSpec], Callable[[int, str, nn.Linear], dict]]] = {
    "rtn": _rtn, "magnitude": _magnitude,
}
SEQUENTIAL: dict[str, Callable[[CompressionSpec, torch.device], SequentialPlan]] = {
    "gptq": _gptq, "sparsegpt": _sparsegpt, "wanda": _wanda,
}


def apply_method(
    model: nn.Module,
    spec: CompressionSpec,
    calib_ids: torch.Tensor | None = None,
    *,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    batch: int | None = None,
    precision: str = "fp32",
) -> dict:
    from .layers import default_device, run_sequential, run_weight_only
    from .precision import forward_dtype

    validate(spec)
    if spec.method not in OWN_METHODS:
        raise InvalidSpec(f"apply_method handles {', '.join(OWN_METHODS)}, not {spec.method!r}")
    if needs_calibration(spec) and (calib_ids is None or calib_ids.dim() != 2 or calib_ids.numel() == 0):
        raise CtrustError(f"{spec}: needs calibration token ids [nsamples, seqlen]")
    device = torch.device(device) if device is not None else default_device()
    param_dtype = next(model.parameters()).dtype
    fdt = (forward_dtype(precision, device, param_dtype, config=getattr(model, "config", None))
           if needs_calibration(spec) else None)
    label = str(spec)
    t0 = time.perf_counter()
    true_seq = False

    if spec.info.pipeline == "weight_only":
        layers = run_weight_only(model, device=device, progress=progress, cancel=cancel, label=label,
                                 compress=WEIGHT_ONLY[spec.method](spec))
    else:
        plan = SEQUENTIAL[spec.method](spec, device)
        true_seq = plan.true_sequential
        layers = run_sequential(
            model, calib_ids, device=device, true_sequential=true_seq, progress=progress, cancel=cancel,
            label=label, batch=batch, forward_dtype=fdt, make_collector=plan.make_collector,
            compress=plan.compress, compress_shared=plan.compress_shared,
        )

    zeros = total = 0
    from .layers import find_linears, get_decoder_layers

    for layer in get_decoder_layers(model):
        for mod in find_linears(layer).values():
            zeros += int((mod.weight.data == 0).sum())
            total += mod.weight.numel()
    errors = [v["error"] for v in layers.values() if "error" in v]
    return {
        "method": spec.method,
        "spec": label,
        "device": str(device),
        "seconds": round(time.perf_counter() - t0, 3),
        "true_sequential": true_seq,
        "forward_dtype": str(fdt or param_dtype).replace("torch.", "") if needs_calibration(spec) else None,
        "sparsity": zeros / max(1, total),
        "error": float(sum(errors)) if errors else None,
        "layers": layers,
    }
