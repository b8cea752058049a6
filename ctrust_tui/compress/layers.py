"""Layer-wise compression engine for Llama-family decoders (plain PyTorch, transformers 5).

Public API (used by gptq/sparsegpt/wanda here, and available to awq.py):

    default_device() -> torch.device                      # cuda if available, else cpu
    get_decoder_layers(model) -> nn.ModuleList            # model.model.layers, or CtrustError
    find_linears(layer) -> dict[str, nn.Linear]           # "self_attn.q_proj", ... in module order
    sequential_groups(names, true_sequential) -> list[list[str]]
    capture_first_layer_inputs(model, ids, device, batch=None) -> (hidden [n, seq, h], kwargs)
    run_sequential(model, ids, *, device, make_collector, compress, true_sequential,
                   progress=None, cancel=None, label="", batch=None, compress_shared=None) -> dict[str, dict]
    run_weight_only(model, *, device, compress, progress=None, cancel=None, label="") -> dict[str, dict]
    compress_modules(layer_idx, names, mods, collector, compress, compress_shared) -> dict[str, dict]

How `run_sequential` works (as the reference GPTQ/SparseGPT/Wanda `llama.py` scripts do):
the calibration ids go through the embeddings once (a pre-hook on layer 0 records its inputs
and the kwargs it gets: position_embeddings, attention_mask, position_ids, cache_position;
use_cache=False, cache objects dropped). Then for each decoder layer: move it to `device`,
for each *group* of its nn.Linear modules register forward pre-hooks that feed the module's
input X to `make_collector(name, module)` (e.g. Hessian sum X^T X, or per-feature sum of x^2),
run the layer over all calibration samples in batches, call `compress(layer_idx, name, module,
collector)` for each module of the group (it overwrites `module.weight` and returns a stats
dict), then recompute the layer's outputs with the *compressed* layer; they are the next
layer's inputs. `cancel()` is checked before each layer (raises `Cancelled`; the model is then
partly compressed and must be discarded/reloaded), a `CompressProgress` is emitted per step.

Groups: `true_sequential=True` (GPTQ; AutoGPTQ's default, and the paper used AutoGPTQ) gives
[q,k,v], [o], [gate,up], [down] -- each group sees inputs produced by the already-compressed
earlier groups. `False` (SparseGPT, Wanda: their reference scripts) gives one group with all
linears, all statistics taken from the dense layer.

Cost savings (same results as the straightforward loop):
- true-sequential Llama-family layers run in stages (`staged.py`): each group's inputs computed
  once, after the group before it was compressed -- one forward per layer instead of ~1.8;
  the hooked path below serves every other layer shape;
- modules fed the same input tensor (q/k/v; gate/up) share one collector: one X^T X, not three;
- a statistics pass stops the layer forward (exception from a pre-hook) as soon as every module
  of the group has its input, so e.g. the q/k/v pass costs only the input RMSNorm;
- for the last group of a true-sequential layer (down_proj) the statistics pass runs the whole
  layer and keeps its outputs and down_proj's inputs; after quantization the outputs are fixed
  up by `x @ (W_new - W_old)^T` (the layer output is `residual + down_proj(x)` in Llama-family
  decoders) instead of a second full forward. This is checked once against a real forward (on
  the first sample of the first layer) and only used for float32 hidden states within a memory
  budget; otherwise the outputs are recomputed with a forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, Protocol

import torch
from torch import nn

from ..errors import Cancelled, CtrustError
from .types import CancelFn, CompressProgress, ProgressFn

SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "smollm3")
TRUE_SEQUENTIAL = (
    ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    ("self_attn.o_proj",),
    ("mlp.gate_proj", "mlp.up_proj"),
    ("mlp.down_proj",),
)
CORRECTION_BUDGET_BYTES = 1 << 30  # keep the last group's inputs for output fix-up below this
_DROP_KWARGS = ("past_key_values", "past_key_value", "cache")


class Collector(Protocol):
    def add(self, x: torch.Tensor) -> None:  # x: the module input, [..., in_features]
        ...


class _Stop(Exception):
    """Raised from a hook to end a forward pass early."""


def default_device() -> torch.device:
    from ..device import pick_device

    return pick_device("auto", mps=False)


def get_decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Llama-family causal LM, or a CtrustError naming the architecture."""
    cfg = getattr(model, "config", None)
    mtype = getattr(cfg, "model_type", None)
    archs = getattr(cfg, "architectures", None) or [type(model).__name__]
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    ok = (
        mtype in SUPPORTED_MODEL_TYPES
        and isinstance(layers, nn.ModuleList)
        and len(layers) > 0
        and hasattr(inner, "embed_tokens")
    )
    if not ok:
        raise CtrustError(
            f"compression does not support the {archs[0]} architecture (model_type {mtype!r}); "
            "supported: Llama-family decoders (Llama, Mistral, Qwen2/3, SmolLM)"
        )
    return layers


