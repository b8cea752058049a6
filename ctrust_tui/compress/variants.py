"""Operations on stored compressed variants: resolve, verify, pack in place, export.

    resolve_variant(text, models_dir) -> (folder, compression.json dict)
    verify_variant(folder, meta, full=True) -> bool          # False: written before digests existed
    pack_variant(folder, meta) -> dict                       # in place, atomic
    export_variant(folder, meta, out, fmt, *, force=False, dtype="bfloat16", card="") -> Path

Every write goes to a `.tmp-*` folder next to its destination and is renamed into place only
when complete (`os.replace`); any exception, Ctrl-C included, removes the temp folder, so a
failed pack leaves the old variant and a failed export leaves no folder (or the old one).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import CtrustError, InvalidSpec
from .cache import (
    METADATA_FILE,
    SEPARATOR,
    atomic_variant_dir,
    cache_fingerprint,
    read_metadata,
    write_json,
)
from .fingerprint import model_fingerprint
from .integrity import is_recorded, record_files, verify_files
from .spec import CompressionSpec, parse_spec

EXPORT_FORMATS = ("compressed-tensors", "dense")
EXPORT_DTYPES = ("bfloat16", "float16", "float32")
PROVENANCE_FILE = "ctrust_provenance.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_SKIP_ON_COPY = {"config.json", METADATA_FILE, "model.safetensors.index.json", "pytorch_model.bin.index.json"}


def _spec_of(meta: dict[str, Any], folder: Path) -> CompressionSpec:
    try:
        return parse_spec(str(meta.get("spec", "")))
    except InvalidSpec:
        raise CtrustError(f"{folder.name}: compression.json names an unknown spec {meta.get('spec')!r}") from None


def resolve_variant(text: str, models_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A variant folder (name in the models dir, or a path) and its compression.json."""
    tail = text.rstrip("/").rsplit(SEPARATOR, 1)[-1]
    bare_spec = None
    for candidate in (text, tail):
        try:
            spec = parse_spec(candidate)
        except InvalidSpec:
            continue
        if spec.kind == "bnb":
            raise CtrustError(f"{spec} is quantized by bitsandbytes while the model loads: no quantized weights are "
                              "stored, so there is nothing to export or pack; export a gptq/awq/rtn variant instead")
        bare_spec = spec if candidate == text else None
        break
    folder = Path(models_dir) / text
    if "/" in text or not folder.is_dir():
        folder = Path(text).expanduser()
    if not folder.is_dir():
        hint = f" (name the variant folder, e.g. <base>{SEPARATOR}{bare_spec})" if bare_spec else ""
        raise CtrustError(f"no variant {text!r} in {models_dir}{hint}; see `ctrust models list`")
    meta = read_metadata(folder)
    if meta is None:
        raise CtrustError(f"{folder.name} is not a compressed variant (no valid compression.json); "
                          "compress it with `ctrust compress`")
    return folder.resolve(), meta


def verify_variant(folder: Path, meta: dict[str, Any], *, full: bool = True) -> bool:
    """Raise TamperedVariant on a digest mismatch; False for a folder written before digests."""
    if not is_recorded(meta) and "integrity" not in meta:
        return False
    verify_files(folder, meta.get("integrity"), full=full)
    return True


def is_stored_packed(meta: dict[str, Any]) -> bool:
    return (meta.get("storage") or {}).get("format") == "compressed-tensors"


def _load_dense(folder: Path, dtype):
    """The variant's weights as a dense model (packed ones decompressed), on CPU."""
    from transformers import AutoModelForCausalLM

    from .packed import check_packed_folder, is_packed_folder, quiet_ct

    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": False}
    if is_packed_folder(folder):
        from transformers import CompressedTensorsConfig

        check_packed_folder(folder)
        kwargs["quantization_config"] = CompressedTensorsConfig(dequantize=True)
    try:
        with quiet_ct():
            model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        text = " ".join(str(exc).split())[:300]
        raise CtrustError(f"cannot load {folder.name}: {text}") from exc
    model.eval()
    return model


def _copy_side_files(src: Path, dest: Path) -> list[str]:
    """Tokenizer, chat template, generation config, import notes: everything but weights and configs."""
    copied = []
    for path in sorted(src.iterdir()):
        if path.is_file() and path.suffix not in WEIGHT_SUFFIXES and path.name not in _SKIP_ON_COPY \
                and not path.name.startswith("."):
            shutil.copy2(path, dest / path.name)
            copied.append(path.name)
    return copied


