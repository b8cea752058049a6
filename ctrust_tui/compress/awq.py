"""AWQ: activation-aware weight quantization (Lin et al., MLSys 2024), fake-quantized weights.

Our own plain-PyTorch implementation of what mit-han-lab/llm-awq does (`run_awq` with
auto-scale and auto-clip, then `pseudo_quantize_model_weight`), for Llama-family decoders:

For each decoder layer, on the layer's *full-precision* inputs (the reference propagates the
original layer outputs, not the quantized ones):
1. capture the inputs of every Linear with forward hooks and the layer's float output
   (= next layer's input);
2. scale search, for the four Llama scaling pairs
       input_layernorm          -> q_proj, k_proj, v_proj   (loss on self_attn's output)
       v_proj                   -> o_proj                   (only when v and o weights have the
                                                             same shape: skipped under GQA, as
                                                             the reference does)
       post_attention_layernorm -> gate_proj, up_proj      (loss on the MLP's output)
       up_proj                  -> down_proj               (loss on down_proj's output)
   over a grid of `n_grid` = 20 ratios r in [0, 1): s = mean|x|^r (clamped at 1e-4, normalised by
   sqrt(max(s)·min(s))), each candidate scoring the MSE between the block's float output and its
   output with the sublayers replaced by Q(W·diag(s))·diag(1/s). r = 0 is s = 1, i.e. plain
   round-to-nearest, so the search never does worse than RTN on its tokens;
3. fold the best s into the previous op (norm weight / previous Linear's rows divided by s, the
   Linears' input columns multiplied by s): the float function is unchanged;
4. clipping search (auto-clip) for every Linear except q_proj/k_proj (the reference skips them
   because of the q·k product): per output row and group, max-value shrink factors
   1 - i/20, i = 0..9, scored by the group's partial-output MSE on 512 evenly strided tokens;
   weights are clamped to the best ±max;
5. fake-quantize every Linear of the layer in place (the paper stored fake-quantized weights).

Quantizer: by default asymmetric min-max with a zero point per group (`2^bits` levels), exactly
the reference's `zero_point=True` path, which is what the paper's AWQ models used (`awq-4b-g128`;
`-asym` is accepted and means the same). `awq-4b-g128-sym` quantizes with the shared symmetric
grid instead (GPTQ's min-max, no zero point; the reference's own symmetric path is marked "we
actually never used this"). The stored weights of every
Linear therefore lie on at most 2^bits levels per group; the 1/s of the scaling lives in the
preceding norm weight or Linear rows (which are themselves then quantized when they are Linears).

Speed on CPU: the scale search scores candidates on an evenly strided subset of at most
`search_tokens` tokens (whole sequences for the attention block, since attention needs them),
default 4096 (8 x 512); the activation statistic mean|x| always uses every calibration token.
The reference used every token (128 x 512 Pile) on a GPU. Set `search_tokens=None` for all tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import Cancelled, CtrustError
from .types import CancelFn, CompressProgress, ProgressFn


@dataclass(frozen=True)
class AWQConfig:
    n_grid: int = 20  # scale ratios 0, 1/20, ..., 19/20
    clip_grid: int = 20  # shrink steps of 1/20
    max_shrink: float = 0.5  # try max-val factors 1.0 down to 0.55
    clip_tokens: int = 512  # tokens used for the clip search (reference n_sample_token)
    search_tokens: int | None = 4096  # tokens scoring the scale grid (None = all)
    oc_batch: int = 256  # output rows per clip-search batch (memory bound)
    forward_batch: int = 8  # sequences per block forward
    zero_point: bool = True  # the reference's (and the paper's) asymmetric quantizer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# quantizer


def pseudo_quantize(w, bits: int, group_size: int, zero_point: bool = True):
    """Fake-quantize `w` [..., in] per group of `group_size` inputs (-1: the whole row).

    Uses the shared min-max quantizer (`quantizer.quantize_groups`): zero_point=True is the
    asymmetric grid with a zero point (2^bits levels per group, as the reference's
    `pseudo_quantize_tensor(zero_point=True)`; the one difference is that the shared quantizer's
    range always includes 0, which only matters for a group whose weights all share one sign).
    Returned in w's dtype and shape.
    """
    from .quantizer import quantize_groups

    shape, dtype = w.shape, w.dtype
    g = shape[-1] if group_size is None or group_size <= 0 else group_size
    if shape[-1] % g:
        raise CtrustError(f"AWQ: input size {shape[-1]} is not a multiple of group size {g}")
    out = quantize_groups(w.reshape(-1, g), bits, g, sym=not zero_point)
    return out.reshape(shape).to(dtype)


# ----------------------------------------------------------------------------------------------
# model plumbing (decoder discovery and layer-0 capture come from the shared layers.py)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _run_batched(fn, x, batch: int):
    import torch

    outs = [fn(x[i : i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat(outs, dim=0)


def _attn_kwargs(layer_kwargs: dict) -> dict:
    keep = ("position_embeddings", "attention_mask", "position_ids", "cache_position")
    return {k: v for k, v in layer_kwargs.items() if k in keep}


# ----------------------------------------------------------------------------------------------
# the search


def _subsample_seqs(x, max_tokens: int | None):
    """Evenly strided whole sequences of x [n, seq, c] with at most max_tokens tokens."""
    n, seq = x.shape[0], x.shape[1]
    if max_tokens is None or n * seq <= max_tokens:
        return x
    k = max(1, max_tokens // seq)
    step = n / k
    idx = [int(i * step) for i in range(k)]
    return x[idx]


def _search_scale(block_fn, linears, x_all, x_search, bits, group, cfg: AWQConfig):
    """Best s for `linears` (which all read x) scored on block_fn's output; returns (s, ratio, losses)."""
    import torch

    c = x_all.shape[-1]
    x_mean = x_all.reshape(-1, c).abs().float().mean(0)
    with torch.no_grad():
        ref = block_fn(x_search)
    originals = [lin.weight.data.clone() for lin in linears]
    best = (math.inf, None, None)
    losses = []
    try:
        for i in range(cfg.n_grid):
            ratio = i / cfg.n_grid
            s = x_mean.pow(ratio).clamp(min=1e-4)
            s = s / (s.max() * s.min()).sqrt()
            s_w = s.to(originals[0].dtype).view(1, -1)
            for lin, w in zip(linears, originals):
                lin.weight.data = pseudo_quantize(w * s_w, bits, group, cfg.zero_point) / s_w
            with torch.no_grad():
                out = block_fn(x_search)
            loss = (ref.float() - out.float()).pow(2).mean().item()
            losses.append(loss)
            if loss < best[0]:
                best = (loss, ratio, s.clone())
    finally:
        for lin, w in zip(linears, originals):
            lin.weight.data = w
    if best[2] is None:  # every candidate produced NaN
        raise CtrustError(f"AWQ scale search failed (losses {losses})")
    return best[2], best[1], losses


