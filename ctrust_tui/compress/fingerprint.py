"""Fast content fingerprint of a local model folder (pure Python: no torch, no transformers).

`model_fingerprint(path)` = sha256 over

    b"ctrust-fp-v1\\0" + config.json bytes (or b"" when absent)
    + for each weight file, sorted by relative path:
        relative path, size in bytes, sha256(first MiB), sha256(last MiB)

Weight files are `*.safetensors`, `*.bin`, `*.pt`, `*.pth` and `*.gguf` directly in the folder or
below it (hidden folders, such as `.cache`, are skipped). Reading at most 2 MiB per file keeps it
well under 50 ms for a 540 MB model; the size plus both ends catch re-saves, re-quantization and
truncation. It is not a cryptographic identity of every byte: a change confined to the middle
of a file that keeps its size is not seen (safetensors headers sit at the start and tensors are
laid out in order, so any real re-save touches the first MiB).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import ModelNotFound

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
CHUNK = 1 << 20  # 1 MiB
_VERSION = b"ctrust-fp-v1\0"


def weight_files(path: Path) -> list[Path]:
    """Weight files of a model folder (or the file itself), sorted by relative path."""
    path = Path(path)
    if path.is_file():
        return [path]
    found: list[Path] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.endswith(WEIGHT_SUFFIXES) and not name.startswith("."):
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


def _ends_digest(file: Path, size: int) -> bytes:
    h_first = hashlib.sha256()
    h_last = hashlib.sha256()
    with open(file, "rb") as f:
        h_first.update(f.read(CHUNK))
        if size > CHUNK:
            f.seek(max(0, size - CHUNK))
            h_last.update(f.read(CHUNK))
        else:
            h_last.update(b"")
    return h_first.digest() + h_last.digest()


def model_fingerprint(path: Path) -> str:
    """Hex sha256 identifying a model folder's config and weights; see the module docstring.

    Raises ModelNotFound when `path` does not exist or holds neither config.json nor weights.
    """
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"model path does not exist: {path}")
    h = hashlib.sha256(_VERSION)
    base = path if path.is_dir() else path.parent
    config = base / "config.json" if path.is_dir() else None
    has_config = bool(config and config.is_file())
    cfg_bytes = config.read_bytes() if has_config else b""
    h.update(len(cfg_bytes).to_bytes(8, "little"))
    h.update(cfg_bytes)
    files = weight_files(path)
    if not files and not has_config:
        raise ModelNotFound(f"no config.json or weight files (*.safetensors, *.bin, *.gguf) in {path}")
    for file in files:
        rel = file.relative_to(base).as_posix().encode()
        size = file.stat().st_size
        h.update(len(rel).to_bytes(4, "little"))
        h.update(rel)
        h.update(size.to_bytes(8, "little"))
        h.update(_ends_digest(file, size))
    return h.hexdigest()
