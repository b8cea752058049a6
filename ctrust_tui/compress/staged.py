"""True-sequential layer compression in one forward pass per layer (Llama-family decoders).

GPTQ's true-sequential order ([q,k,v] -> [o] -> [gate,up] -> [down], each group calibrated on
inputs produced by the already-quantized groups before it) done with hooks on whole-layer
forwards recomputes the layer's start once per group: ~1.8 forwards per layer. A Llama-family
decoder layer is a fixed chain, so we run it in stages instead and keep each stage's result:

    x1 = input_layernorm(h)                            -> inputs of q/k/v
    a  = attention(x1) up to o_proj                    -> inputs of o_proj
    m  = h + o_proj(a);  x2 = post_attention_layernorm(m)  -> inputs of gate/up
    x3 = act(gate_proj(x2)) * up_proj(x2)              -> inputs of down_proj
    out = m + down_proj(x3)

Each stage runs once, after the previous group was compressed: exactly the inputs the hooked
path would collect, for one forward's work. The chain is checked against the real layer
forward on one calibration sample before it is trusted (`matches_layer`); any other layer
shape (or a mismatch) falls back to the hooked path. Stage tensors of all calibration samples
are held at once, so the path is used only within `STAGE_BUDGET_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from .layers import _Stop, compress_modules

QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")
O_PROJ = ("self_attn.o_proj",)
GATE_UP = ("mlp.gate_proj", "mlp.up_proj")
DOWN = ("mlp.down_proj",)
STAGE_NAMES = QKV + O_PROJ + GATE_UP + DOWN
STAGE_BUDGET_BYTES = 2 << 30


class StagedLayer:
    """One Llama-family decoder layer, run stage by stage (see module doc)."""

    def __init__(self, layer: nn.Module, kwargs: dict[str, Any]):
        self.layer = layer
        self.kwargs = kwargs
        self.attn = layer.self_attn
        self.mlp = layer.mlp

    @staticmethod
    def supports(layer: nn.Module, linear_names: list[str]) -> bool:
        mlp, attn = getattr(layer, "mlp", None), getattr(layer, "self_attn", None)
        return (
            sorted(linear_names) == sorted(STAGE_NAMES)
            and all(hasattr(layer, n) for n in ("input_layernorm", "post_attention_layernorm"))
            and attn is not None and mlp is not None and callable(getattr(mlp, "act_fn", None))
        )

    def norm1(self, h: torch.Tensor) -> torch.Tensor:
        return self.layer.input_layernorm(h)

    def attention_core(self, x1: torch.Tensor) -> torch.Tensor:
        got: list[torch.Tensor] = []

        def grab(module, args):  # the attention core's output is all we need
            got.append(args[0])
            raise _Stop

        handle = self.attn.o_proj.register_forward_pre_hook(grab)
        try:
            self.attn(hidden_states=x1, **self.kwargs)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not got:  # pragma: no cover - o_proj is always called
            raise RuntimeError("self_attn never called o_proj")
        return got[0]

    def mid(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return h + self.attn.o_proj(a)

    def norm2(self, m: torch.Tensor) -> torch.Tensor:
        return self.layer.post_attention_layernorm(m)

    def mlp_inner(self, x2: torch.Tensor) -> torch.Tensor:
        return self.mlp.act_fn(self.mlp.gate_proj(x2)) * self.mlp.up_proj(x2)

    def out(self, m: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        return m + self.mlp.down_proj(x3)

    def full(self, h: torch.Tensor) -> torch.Tensor:
        m = self.mid(h, self.attention_core(self.norm1(h)))
        return self.out(m, self.mlp_inner(self.norm2(m)))

    def matches_layer(self, h: torch.Tensor, amp: Callable[[], AbstractContextManager] = nullcontext) -> bool:
        """Does the staged chain reproduce the layer's own forward (on `h`, one sample, under `amp`)?"""
        with amp():
            ref = self.layer(h, **self.kwargs)
            got = self.full(h).float()
        ref = (ref[0] if isinstance(ref, tuple) else ref).float()
        return bool((ref - got).norm() <= 1e-5 * ref.norm() + 1e-6)


def stage_bytes(inps: torch.Tensor, layer: nn.Module) -> int:
    """Extra memory the staged path holds: attention output, x2 and x3 for every sample."""
    n, seq = inps.shape[0], inps.shape[1]
    widths = layer.self_attn.o_proj.in_features + inps.shape[-1] + layer.mlp.down_proj.in_features
    return n * seq * widths * inps.element_size()


@torch.no_grad()
def run_layer_staged(
    staged: StagedLayer,
    layer_idx: int,
    inps: torch.Tensor,
    outs: torch.Tensor,
    batch: int,
    *,
    make_collector: Callable[[str, nn.Linear], Any],
    compress: Callable[[int, str, nn.Linear, Any], dict],
    compress_shared: Callable[[int, list[str], list[nn.Linear], Any], dict[str, dict]] | None,
    emit: Callable[[str, str], None],
    amp: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, dict]:
    """Compress the layer's groups in true-sequential order; write the compressed layer's outputs
    into `outs`. Returns {"<layer>.<name>": stats}. Every stage runs under `amp()` (the
    calibration precision); the compression itself does not."""
    layer = staged.layer
    mods = {n: m for n, m in layer.named_modules() if n in STAGE_NAMES}
    n = inps.shape[0]
    spans = [(b0, min(b0 + batch, n)) for b0 in range(0, n, batch)]
    stats: dict[str, dict] = {}

    def finish(group: tuple[str, ...], collector: Any) -> None:
        emit(f"compress {group[0]}", ", ".join(group))
        stats.update(compress_modules(layer_idx, list(group), mods, collector, compress, compress_shared))

    emit("calibrate", "inputs of " + ", ".join(QKV))
    col = make_collector(QKV[0], mods[QKV[0]])
    for b0, b1 in spans:
        with amp():
            x1 = staged.norm1(inps[b0:b1])
        col.add(x1)
    finish(QKV, col)

    emit("calibrate", "inputs of " + O_PROJ[0])
    a = torch.empty(inps.shape[:2] + (mods[O_PROJ[0]].in_features,), dtype=inps.dtype, device=inps.device)
    col = make_collector(O_PROJ[0], mods[O_PROJ[0]])
    for b0, b1 in spans:
        with amp():
            a[b0:b1] = staged.attention_core(staged.norm1(inps[b0:b1]))
        col.add(a[b0:b1])
    finish(O_PROJ, col)

    emit("calibrate", "inputs of " + ", ".join(GATE_UP))
    x2 = torch.empty_like(inps)
    col = make_collector(GATE_UP[0], mods[GATE_UP[0]])
    for b0, b1 in spans:
        with amp():
            outs[b0:b1] = staged.mid(inps[b0:b1], a[b0:b1])  # m, the attention residual
            x2[b0:b1] = staged.norm2(outs[b0:b1])
        col.add(x2[b0:b1])
    del a
    finish(GATE_UP, col)

    emit("calibrate", "inputs of " + DOWN[0])
    x3 = torch.empty(inps.shape[:2] + (mods[DOWN[0]].in_features,), dtype=inps.dtype, device=inps.device)
    col = make_collector(DOWN[0], mods[DOWN[0]])
    for b0, b1 in spans:
        with amp():
            x3[b0:b1] = staged.mlp_inner(x2[b0:b1])
        col.add(x3[b0:b1])
    del x2
    finish(DOWN, col)

    emit("outputs", "outputs of the compressed layer")
    for b0, b1 in spans:
        with amp():
            outs[b0:b1] = staged.out(outs[b0:b1], x3[b0:b1])
    return stats
