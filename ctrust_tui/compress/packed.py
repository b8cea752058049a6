"""Store quantized variants as real packed checkpoints in the compressed-tensors layout.

    unpackable_reason(spec) -> str | None       # why a spec's variants stay dense (None: they pack)
    pack_model(model, spec) -> PackInfo          # in place: decoder Linears -> weight_packed + scales
    save_packed(model, info, dest)               # save_pretrained + quantization_config in config.json
    quiet_ct()                                   # silence compressed-tensors' progress bars and logs
    is_packed_config(config_dict) -> bool

The format is compressed-tensors' `pack-quantized` (what llm-compressor writes and vLLM and
transformers load): int codes of 1-8 bits packed densely into int32 words (`weight_packed`),
float32 `weight_scale` [rows, groups], `weight_zero_point` (asymmetric only, packed the same
way), `weight_shape`; `config.json` gets `quantization_config` with `quant_method:
compressed-tensors` and one config group (one group size for the model: grid.packed_group_size). The codes and scales are read
off the fake-quantized weights (grid.recover_grid) and handed to the library's own compressor
(`ModelCompressor.compress_model`), and each module is checked by decompressing it with the
library and comparing with the fake-quant weight bit for bit in float32 before anything is
written. Embeddings, norms and lm_head stay as they are (fp32 on CPU).

What compressed-tensors 0.20 cannot hold, and so stays a dense fake-quant checkpoint (said in
compression.json `storage.reason`):
- pruned variants (SparseGPT, Wanda, magnitude; 2:4 included): 0.20 has no sparse compressor
  any more (`sparse-bitmask` / `sparse-24-bitmask` are "legacy" config names, ModelCompressor
  writes an empty `sparsity_config`, and transformers has nothing to decompress them with);
- GPTQ act-order with groups (AutoGPTQ `desc_act=True, static_groups=False`, the paper's
  setting): its groups are `group_size` consecutive columns in activation order, i.e. scattered
  input columns. compressed-tensors stores groups of consecutive columns only; its `g_idx`
  layout (`actorder: group`) was removed, so there is no exact packed form. Act-order with
  static groups (`gptq-4b-g128-static`, compressed-tensors' `actorder: weight`), per channel
  (`gptq-4b-pc`) and `-noact` pack.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CtrustError
from .spec import CompressionSpec

PACK_FORMAT = "pack-quantized"
QUANT_METHOD = "compressed-tensors"


class NotPackable(CtrustError):
    """A variant that cannot be stored packed (the message says which module and why)."""


def unpackable_reason(spec: CompressionSpec) -> str | None:
    """Why variants of `spec` are stored dense; None when they pack (GPTQ/AWQ/RTN in general)."""
    if spec.kind == "prune":
        return ("pruned weights stay dense: compressed-tensors 0.20 has no sparse compressor (sparse-bitmask and "
                "sparse-24-bitmask are legacy formats it no longer writes or decompresses)")
    if spec.kind != "quant":
        return f"{spec} has no stored variant"
    if spec.method == "gptq" and spec.act_order and spec.group_size != -1 and not spec.static_groups:
        g = f"gptq-{spec.bits}b-g{spec.group_size}"
        return ("GPTQ act-order groups (AutoGPTQ desc_act, static_groups=False) are scattered input columns; "
                "compressed-tensors 0.20 stores groups of consecutive columns only (its g_idx layout was removed), "
                f"so this variant stays dense; {g}-static (act-order, static groups), {g}-noact or "
                f"gptq-{spec.bits}b-pc pack")
    return None


def is_packed_config(config: dict[str, Any]) -> bool:
    q = config.get("quantization_config")
    return isinstance(q, dict) and q.get("quant_method") == QUANT_METHOD


def is_packed_folder(folder: Path) -> bool:
    """config.json carries a compressed-tensors quantization_config (a packed variant or export)."""
    import json

    try:
        cfg = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and is_packed_config(cfg)


@contextlib.contextmanager
def quiet_ct() -> Iterator[None]:
    """compressed-tensors draws tqdm bars on stderr and logs with loguru; our display owns the terminal."""
    import warnings

    from loguru import logger

    logger.disable("compressed_tensors")
    with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        # our loader passes CompressedTensorsConfig(dequantize=True) also for folders that already say so
        warnings.filterwarnings("ignore", message="You passed `quantization_config`")
        yield


@dataclass(frozen=True)
class PackInfo:
    """What pack_model did: the quantization_config it wrote and per-group-size module counts."""

    quantization_config: dict[str, Any]
    modules: int
    packed_group_size: int  # -1 per channel; the spec's group, or a divisor of it (grid.packed_group_size)
    compressor: Any = field(default=None, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"modules": self.modules, "packed_group_size": self.packed_group_size}


def decoder_linears(model) -> dict[str, Any]:
    """Full module names -> nn.Linear of every decoder layer (what the methods quantize)."""
    from .layers import find_linears, get_decoder_layers

    layers = get_decoder_layers(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    return {f"{prefix}.{i}.{name}": mod for i, layer in enumerate(layers) for name, mod in find_linears(layer).items()}


def _targets(names: list[str], all_names: list[str]) -> list[str]:
    """Compact targets: `re:^model\\.layers\\.\\d+\\.mlp\\.down_proj$` when every layer's module of
    that name is in the group, else the exact names."""
    out: list[str] = []
    pending = set(names)
    for name in names:
        if name not in pending:
            continue
        m = re.match(r"^(.*\.)(\d+)(\..+)$", name)
        if m:
            pattern = f"^{re.escape(m.group(1))}\\d+{re.escape(m.group(3))}$"
            members = [n for n in all_names if re.match(pattern, n)]
            if members and set(members) <= pending:
                out.append("re:" + pattern)
                pending -= set(members)
                continue
        out.append(name)
        pending.discard(name)
    return out


def pack_model(model, spec: CompressionSpec) -> PackInfo:
    """Replace every decoder Linear's weight with compressed-tensors' packed form, in place.

    Raises NotPackable naming the module when a weight is not on the spec's grid (or the spec
    has no packed form). The model is unusable for generation afterwards: save it and drop it.
    """
    import torch
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        apply_quantization_config,
    )

    from .grid import OffGrid, packed_group_size, recover_grid

    reason = unpackable_reason(spec)
    if reason:
        raise NotPackable(reason)
    linears = decoder_linears(model)
    gs = packed_group_size(spec.group_size, *{mod.in_features for mod in linears.values()})
    grids = {}
    for name, mod in linears.items():
        if mod.weight.dtype != torch.float32:
            raise NotPackable(f"{name}: weights are {mod.weight.dtype}, packing reads float32 fake-quant weights "
                              "(compress on CPU or with --calib-precision fp32)")
        try:
            grids[name] = recover_grid(mod.weight.data, spec.bits, spec.group_size, spec.sym, where=name,
                                       packed_group=gs)
        except OffGrid as exc:
            raise NotPackable(f"weights not on the {spec} grid: {exc}") from None

    # one scheme for every module: transformers 5.24 dequantizes all dense modules with one scheme
    names = list(linears)
    args = QuantizationArgs(num_bits=spec.bits, type="int", symmetric=spec.sym,
                            strategy="channel" if gs == -1 else "group", group_size=None if gs == -1 else gs)
    config_groups = {"group_0": QuantizationScheme(targets=_targets(names, names), weights=args, format=PACK_FORMAT)}
    qconfig = QuantizationConfig(config_groups=config_groups, format=PACK_FORMAT, ignore=["lm_head"])
    originals = {name: mod.weight.data for name, mod in linears.items()}  # references: compression replaces the params
    with quiet_ct(), torch.no_grad():
        apply_quantization_config(model, qconfig)
        for name, mod in linears.items():
            grid = grids[name]
            if getattr(mod, "quantization_scheme", None) is None:
                raise NotPackable(f"{name}: no compressed-tensors scheme matched it (internal targets error)")
            mod.weight_scale.data = grid.scale.to(mod.weight_scale.device).reshape(mod.weight_scale.shape)
            if not spec.sym:
                mod.weight_zero_point.data = grid.zero.to(mod.weight_zero_point.device).reshape(
                    mod.weight_zero_point.shape).to(mod.weight_zero_point.dtype)
        compressor = ModelCompressor.from_pretrained_model(model, quantization_format=PACK_FORMAT)
        compressor.compress_model(model)
        for name, mod in linears.items():  # the library's decompressor must give the fake-quant weight back
            state = {k: v for k, v in mod.state_dict().items()}
            back = PackedQuantizationCompressor.decompress(state, mod.quantization_scheme)["weight"]
            if back.dtype != torch.float32 or not torch.equal(back.view(torch.int32),
                                                              originals[name].view(torch.int32)):
                raise NotPackable(f"{name}: packed weights do not decompress to the fake-quant weights bit for bit")
    return PackInfo(qconfig.model_dump(exclude=["quant_method"]), len(grids), gs, compressor)


def save_packed(model, info: PackInfo, dest: Path) -> None:
    """save_pretrained (safetensors) + compressed-tensors' quantization_config in config.json.

    The config also says `"dequantize": true` (a transformers CompressedTensorsConfig loading
    attribute; vLLM ignores it): transformers then decompresses each packed weight as it loads,
    which is all it can do on a CPU anyway, and its other route (keep packed, decompress on the
    first forward) mis-sizes packed zero points of asymmetric schemes in transformers 5.24 with
    compressed-tensors 0.20, so a plain `from_pretrained(folder)` would fail on AWQ variants.
    """
    import json

    with quiet_ct():
        model.save_pretrained(dest)
        info.compressor.update_config(str(dest))
    cfg_path = Path(dest) / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["quantization_config"]["dequantize"] = True
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# validation of a packed folder before anything loads it (headers only: no torch, ~1 ms)

_INT_BYTES = {"I64": 8, "I32": 4}


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    import json
    import struct

    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise CtrustError(f"{path.name}: truncated safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000 or n > path.stat().st_size - 8:
            raise CtrustError(f"{path.name}: damaged safetensors header")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise CtrustError(f"{path.name}: damaged safetensors header") from None
    if not isinstance(header, dict):
        raise CtrustError(f"{path.name}: damaged safetensors header")
    header.pop("__metadata__", None)
    return header, 8 + n


def _read_ints(path: Path, base: int, entry: dict[str, Any]) -> list[int]:
    size = _INT_BYTES.get(entry.get("dtype", ""))
    start, end = entry.get("data_offsets", (0, 0))
    if size is None or end - start > 64 or (end - start) % size:
        raise ValueError("bad weight_shape")
    with open(path, "rb") as f:
        f.seek(base + start)
        raw = f.read(end - start)
    return [int.from_bytes(raw[i : i + size], "little", signed=True) for i in range(0, len(raw), size)]


def check_packed_folder(folder: Path) -> dict[str, Any]:
    """Raise CtrustError (one line, naming the tensor) unless every packed module of `folder` has
    its packed codes, scales (and zero points) with shapes its quantization_config implies.
    Groups in other compressed-tensors formats (FP8, NVFP4, ...) are left to transformers.
    Returns the quantization_config."""
    import json
    import math

    folder = Path(folder)
    name = folder.name
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CtrustError(f"{name}: config.json is missing or not valid JSON") from None
    q = cfg.get("quantization_config") if isinstance(cfg, dict) else None
    if not (isinstance(q, dict) and q.get("quant_method") == QUANT_METHOD):
        raise CtrustError(f"{name}: not a compressed-tensors checkpoint (no quantization_config)")
    groups = q.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        raise CtrustError(f"{name}: quantization_config has no config_groups")
    schemes = []
    other_formats = False  # e.g. an FP8 checkpoint from llm-compressor: left to transformers to check
    for gname, g in groups.items():
        w = (g or {}).get("weights") if isinstance(g, dict) else None
        targets = g.get("targets") if isinstance(g, dict) else None
        if not isinstance(w, dict) or not isinstance(targets, list) or not targets:
            raise CtrustError(f"{name}: quantization_config group {gname} has no weights or targets")
        if (g.get("format") or q.get("format")) != PACK_FORMAT:
            other_formats = True
            continue
        bits, strategy, gs = w.get("num_bits"), w.get("strategy"), w.get("group_size")
        if not isinstance(bits, int) or not 1 <= bits <= 8 or strategy not in ("group", "channel") or (
                strategy == "group" and (not isinstance(gs, int) or gs < 1)):
            raise CtrustError(f"{name}: quantization_config group {gname} is not an int 1-8 bit group/channel scheme")
        schemes.append((targets, bits, strategy, gs, bool(w.get("symmetric", True))))
    if not schemes:
        return q
    ignore = q.get("ignore") or []

    def scheme_of(module: str):
        if any(module == t or (t.startswith("re:") and re.match(t[3:], module)) for t in ignore):
            return None
        for targets, *rest in schemes:
            if any(module == t or (t.startswith("re:") and re.match(t[3:], module)) for t in targets):
                return rest
        return None

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise CtrustError(f"{name}: no *.safetensors weights")
    tensors: dict[str, tuple[Path, int, dict[str, Any]]] = {}
    for f in files:
        header, base = _safetensors_header(f)
        for key, entry in header.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
                raise CtrustError(f"{name}: {f.name}: damaged entry for {key}")
            tensors[key] = (f, base, entry)
    packed_modules = {k[: -len(".weight_packed")] for k in tensors if k.endswith(".weight_packed")}
    if not packed_modules and not other_formats:
        raise CtrustError(f"{name}: quantization_config says packed but no weight_packed tensors are stored")
    for key in tensors:
        if key.endswith(".weight") and scheme_of(key[: -len(".weight")]) is not None:
            raise CtrustError(f"{name}: {key} is stored dense although quantization_config packs that module")
    for module in sorted(packed_modules):
        scheme = scheme_of(module)
        if scheme is None:
            if other_formats:
                continue
            raise CtrustError(f"{name}: {module} is packed but no quantization_config group targets it")
        bits, strategy, gs, sym = scheme
        need = ["weight_packed", "weight_scale", "weight_shape"] + ([] if sym else ["weight_zero_point"])
        for part in need:
            if f"{module}.{part}" not in tensors:
                raise CtrustError(f"{name}: {module}.{part} is missing (damaged packed checkpoint)")
        f, base, entry = tensors[f"{module}.weight_shape"]
        try:
            shape = _read_ints(f, base, entry)
        except (OSError, ValueError):
            raise CtrustError(f"{name}: {module}.weight_shape is damaged") from None
        if len(shape) != 2 or min(shape) < 1:
            raise CtrustError(f"{name}: {module}.weight_shape {shape} is not a 2-D shape")
        rows, cols = shape
        n_groups = 1 if strategy == "channel" else (cols // gs if cols % gs == 0 else -1)
        want = {
            "weight_packed": ([rows, math.ceil(cols * bits / 32)], "I32"),
            "weight_scale": ([rows, n_groups], None),
        }
        if not sym:
            want["weight_zero_point"] = ([math.ceil(rows * bits / 32), n_groups], "I32")
        for part, (wshape, wdtype) in want.items():
            got = tensors[f"{module}.{part}"][2]
            if got["shape"] != wshape or (wdtype and got.get("dtype") != wdtype) or (
                    part == "weight_scale" and got.get("dtype") not in ("F32", "F16", "BF16")):
                raise CtrustError(f"{name}: {module}.{part} has shape {got['shape']} ({got.get('dtype')}), "
                                  f"expected {wshape} for a {bits}-bit {strategy} scheme of a {rows}x{cols} weight")
    return q
