"""Digests of a variant's saved files, so a reused variant is verified, not trusted (pure Python).

    record_files(folder) -> dict        # compression.json "integrity": what was written
    verify_files(folder, integrity, *, full=False)   # raises TamperedVariant naming the file

compression.json says which spec and base a variant folder holds; nothing stopped another model's
weights from sitting under a valid-looking one (copied folders, a half-finished manual edit, a
hostile download). At save time every weight file (`*.safetensors`, `*.bin`, ...) and
`config.json` (for a packed variant it defines how the codes decode) get:

- `size` in bytes,
- `sha256` of the whole file (computed once, at save time: ~1 s per GB),
- `sampled_sha256`: sha256 over the size and 64 chunks of 64 KiB at evenly spaced offsets
  (first and last included): 4 MiB read per file, ~5 ms for the default model's 540 MB.

Reuse checks size + sampled digest (any re-save, truncation or different model changes the
header chunk or the sizes; an edit confined to bytes between samples is not seen); `--verify`
(`ctrust models verify`, export, pack) checks the full sha256. A missing file, a weight file
that was not recorded, or any mismatch raises `TamperedVariant` with the file's name. Folders
written before digests existed have no `integrity` record: they load as before but count as
unverified (their perplexity is not reused for siblings; `ctrust models pack` records digests).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import CtrustError
from .fingerprint import weight_files

ALGORITHM = "sha256"
SAMPLE_CHUNK = 64 * 1024
SAMPLE_COUNT = 64
EXTRA_FILES = ("config.json",)
_READ = 1 << 22


class TamperedVariant(CtrustError):
    """A variant folder whose files differ from the digests its compression.json records."""


def _covered(folder: Path) -> list[Path]:
    files = list(weight_files(folder))
    files += [folder / name for name in EXTRA_FILES if (folder / name).is_file()]
    return sorted(set(files), key=lambda p: p.relative_to(folder).as_posix())


def sampled_digest(path: Path, size: int | None = None) -> str:
    """sha256 over the size and SAMPLE_COUNT evenly spaced SAMPLE_CHUNK-byte chunks (see module doc)."""
    size = path.stat().st_size if size is None else size
    h = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        if size <= SAMPLE_CHUNK * SAMPLE_COUNT:
            h.update(f.read())
        else:
            last = size - SAMPLE_CHUNK
            for i in range(SAMPLE_COUNT):
                f.seek(last * i // (SAMPLE_COUNT - 1))
                h.update(f.read(SAMPLE_CHUNK))
    return h.hexdigest()


def full_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            h.update(chunk)
    return h.hexdigest()


def record_files(folder: Path) -> dict[str, Any]:
    """The `integrity` entry of compression.json for the files now in `folder`."""
    folder = Path(folder)
    files = {}
    for path in _covered(folder):
        size = path.stat().st_size
        files[path.relative_to(folder).as_posix()] = {"size": size, "sha256": full_digest(path),
                                                      "sampled_sha256": sampled_digest(path, size)}
    return {"algorithm": ALGORITHM, "sample": {"chunk": SAMPLE_CHUNK, "count": SAMPLE_COUNT}, "files": files}


def is_recorded(meta: dict[str, Any]) -> bool:
    integ = meta.get("integrity")
    return isinstance(integ, dict) and isinstance(integ.get("files"), dict) and bool(integ["files"])


def verify_files(folder: Path, integrity: Any, *, full: bool = False) -> None:
    """Raise TamperedVariant unless the folder's weight files and config.json match `integrity`."""
    folder = Path(folder)
    name = folder.name
    if not isinstance(integrity, dict) or not isinstance(integrity.get("files"), dict):
        raise TamperedVariant(f"{name}: compression.json has no valid file digests")
    recorded: dict[str, Any] = integrity["files"]
    present = {p.relative_to(folder).as_posix(): p for p in _covered(folder)}
    for rel in sorted(present):
        if rel not in recorded:
            raise TamperedVariant(f"{name}: {rel} is not one of the files compression.json recorded; "
                                  "the folder holds other weights (delete it to recompress)")
    for rel, rec in sorted(recorded.items()):
        path = present.get(rel)
        if path is None:
            raise TamperedVariant(f"{name}: {rel} recorded in compression.json is missing")
        if not isinstance(rec, dict):
            raise TamperedVariant(f"{name}: compression.json's digest entry for {rel} is damaged")
        size = path.stat().st_size
        if size != rec.get("size"):
            raise TamperedVariant(f"{name}: {rel} is {size} bytes, compression.json recorded {rec.get('size')}; "
                                  "the folder holds other weights (delete it to recompress)")
        if sampled_digest(path, size) != rec.get("sampled_sha256"):
            raise TamperedVariant(f"{name}: {rel} differs from the digest in compression.json; "
                                  "the folder holds other weights (delete it to recompress)")
        if full and full_digest(path) != rec.get("sha256"):
            raise TamperedVariant(f"{name}: {rel} differs from its sha256 in compression.json (full check); "
                                  "the folder holds other weights (delete it to recompress)")