def _fold_scale(prev, linears, s):
    """prev op /= s (norm weight, or the rows of a previous Linear); linears' input columns *= s."""
    import torch

    s = s.to(prev.weight.device)
    if isinstance(prev, torch.nn.Linear):
        prev.weight.data[-s.numel() :].div_(s.view(-1, 1).to(prev.weight.dtype))
        if prev.bias is not None:
            prev.bias.data.div_(s.to(prev.bias.dtype))
    else:  # RMSNorm / LayerNorm
        prev.weight.data.div_(s.to(prev.weight.dtype))
        if getattr(prev, "bias", None) is not None:
            prev.bias.data.div_(s.to(prev.bias.dtype))
    for lin in linears:
        lin.weight.data.mul_(s.view(1, -1).to(lin.weight.dtype))


def _search_clip(w, x, bits, group, cfg: AWQConfig):
    """Per (row, group) max |w| after the best shrink; w [co, ci], x [tokens, ci] -> [co, n_group, 1]."""
    import torch

    co, ci = w.shape
    g = ci if group is None or group <= 0 else group
    ng = ci // g
    x = x.reshape(-1, ci)
    step = max(1, x.shape[0] // cfg.clip_tokens)
    x = x[::step][: cfg.clip_tokens].float()
    xg = x.reshape(-1, ng, g).transpose(0, 1)  # [ng, t, g]
    best_all = []
    for r0 in range(0, co, cfg.oc_batch):
        wb = w[r0 : r0 + cfg.oc_batch].float().reshape(-1, ng, g)  # [cb, ng, g]
        wt = wb.permute(1, 2, 0)  # [ng, g, cb]
        org_out = torch.bmm(xg, wt)  # [ng, t, cb]
        org_max = wb.abs().amax(dim=-1, keepdim=True)  # [cb, ng, 1]
        best_max = org_max.clone()
        min_err = torch.full_like(org_max, math.inf)
        for i in range(int(cfg.max_shrink * cfg.clip_grid)):
            max_val = org_max * (1 - i / cfg.clip_grid)
            cur = torch.clamp(wb, -max_val, max_val)
            q = pseudo_quantize(cur, bits, g, cfg.zero_point)
            out = torch.bmm(xg, q.permute(1, 2, 0))
            err = (out - org_out).pow(2).mean(dim=1).transpose(0, 1).unsqueeze(-1)  # [cb, ng, 1]
            better = err < min_err
            min_err = torch.where(better, err, min_err)
            best_max = torch.where(better, max_val, best_max)
        best_all.append(best_max)
    return torch.cat(best_all, dim=0)


def _apply_clip(lin, max_val, group):
    import torch

    co, ci = lin.weight.shape
    g = ci if group is None or group <= 0 else group
    w = lin.weight.data.reshape(co, ci // g, g)
    mv = max_val.to(w.dtype).to(w.device)
    lin.weight.data = torch.clamp(w, -mv, mv).reshape(co, ci)


def awq_layer(layer, inps, layer_kwargs: dict, bits: int, group: int, cfg: AWQConfig = AWQConfig(),
              cancel: CancelFn | None = None) -> tuple[Any, dict]:
    """Run AWQ on one Llama decoder layer in place; returns (float outputs of the original layer, info)."""
    import torch

    attn, mlp = layer.self_attn, layer.mlp
    lin = {
        "q": attn.q_proj, "k": attn.k_proj, "v": attn.v_proj, "o": attn.o_proj,
        "gate": mlp.gate_proj, "up": mlp.up_proj, "down": mlp.down_proj,
    }
    feats: dict[str, list] = {"q": [], "o": [], "gate": [], "down": []}
    def keep(key):
        store = feats[key]
        return lambda m, args, out: store.append(args[0].detach())

    handles = [lin[key].register_forward_hook(keep(key)) for key in list(feats)]
    b = cfg.forward_batch
    try:
        with torch.no_grad():
            outs = _run_batched(lambda x: _first(layer(x, **layer_kwargs)), inps, b)
    finally:
        for h in handles:
            h.remove()
    x = {k: torch.cat(v, dim=0) for k, v in feats.items()}
    feats.clear()

    def check():
        if cancel is not None and cancel():
            raise Cancelled()

    akw = _attn_kwargs(layer_kwargs)
    info: dict[str, Any] = {"ratios": {}, "skipped": []}

    # 1) input_layernorm -> q, k, v, scored on self_attn's output (whole sequences)
    xs = _subsample_seqs(x["q"], cfg.search_tokens)
    s, r, _ = _search_scale(lambda h: _run_batched(lambda y: _first(attn(y, **akw)), h, b),
                            [lin["q"], lin["k"], lin["v"]], x["q"], xs, bits, group, cfg)
    _fold_scale(layer.input_layernorm, [lin["q"], lin["k"], lin["v"]], s)
    x["q"] = x["q"] / s.to(x["q"].dtype)
    info["ratios"]["qkv"] = r
    check()

    # 2) v_proj -> o_proj when shapes allow (not under GQA)
    if lin["v"].weight.shape == lin["o"].weight.shape:
        xs = _token_subsample(x["o"], cfg.search_tokens)
        s, r, _ = _search_scale(lambda h: lin["o"](h), [lin["o"]], x["o"], xs, bits, group, cfg)
        _fold_scale(lin["v"], [lin["o"]], s)
        x["o"] = x["o"] / s.to(x["o"].dtype)
        info["ratios"]["o"] = r
    else:
        info["skipped"].append("v_proj->o_proj (GQA shape mismatch)")
    check()

    # 3) post_attention_layernorm -> gate, up, scored on the MLP's output
    xs = _token_subsample(x["gate"], cfg.search_tokens)
    s, r, _ = _search_scale(lambda h: _run_batched(mlp, h, 4096), [lin["gate"], lin["up"]],
                            x["gate"], xs, bits, group, cfg)
    _fold_scale(layer.post_attention_layernorm, [lin["gate"], lin["up"]], s)
    x["gate"] = x["gate"] / s.to(x["gate"].dtype)
    info["ratios"]["gate_up"] = r
    check()

    # 4) up_proj -> down_proj
    xs = _token_subsample(x["down"], cfg.search_tokens)
    s, r, _ = _search_scale(lambda h: lin["down"](h), [lin["down"]], x["down"], xs, bits, group, cfg)
    _fold_scale(lin["up"], [lin["down"]], s)
    x["down"] = x["down"] / s.to(x["down"].dtype)
    info["ratios"]["down"] = r
    check()

    # 5) clipping (not q/k), on the scaled inputs
    clip_inputs = {"v": x["q"], "o": x["o"], "gate": x["gate"], "up": x["gate"], "down": x["down"]}
    shrink = {}
    for key, xin in clip_inputs.items():
        mv = _search_clip(lin[key].weight.data, xin, bits, group, cfg)
        before = lin[key].weight.data.float().reshape(mv.shape[0], mv.shape[1], -1).abs().amax(-1, keepdim=True)
        shrink[key] = float((mv.float() / before.clamp(min=1e-12)).mean())
        _apply_clip(lin[key], mv, group)
    info["mean_clip_factor"] = shrink
    del x, clip_inputs
    check()

    # 6) fake-quantize every Linear in place
    for m in lin.values():
        m.weight.data = pseudo_quantize(m.weight.data, bits, group, cfg.zero_point)
    return outs, info


def _token_subsample(x, max_tokens: int | None):
    """Evenly strided tokens of x [..., c] (flattened to [t, c]), at most max_tokens."""
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    if max_tokens is None or flat.shape[0] <= max_tokens:
        return flat
    step = flat.shape[0] / max_tokens
    import torch

    idx = (torch.arange(max_tokens, dtype=torch.float64) * step).long()
    return flat[idx]


def quantize_awq(
    model,
    calib_ids,
    bits: int,
    group_size: int,
    *,
    device: str | None = None,
    config: AWQConfig = AWQConfig(),
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    label: str = "",
) -> dict[str, Any]:
    """AWQ the whole model in place (fake-quantized weights); returns stats for compression.json.

    Layers are moved one at a time to `device` (default: cuda if available, else cpu) and back.
    `cancel()` is polled between layers and sub-steps (raises `Cancelled`; the model is then
    partly quantized and must be discarded).
    """
    import torch

    from .layers import capture_first_layer_inputs, default_device, get_decoder_layers

    layers = get_decoder_layers(model)
    dev = torch.device(device) if device is not None else default_device()
    n = len(layers)
    t0 = time.perf_counter()
    per_layer = []
    if cancel is not None and cancel():
        raise Cancelled()
    if progress:
        progress(CompressProgress(label, 0, n, "capture", "embedding calibration samples"))
    inps, kwargs = capture_first_layer_inputs(model, calib_ids, dev)
    for i, layer in enumerate(layers):
        if cancel is not None and cancel():
            raise Cancelled()
        t = time.perf_counter()
        home = next(layer.parameters()).device
        layer.to(dev)
        inps, info = awq_layer(layer, inps, kwargs, bits, group_size, config, cancel)
        layer.to(home)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        info["seconds"] = round(time.perf_counter() - t, 3)
        per_layer.append(info)
        if progress:
            progress(CompressProgress(label, i + 1, n, "awq", f"layer {i + 1}/{n} scaled, clipped, quantized"))
    zeros = total = 0
    for layer in layers:
        for mod in layer.modules():
            if isinstance(mod, torch.nn.Linear):
                zeros += int((mod.weight.data == 0).sum())
                total += mod.weight.numel()
    return {
        "method": "awq",
        "algorithm": "awq",
        "device": str(dev),
        "bits": bits,
        "group_size": group_size,
        "zero_point": config.zero_point,
        "config": config.to_dict(),
        "reference": "mit-han-lab/llm-awq (auto_scale + auto_clip + pseudo_quantize)",
        "sparsity": zeros / max(1, total),
        "layers": {str(i): info for i, info in enumerate(per_layer)},
        "seconds": round(time.perf_counter() - t0, 3),
    }


def apply_awq(model, spec, calib_ids, *, device=None, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None, config: AWQConfig = AWQConfig()) -> dict[str, Any]:
    """`methods.apply_method`-shaped entry point for an `awq-*` CompressionSpec."""
    from .spec import validate

    validate(spec)
    if spec.method != "awq":
        raise CtrustError(f"apply_awq handles awq specs, not {spec}")
    if calib_ids is None or calib_ids.dim() != 2 or calib_ids.numel() == 0:
        raise CtrustError(f"{spec}: needs calibration token ids [nsamples, seqlen]")
    from dataclasses import replace

    config = replace(config, zero_point=not spec.sym)  # the spec decides: asymmetric unless `-sym`
    stats = quantize_awq(model, calib_ids, spec.bits, spec.group_size, device=device, config=config,
                         progress=progress, cancel=cancel, label=str(spec))
    stats["spec"] = str(spec)
    return stats