def find_linears(layer: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}


def sequential_groups(names: list[str], true_sequential: bool) -> list[list[str]]:
    """Groups of linear names processed one after the other (see module doc)."""
    if not true_sequential:
        return [list(names)]
    groups = [[n for n in g if n in names] for g in TRUE_SEQUENTIAL]
    groups = [g for g in groups if g]
    rest = [n for n in names if not any(n in g for g in groups)]
    return groups + ([rest] if rest else [])


def _auto_batch(seqlen: int, device: torch.device) -> int:
    tokens = 8192 if device.type == "cuda" else 4096
    return max(1, tokens // max(1, seqlen))


def _emit(progress: ProgressFn | None, label: str, layer: int, n: int, step: str, msg: str = "") -> None:
    if progress is not None:
        progress(CompressProgress(spec=label, layer=layer, n_layers=n, step=step, message=msg))


def _check_cancel(cancel: CancelFn | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


@torch.no_grad()
def capture_first_layer_inputs(
    model: nn.Module, ids: torch.Tensor, device: torch.device | str, batch: int | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Hidden states entering decoder layer 0 ([n, seq, h], model dtype, on `device`) and the
    keyword arguments the layers need (batch dimension 1, broadcast over any batch)."""
    device = torch.device(device)
    layers = get_decoder_layers(model)
    inner = model.model
    batch = batch or _auto_batch(ids.shape[1], device)
    movers = [m for m in (inner.embed_tokens, getattr(inner, "rotary_emb", None)) if m is not None]
    homes = [next(iter(m.parameters()), next(iter(m.buffers()), torch.empty(0))).device for m in movers]
    seen: dict[str, Any] = {}

    def grab(module, args, kwargs):
        seen["hidden"] = args[0] if args else kwargs["hidden_states"]
        seen["kwargs"] = {k: v for k, v in kwargs.items() if k != "hidden_states" and k not in _DROP_KWARGS}
        raise _Stop

    def run(chunk: torch.Tensor) -> None:
        try:
            model(input_ids=chunk.to(device), use_cache=False)
        except _Stop:
            pass
        else:  # pragma: no cover - the hook always fires
            raise RuntimeError("decoder layer 0 was never called")

    handle = layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for m in movers:
            m.to(device)
        run(ids[:1])  # kwargs with batch dimension 1: they broadcast over any batch size
        kwargs = seen["kwargs"]
        kwargs["use_cache"] = False
        hidden = None
        for b0 in range(0, ids.shape[0], batch):
            run(ids[b0 : b0 + batch])
            h = seen["hidden"]
            if hidden is None:
                hidden = torch.empty((ids.shape[0],) + tuple(h.shape[1:]), dtype=h.dtype, device=device)
            hidden[b0 : b0 + h.shape[0]] = h
    finally:
        handle.remove()
        for m, home in zip(movers, homes):
            m.to(home)
    return hidden, kwargs


class _GroupPass:
    """Forward pre-hooks feeding the inputs of one group of linears to their collectors."""

    def __init__(self, modules: dict[str, nn.Linear], make_collector, stop_early: bool, keep_inputs: bool):
        self.modules = modules
        self.collectors: dict[str, Collector] = {}
        self.alias: dict[str, str] = {}  # module -> module whose input tensor it shares
        self.make_collector = make_collector
        self.stop_early = stop_early
        self.keep_inputs = keep_inputs
        self.inputs: dict[str, list[torch.Tensor]] = {}
        self.first = True
        self.handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in modules.items()]

    def begin(self) -> None:
        self.seen: list[tuple[torch.Tensor, str]] = []
        self.covered: set[str] = set()

    def end(self) -> None:
        self.seen = []
        self.first = False

    def _hook(self, name: str):
        def hook(module, args):
            x = args[0]
            if name not in self.alias:
                src = next((n for t, n in self.seen if t is x), None) if self.first else None
                if src is not None:
                    self.alias[name] = src
                else:
                    if name not in self.collectors:
                        self.collectors[name] = self.make_collector(name, module)
                    self.collectors[name].add(x)
                    if self.keep_inputs:
                        self.inputs.setdefault(name, []).append(x.detach())
                    self.seen.append((x, name))
            self.covered.add(name)
            self.covered.update(n for n, s in self.alias.items() if s in self.covered)
            if self.stop_early and len(self.covered) == len(self.modules):
                raise _Stop

        return hook

    def collector(self, name: str) -> Collector:
        return self.collectors[self.alias.get(name, name)]

    def input_of(self, name: str) -> list[torch.Tensor]:
        return self.inputs[self.alias.get(name, name)]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def compress_modules(layer_idx: int, names: list[str], mods: dict[str, nn.Linear], collector: Collector,
                     compress: Callable[[int, str, nn.Linear, Collector], dict],
                     compress_shared: Callable[[int, list[str], list[nn.Linear], Collector], dict[str, dict]] | None,
                     ) -> dict[str, dict]:
    """Compress modules fed one input (one collector): together via `compress_shared` when given,
    else one by one. Returns {"<layer>.<name>": stats}."""
    if compress_shared is not None and len(names) > 1:
        found = compress_shared(layer_idx, names, [mods[n] for n in names], collector)
        return {f"{layer_idx}.{name}": st for name, st in found.items()}
    return {f"{layer_idx}.{name}": compress(layer_idx, name, mods[name], collector) for name in names}


def _forward(layer, inps, outs, kwargs, batch, hooks: _GroupPass | None = None,
             amp: Callable[[], AbstractContextManager] = nullcontext) -> None:
    for b0 in range(0, inps.shape[0], batch):
        if hooks is not None:
            hooks.begin()
        try:
            with amp():
                out = layer(inps[b0 : b0 + batch], **kwargs)
            if outs is not None:
                outs[b0 : b0 + batch] = out[0] if isinstance(out, tuple) else out
        except _Stop:
            pass
        finally:
            if hooks is not None:
                hooks.end()


@torch.no_grad()
def run_sequential(
    model: nn.Module,
    ids: torch.Tensor,
    *,
    device: torch.device | str | None = None,
    make_collector: Callable[[str, nn.Linear], Collector],
    compress: Callable[[int, str, nn.Linear, Collector], dict],
    true_sequential: bool,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    label: str = "",
    batch: int | None = None,
    compress_shared: Callable[[int, list[str], list[nn.Linear], Collector], dict[str, dict]] | None = None,
    staged: bool = True,
    forward_dtype: torch.dtype | None = None,
) -> dict[str, dict]:
    """Compress every nn.Linear of every decoder layer, layer by layer, on calibration `ids`
    ([n, seq] LongTensor). Returns {"<layer>.<module name>": stats from `compress`}.

    `compress_shared(layer_idx, names, modules, collector) -> {name: stats}`, if given, is called
    once for modules that share one collector (q/k/v, gate/up) instead of `compress` per module
    (GPTQ quantizes the stacked rows in one pass: rows are independent given H).

    `compress` must overwrite `module.weight.data` (same shape/dtype) and must not modify the
    collector's tensors in place (q/k/v and gate/up share one collector).

    `staged` (true-sequential only): run Llama-family layers stage by stage, one forward per
    layer (`staged.py`); layers it does not fit take the hooked path below.

    `forward_dtype` (e.g. torch.bfloat16): run the layer forwards under autocast to it
    (`precision.py`); collectors still receive the modules' inputs, which they cast to float32."""
    from .precision import forward_precision
    from .staged import STAGE_BUDGET_BYTES, StagedLayer, run_layer_staged, stage_bytes

    device = torch.device(device) if device is not None else default_device()
    amp = partial(forward_precision, forward_dtype, device)
    layers = get_decoder_layers(model)
    n_layers = len(layers)
    batch = batch or _auto_batch(ids.shape[1], device)
    _check_cancel(cancel)
    _emit(progress, label, 0, n_layers, "capture", "embedding calibration samples")
    inps, kwargs = capture_first_layer_inputs(model, ids, device, batch)
    outs = torch.empty_like(inps)
    # the output fix-up is exact only when the whole forward is float32
    correction_ok: bool | None = None if inps.dtype == torch.float32 and forward_dtype is None else False
    staged_ok: bool | None = None if true_sequential and staged else False
    stats: dict[str, dict] = {}
    for i, layer in enumerate(layers):
        _check_cancel(cancel)
        t0 = time.perf_counter()
        home = next(layer.parameters()).device
        layer.to(device)
        linears = find_linears(layer)
        groups = sequential_groups(list(linears), true_sequential)
        outputs_done = False
        if staged_ok is not False:
            chain = StagedLayer(layer, kwargs)
            if staged_ok is None:  # decided once, on the first layer, before anything is compressed
                staged_ok = (StagedLayer.supports(layer, list(linears))
                             and stage_bytes(inps, layer) <= STAGE_BUDGET_BYTES
                             and chain.matches_layer(inps[:1], amp))
            if staged_ok and StagedLayer.supports(layer, list(linears)):
                stats.update(run_layer_staged(
                    chain, i, inps, outs, batch, make_collector=make_collector, compress=compress,
                    compress_shared=compress_shared, amp=amp,
                    emit=lambda step, msg, i=i: _emit(progress, label, i + 1, n_layers, step,
                                                      f"layer {i + 1}/{n_layers}: {msg}"),
                ))
                groups, outputs_done = [], True
        for gi, group in enumerate(groups):
            last = gi == len(groups) - 1
            mods = {n: linears[n] for n in group}
            in_bytes = inps.shape[0] * inps.shape[1] * sum(m.in_features for m in mods.values()) * 4
            fixup = last and true_sequential and len(groups) > 1 and correction_ok is not False
            fixup = fixup and in_bytes <= CORRECTION_BUDGET_BYTES
            _emit(progress, label, i + 1, n_layers, "calibrate", f"layer {i + 1}: inputs of {', '.join(group)}")
            hooks = _GroupPass(mods, make_collector, stop_early=not fixup, keep_inputs=fixup)
            try:
                _forward(layer, inps, outs if fixup else None, kwargs, batch, hooks, amp)
            finally:
                hooks.remove()
            old = {n: m.weight.detach().clone() for n, m in mods.items()} if fixup else {}
            clusters: dict[str, list[str]] = {}  # modules fed the same input -> one collector
            for name in mods:
                clusters.setdefault(hooks.alias.get(name, name), []).append(name)
            for names in clusters.values():
                what = ", ".join(names)
                _emit(progress, label, i + 1, n_layers, f"compress {names[0]}", f"layer {i + 1}/{n_layers}: {what}")
                stats.update(compress_modules(i, names, mods, hooks.collector(names[0]), compress, compress_shared))
            if fixup:
                for name, mod in mods.items():
                    delta = (mod.weight.detach().to(torch.float32) - old[name].to(torch.float32)).t()
                    b0 = 0
                    for x in hooks.input_of(name):
                        nb = x.shape[0]
                        outs[b0 : b0 + nb] += (x.to(torch.float32) @ delta).to(outs.dtype)
                        b0 += nb
                if correction_ok is None:  # verify the shortcut once against a real forward
                    with amp():
                        ref = layer(inps[:1], **kwargs)
                    ref = (ref[0] if isinstance(ref, tuple) else ref).float()
                    diff = (ref - outs[:1].float()).norm().item()
                    change = sum(
                        (hooks.input_of(n)[0][:1].float() @ (m.weight.float() - old[n].float()).t()).norm().item()
                        for n, m in mods.items()
                    )
                    correction_ok = diff <= 1e-2 * change + 1e-5 * ref.norm().item()
                outputs_done = bool(correction_ok)
            del hooks, old
        if not outputs_done:
            _emit(progress, label, i + 1, n_layers, "outputs", f"layer {i + 1}: outputs of the compressed layer")
            _forward(layer, inps, outs, kwargs, batch, amp=amp)
        layer.to(home)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        inps, outs = outs, inps
        _emit(progress, label, i + 1, n_layers, "done", f"layer {i + 1}/{n_layers} in {time.perf_counter() - t0:.1f}s")
    return stats


@torch.no_grad()
def run_weight_only(
    model: nn.Module,
    *,
    device: torch.device | str | None = None,
    compress: Callable[[int, str, nn.Linear], dict],
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    label: str = "",
) -> dict[str, dict]:
    """Apply a data-free `compress(layer_idx, name, module)` to every linear, one layer at a time."""
    device = torch.device(device) if device is not None else default_device()
    layers = get_decoder_layers(model)
    stats: dict[str, dict] = {}
    for i, layer in enumerate(layers):
        _check_cancel(cancel)
        home = next(layer.parameters()).device
        layer.to(device)
        for name, mod in find_linears(layer).items():
            _emit(progress, label, i + 1, len(layers), f"compress {name}", f"layer {i + 1}/{len(layers)}: {name}")
            stats[f"{i}.{name}"] = compress(i, name, mod)
        layer.to(home)
        _emit(progress, label, i + 1, len(layers), "done", f"layer {i + 1}/{len(layers)}")
    return stats
