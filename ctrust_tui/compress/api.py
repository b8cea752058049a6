"""Compress a local model once and keep the result beside it: `compress_model`, `list_compressed`.

    compress_model(base_path, spec, *, base_name, models_dir, calibration=CalibrationConfig(),
                   device=None, progress=None, cancel=None, measure_perplexity=True) -> CompressedModel

- `none`: returns the base folder itself (nothing is copied; `reused=True`).
- `bnb-*`: load-time quantization, handled by the engine when it loads the model
  (`bnb.bnb_quantization_config`); no folder is written. Returns the *base* folder with
  `load_time=True` and `metadata["quantization_config"]` (the bnb settings); `reused=True`.
- gptq / awq / rtn / sparsegpt / wanda / magnitude: the variant folder
  `models/<base_name>--<spec>` (calibrated methods with a non-default calibration:
  `models/<base_name>--<spec>--<calibration.tag>`; `:` in N:M specs becomes `_`). When its
  compression.json names the same base fingerprint, spec and (calibrated methods) calibration,
  it is returned at once (`reused=True`). Otherwise: load the base (float32 on CPU, bf16 on
  CUDA when supported, else fp16), measure WikiText-2 perplexity on the fixed slice
  (perplexity.DEFAULT_SLICE; reused from a sibling variant of the same base when one has it),
  load calibration windows (calibrated methods), compress, measure perplexity again, and write
  the weights (packed compressed-tensors where the spec has an exact packed form, packed.py;
  dense fake-quant otherwise, `storage.reason` says why) + the base's tokenizer / chat-template
  files + compression.json (with digests of the saved files, integrity.py) into
  `models/.tmp-<name>-<random>/`, renamed into place with `os.replace`. On any exception,
  `Cancelled` included, the temp folder is removed and nothing half-written remains. A reused
  folder whose files do not match its digests raises `TamperedVariant` (full sha256 with `verify`).

Progress events (`CompressProgress`, layer 0 for whole-model phases): "load", "perplexity"
(before and after: message says which), "calibrate", the method's per-layer steps, "save".
"""

from __future__ import annotations

import platform
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import Cancelled, CtrustError, InvalidSpec, ModelNotFound
from .cache import (
    FORMAT,
    METADATA_FILE,
    atomic_variant_dir,
    cache_fingerprint,
    find_reusable,
    list_compressed,
    variant_dir_name,
    variants_of,
    verified,
    write_json,
)
from .fingerprint import model_fingerprint
from .integrity import record_files
from .spec import CompressionSpec, validate
from .types import CalibrationConfig, CancelFn, CompressProgress, ProgressFn

__all__ = ["TOKENIZER_FILES", "CompressedModel", "compress_model", "list_compressed", "variant_dir_name"]

# files copied from the base folder next to the compressed weights (when present)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)


_DEFAULT_CALIBRATION = CalibrationConfig()


@dataclass(frozen=True)
class CompressedModel:
    path: Path  # the folder to load (the base folder for `none` and `bnb-*`)
    spec: CompressionSpec
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    reused: bool = False  # True when nothing was computed (cache hit, `none`, `bnb-*`)
    fingerprint: str | None = None  # what generations of a variant are cached under (cache.cache_fingerprint)

    @property
    def load_time(self) -> bool:
        """True for bnb: the engine must quantize while loading (see bnb.bnb_quantization_config)."""
        return self.spec.method == "bnb"


def _emit(progress: ProgressFn | None, label: str, step: str, message: str, layer: int = 0, n: int = 0) -> None:
    if progress is not None:
        progress(CompressProgress(spec=label, layer=layer, n_layers=n, step=step, message=message))