def pack_variant(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Convert a dense fake-quant variant into the packed layout, in place and atomically.

    Refuses (CtrustError) a spec without a packed form, a folder whose digests do not match, and
    weights off the spec's grid (naming the module). Cached generations stay valid: the new
    compression.json keeps the fake-quant folder's fingerprint as the cache key, since every packed
    weight decompresses to the old weight bit for bit (packed.pack_model checks it).
    """
    import torch

    from .packed import pack_model, save_packed, unpackable_reason

    folder = Path(folder)
    spec = _spec_of(meta, folder)
    if is_stored_packed(meta):
        raise CtrustError(f"{folder.name} is already packed ({meta['storage'].get('compression_format')})")
    reason = unpackable_reason(spec)
    if reason:
        raise CtrustError(f"{folder.name}: cannot pack {spec}: {reason}")
    verified = verify_variant(folder, meta, full=True)
    old_key = cache_fingerprint(folder, meta)
    model = _load_dense(folder, torch.float32)
    from .packed import NotPackable

    try:
        info = pack_model(model, spec)
    except NotPackable as exc:
        raise CtrustError(f"{folder.name}: cannot pack: {exc}") from None
    new_meta = dict(meta)
    new_meta.pop("integrity", None)
    with atomic_variant_dir(folder.parent, folder.name) as tmp:
        save_packed(model, info, tmp)
        _copy_side_files(folder, tmp)
        weights = sorted(p.name for p in tmp.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        from importlib.metadata import version

        new_meta["storage"] = {"format": "compressed-tensors", "compression_format": "pack-quantized",
                               "library": f"compressed-tensors {version('compressed-tensors')}", **info.summary(),
                               "bytes_on_disk": sum((tmp / n).stat().st_size for n in weights),
                               "packed_by": "ctrust models pack",
                               "packed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "dense_bytes_before": sum(p.stat().st_size for p in folder.iterdir()
                                                         if p.suffix in WEIGHT_SUFFIXES),
                               "dense_digests_verified": verified}
        new_meta.setdefault("files", {})["weights"] = weights
        new_meta["integrity"] = record_files(tmp)
        new_meta["weights_fingerprint"] = {
            "value": old_key, "folder": model_fingerprint(tmp),
            "source": "the fake-quant folder this variant was packed from (packed weights decompress to it bit for bit)",
        }
        write_json(tmp / METADATA_FILE, new_meta)
    return new_meta


@contextmanager
def _atomic_out(out: Path, force: bool) -> Iterator[Path]:
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        raise CtrustError(f"--out {out}: folder {parent} does not exist")
    if out.exists() and not out.is_dir():
        raise CtrustError(f"--out {out} is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CtrustError(f"--out {out} exists and is not empty; pass --force to replace it")
    tmp = parent / f".tmp-export-{out.name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if out.exists():
            old = parent / f".tmp-old-{out.name}-{secrets.token_hex(4)}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_variant(folder: Path, meta: dict[str, Any], out: Path, fmt: str, *, force: bool = False,
                   dtype: str = "bfloat16", card: str = "") -> Path:
    """Write a self-contained folder for vLLM / transformers / upload (see module doc); returns `out`."""
    import torch

    from .packed import NotPackable, check_packed_folder, pack_model, save_packed, unpackable_reason

    folder, out = Path(folder), Path(out)
    if fmt not in EXPORT_FORMATS:
        raise CtrustError(f"--format {fmt!r}: choose {' or '.join(EXPORT_FORMATS)}")
    if dtype not in EXPORT_DTYPES:
        raise CtrustError(f"--dtype {dtype!r}: choose {', '.join(EXPORT_DTYPES)}")
    if out.resolve() == folder.resolve() or folder.resolve() in out.resolve().parents:
        raise CtrustError(f"--out {out} is inside the variant folder; choose another place")
    spec = _spec_of(meta, folder)
    verified = verify_variant(folder, meta, full=True)
    packed = is_stored_packed(meta)
    if fmt == "compressed-tensors" and not packed:
        reason = unpackable_reason(spec)
        if reason:
            raise CtrustError(f"{folder.name} cannot be exported as compressed-tensors: {reason}; use --format dense")
    if packed:
        check_packed_folder(folder)
    with _atomic_out(out, force) as tmp:
        if fmt == "compressed-tensors" and packed:
            for path in sorted(folder.iterdir()):
                if path.is_file() and (path.suffix in WEIGHT_SUFFIXES or path.name == "config.json"):
                    shutil.copy2(path, tmp / path.name)
            written = "copied the packed checkpoint"
        elif fmt == "compressed-tensors":
            model = _load_dense(folder, torch.float32)
            try:
                info = pack_model(model, spec)
            except NotPackable as exc:
                raise CtrustError(f"{folder.name}: cannot export as compressed-tensors: {exc}; "
                                  "use --format dense") from None
            save_packed(model, info, tmp)
            written = "packed from the fake-quant weights (bit-exact)"
        else:
            model = _load_dense(folder, torch.float32)
            model.to(getattr(torch, dtype))
            model.config.dtype = getattr(torch, dtype)
            model.save_pretrained(tmp)
            written = f"dense {dtype} (the evaluated float32 weights cast to {dtype})"
        side = _copy_side_files(folder, tmp)
        provenance = {
            "exported_by": "ctrust models export",
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "variant": folder.name,
            "format": fmt,
            "dtype": None if fmt == "compressed-tensors" else dtype,
            "how": written,
            "source_digests_verified": verified,
            "compression": {k: v for k, v in meta.items() if k not in ("integrity",)},
            "files": sorted(p.name for p in tmp.iterdir()) + ["README.md", PROVENANCE_FILE],
            "side_files": side,
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")
    return out