def _check(cancel: CancelFn | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


def _pick_device(device: str | None) -> str:
    """The one device picker, with `auto` kept off MPS (see `ctrust_tui.device`)."""
    from ..device import pick_device

    return str(pick_device(device, mps=False))


def _load_dtype(device: str, precision: str = "auto"):
    """float32 on CPU; on CUDA bf16 (fp16 without bf16 support) unless calibration precision is fp32."""
    import torch

    if device.startswith("cuda") and precision != "fp32":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def layer_sparsity(model) -> dict[str, Any]:
    """Fraction of exactly-zero weights in each decoder layer's Linears, measured from the weights."""
    from .layers import find_linears, get_decoder_layers

    per_layer, zeros, total = [], 0, 0
    for layer in get_decoder_layers(model):
        z = t = 0
        for mod in find_linears(layer).values():
            z += int((mod.weight.data == 0).sum())
            t += mod.weight.numel()
        per_layer.append(round(z / max(1, t), 6))
        zeros, total = zeros + z, total + t
    return {"overall": zeros / max(1, total), "per_layer": per_layer}


def _copy_tokenizer_files(base: Path, dest: Path) -> list[str]:
    copied = []
    for name in TOKENIZER_FILES:
        src = base / name
        if src.is_file():
            shutil.copy2(src, dest / name)
            copied.append(name)
    return copied


def _versions() -> dict[str, str]:
    import torch
    import transformers

    from .. import __version__

    return {"ctrust": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _sibling_perplexity(models_dir: Path, fingerprint: str, slice_dict: dict, digest: str) -> float | None:
    """The base model's perplexity from a sibling variant, trusted only when that sibling's files
    still match their recorded digests (a tampered or pre-digest folder is skipped)."""
    for folder, meta in variants_of(models_dir, fingerprint):
        ppl = meta.get("perplexity") or {}
        if (ppl.get("slice") == slice_dict and ppl.get("text_sha256_16") == digest and ppl.get("before")
                and verified(folder, meta)):
            return float(ppl["before"])
    return None


def _dispatch(model, spec: CompressionSpec, calib_ids, device: str, progress, cancel,
              precision: str = "auto") -> dict[str, Any]:
    """Run the method's pipeline (the registry in spec.py says which one)."""
    if spec.info.pipeline == "awq":
        from .awq import apply_awq

        return apply_awq(model, spec, calib_ids, device=device, progress=progress, cancel=cancel)
    if spec.info.pipeline in ("weight_only", "sequential"):
        from .methods import apply_method

        return apply_method(model, spec, calib_ids, device=device, progress=progress, cancel=cancel,
                            precision=precision)
    raise InvalidSpec(f"{spec}: the {spec.info.pipeline} pipeline writes no compressed weights")


def _storage(model, spec: CompressionSpec) -> tuple[dict[str, Any], Any]:
    """Pack the model in place when its spec has a compressed-tensors form: (storage entry, PackInfo | None)."""
    from .packed import NotPackable, pack_model, unpackable_reason

    reason = unpackable_reason(spec)
    if reason is None:
        try:
            info = pack_model(model, spec)
        except NotPackable as exc:
            reason = str(exc)
        else:
            return {"format": "compressed-tensors", "compression_format": "pack-quantized",
                    "library": _ct_version(), **info.summary()}, info
    return {"format": "dense", "reason": reason}, None


def _ct_version() -> str:
    from importlib.metadata import version

    return f"compressed-tensors {version('compressed-tensors')}"


def _save_variant(model, tokenizer_src: Path, dest: Path, metadata: dict[str, Any], t_all: float,
                  pack_info: Any = None) -> None:
    t = time.perf_counter()
    if pack_info is not None:
        from .packed import save_packed

        save_packed(model, pack_info, dest)
    else:
        model.save_pretrained(dest)
    metadata["files"]["tokenizer"] = _copy_tokenizer_files(tokenizer_src, dest)
    metadata["files"]["weights"] = sorted(p.name for p in dest.iterdir() if p.suffix in (".safetensors", ".bin"))
    metadata["storage"]["bytes_on_disk"] = sum((dest / n).stat().st_size for n in metadata["files"]["weights"])
    metadata["integrity"] = record_files(dest)
    metadata["weights_fingerprint"] = {"value": model_fingerprint(dest), "folder": model_fingerprint(dest),
                                       "source": "this folder as written"}
    metadata["timings_s"]["save"] = round(time.perf_counter() - t, 3)
    metadata["timings_s"]["total"] = round(time.perf_counter() - t_all, 3)
    write_json(dest / METADATA_FILE, metadata)  # last: its presence marks a complete folder


def compress_model(
    base_path: Path,
    spec: CompressionSpec,
    *,
    base_name: str,
    models_dir: Path,
    calibration: CalibrationConfig = _DEFAULT_CALIBRATION,
    device: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    measure_perplexity: bool = True,
    verify: bool = False,
    pack: bool = True,
) -> CompressedModel:
    """Compress `base_path` per `spec` into `models_dir` (or reuse a matching variant); see module doc.
    `verify`: check a reused variant's full sha256 digests, not only size + sampled digest.
    `pack=False` stores the fake-quant weights dense (what ctrust did before packing)."""
    if not isinstance(spec, CompressionSpec):
        raise InvalidSpec(f"expected a CompressionSpec (use parse_spec), got {type(spec).__name__}")
    validate(spec)
    base_path = Path(base_path)
    models_dir = Path(models_dir)
    if not base_name or "/" in base_name or base_name.startswith("."):
        raise CtrustError(f"invalid base model name {base_name!r}: use the folder name under models/")
    if not (base_path / "config.json").is_file():
        raise ModelNotFound(f"no Hugging Face model (config.json) in {base_path}; import it first (ctrust models import)")
    label = str(spec)

    if spec.info.pipeline == "dense":
        return CompressedModel(base_path, spec, {"spec": "none", "base": {"name": base_name, "path": str(base_path)}},
                               reused=True)
    if spec.info.pipeline == "load_time":
        from .bnb import bnb_settings, nominal_bits_per_weight

        meta = {"spec": label, "load_time": True, "quantization_config": bnb_settings(spec),
                "effective_bits_per_weight": nominal_bits_per_weight(spec),
                "base": {"name": base_name, "path": str(base_path)},
                "note": "bitsandbytes quantizes while loading; no folder is written"}
        return CompressedModel(base_path, spec, meta, reused=True)

    from .packed import is_packed_folder

    if is_packed_folder(base_path):
        raise CtrustError(f"{base_path.name} is a packed (compressed-tensors) checkpoint: compress its dense base "
                          "model instead")
    fingerprint = model_fingerprint(base_path)
    name = variant_dir_name(base_name, spec, calibration)
    final = models_dir / name
    meta = find_reusable(final, spec, fingerprint, calibration, verify=verify)
    if meta is not None:
        return CompressedModel(final, spec, meta, reused=True, fingerprint=cache_fingerprint(final, meta))

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .bnb import memory_report, nominal_bits_per_weight
    from .perplexity import DEFAULT_SLICE
    from .perplexity import measure_perplexity as _measure

    dev = _pick_device(device)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    _check(cancel)

    _emit(progress, label, "load", f"loading {base_name}")
    t = time.perf_counter()
    dtype = _load_dtype(dev, calibration.precision if spec.calibrated else "auto")
    tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, trust_remote_code=False)
    model.eval()
    model.to(dev)
    from .layers import get_decoder_layers

    n_layers = len(get_decoder_layers(model))
    timings["load"] = round(time.perf_counter() - t, 3)
    _check(cancel)

    ppl: dict[str, Any] = {"before": None, "after": None}
    if measure_perplexity:
        from .perplexity import eval_text, text_digest

        digest = text_digest(eval_text(DEFAULT_SLICE.dataset))
        slice_dict = DEFAULT_SLICE.to_dict()
        t = time.perf_counter()
        before = _sibling_perplexity(models_dir, fingerprint, slice_dict, digest)
        if before is None:
            _emit(progress, label, "perplexity", "perplexity of the base model", 0, n_layers)
            before = _measure(model, tokenizer, DEFAULT_SLICE, device=dev, cancel=cancel, label=label)["value"]
            ppl["before_source"] = "measured"
        else:
            ppl["before_source"] = "reused from a sibling variant of the same base"
        ppl.update({"before": before, "slice": slice_dict, "text_sha256_16": digest})
        timings["perplexity_before"] = round(time.perf_counter() - t, 3)

    calib_ids = None
    if spec.calibrated:
        from .calibration import load_calibration_ids

        _emit(progress, label, "calibrate", f"calibration data: {calibration.tag}", 0, n_layers)
        t = time.perf_counter()
        calib_ids = load_calibration_ids(tokenizer, calibration)
        timings["calibrate"] = round(time.perf_counter() - t, 3)
    _check(cancel)

    t = time.perf_counter()
    stats = _dispatch(model, spec, calib_ids, dev, progress, cancel, calibration.precision)
    timings["compress"] = round(time.perf_counter() - t, 3)
    _check(cancel)

    if measure_perplexity:
        t = time.perf_counter()
        _emit(progress, label, "perplexity", "perplexity of the compressed model", n_layers, n_layers)
        ppl["after"] = _measure(model, tokenizer, DEFAULT_SLICE, device=dev, cancel=cancel, label=label)["value"]
        timings["perplexity_after"] = round(time.perf_counter() - t, 3)

    mem = memory_report(model)
    sparsity = layer_sparsity(model)
    in_features = None
    try:
        in_features = get_decoder_layers(model)[0].self_attn.q_proj.in_features
    except AttributeError:
        pass
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "spec": label,
        "describe": spec.describe(),
        "method": {
            "name": spec.method,
            "kind": spec.kind,
            "title": spec.info.title,
            "reference": spec.info.reference,
            "bits": spec.bits,
            "group_size": spec.group_size if spec.kind == "quant" else None,
            "sym": spec.sym if spec.kind == "quant" else None,
            "act_order": spec.act_order if spec.method == "gptq" else None,
            "static_groups": spec.static_groups if spec.method == "gptq" else None,
            "target_sparsity": spec.target_sparsity,
            "n_m": [spec.n, spec.m] if spec.n is not None else None,
            "stats": stats,
        },
        "base": {"name": base_name, "path": str(base_path.resolve()), "fingerprint": fingerprint},
        "calibration": ({**calibration.to_dict(), "tag": calibration.tag,
                         "forward_dtype": stats.get("forward_dtype") or str(dtype).replace("torch.", "")}
                        if spec.calibrated else None),
        "sparsity": sparsity,
        "effective_bits_per_weight": nominal_bits_per_weight(spec, in_features),
        "stored_dtype": str(dtype).replace("torch.", ""),
        "memory": mem,
        "perplexity": ppl if measure_perplexity else None,
        "timings_s": timings,
        "device": dev,
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": {},
    }

    _emit(progress, label, "save", f"writing {name}", n_layers, n_layers)
    with atomic_variant_dir(models_dir, name) as tmp:
        if pack:
            t = time.perf_counter()
            metadata["storage"], pack_info = _storage(model, spec)
            metadata["timings_s"]["pack"] = round(time.perf_counter() - t, 3)
        else:
            metadata["storage"], pack_info = {"format": "dense", "reason": "packing turned off (pack=False)"}, None
        _save_variant(model, base_path, tmp, metadata, t_all, pack_info)
    del model
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
    return CompressedModel(final, spec, metadata, reused=False, fingerprint=cache_fingerprint(final, metadata))
