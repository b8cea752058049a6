"""On-disk store of compressed variants beside their base model (pure Python: no torch).

Layout under the models dir:

    models/<base>/                                   the base HF folder
    models/<base>--<spec>/                           a compressed variant, default calibration
    models/<base>--<spec>--<calibration tag>/        calibrated method, non-default calibration
        config.json, model.safetensors, tokenizer files, compression.json

`:` in a spec (N:M sparsity, `wanda-2:4`) becomes `_` in the folder name (`wanda-2_4`) so
the folders also work on Windows and in URLs; compression.json keeps the real spec string.

compression.json is written last, inside a temporary `.tmp-<name>-<random>` folder that is
then renamed into place (`os.replace`), so a variant folder either is complete or does not
exist; `.tmp-*` folders left by a killed process are ignored and can be removed with
`remove_stale_temp_dirs`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InvalidSpec
from .fingerprint import model_fingerprint
from .integrity import TamperedVariant, is_recorded, verify_files
from .spec import CompressionSpec, parse_spec
from .types import CalibrationConfig

METADATA_FILE = "compression.json"
FORMAT = "ctrust-compressed-v1"
TMP_PREFIX = ".tmp-"
SEPARATOR = "--"


def spec_dir_token(spec: CompressionSpec | str) -> str:
    return str(spec).replace(":", "_")


def variant_dir_name(base_name: str, spec: CompressionSpec, calibration: CalibrationConfig | None = None) -> str:
    """`<base>--<spec>`, plus `--<calibration.tag>` for a calibrated method with non-default calibration."""
    name = f"{base_name}{SEPARATOR}{spec_dir_token(spec)}"
    if spec.calibrated and calibration is not None and calibration != CalibrationConfig():
        name += f"{SEPARATOR}{calibration.tag}"
    return name


def read_metadata(folder: Path) -> dict[str, Any] | None:
    """compression.json of a variant folder, or None when missing or unreadable."""
    path = Path(folder) / METADATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def matches(meta: dict[str, Any], spec: CompressionSpec, base_fingerprint: str,
            calibration: CalibrationConfig | None) -> bool:
    """Does a variant's metadata describe exactly this base, spec and (for calibrated specs) calibration?"""
    if meta.get("spec") != str(spec):
        return False
    if (meta.get("base") or {}).get("fingerprint") != base_fingerprint:
        return False
    if spec.calibrated:
        want = (calibration or CalibrationConfig()).to_dict()
        got = meta.get("calibration") or {}
        if {k: got.get(k) for k in want} != want:
            return False
    return True


def find_reusable(folder: Path, spec: CompressionSpec, base_fingerprint: str,
                  calibration: CalibrationConfig | None, *, verify: bool = False) -> dict[str, Any] | None:
    """The metadata of `folder` when it is a complete variant matching the request, else None.

    A match whose files differ from the digests in its compression.json raises TamperedVariant
    (integrity.py: size + sampled digest; the full sha256 too when `verify`). A match written
    before digests existed is returned unverified (`integrity.is_recorded(meta)` is False)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        return None
    meta = read_metadata(folder)
    if meta is None or not matches(meta, spec, base_fingerprint, calibration):
        return None
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return None
    if is_recorded(meta) or "integrity" in meta:
        verify_files(folder, meta.get("integrity"), full=verify)
    return meta


def verified(folder: Path, meta: dict[str, Any]) -> bool:
    """Cheap check (size + sampled digest) that a variant still holds the files it recorded."""
    if not is_recorded(meta):
        return False
    try:
        verify_files(Path(folder), meta["integrity"])
    except TamperedVariant:
        return False
    return True


def cache_fingerprint(folder: Path, meta: dict[str, Any] | None) -> str:
    """The fingerprint generations of this variant are cached under.

    `model_fingerprint(folder)`, except for a folder packed in place by `ctrust models pack`
    whose files are still exactly what pack wrote: it keeps the fingerprint of the fake-quant
    folder it replaced (pack checked that the packed weights decompress to those weights bit for
    bit), so its cached generations stay valid."""
    current = model_fingerprint(folder)
    wf = (meta or {}).get("weights_fingerprint")
    if isinstance(wf, dict) and wf.get("folder") == current and isinstance(wf.get("value"), str):
        return wf["value"]
    return current


def list_compressed(models_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every complete variant folder under `models_dir` with its compression.json, sorted by base then spec."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    out = []
    for child in models_dir.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        meta = read_metadata(child)
        if meta is not None:
            out.append((child, meta))

    def key(item):
        folder, meta = item
        return ((meta.get("base") or {}).get("name") or "", _spec_sort_key(meta.get("spec", "")), folder.name)

    return sorted(out, key=key)


def _spec_sort_key(text: str):
    try:
        spec = parse_spec(text)
    except (InvalidSpec, TypeError, AttributeError):
        return (9, text, 0.0)
    order = {"quant": 0, "prune": 1, "bnb": 2, "none": -1}.get(spec.kind, 3)
    return (order, spec.method, -(spec.bits or 0), spec.target_sparsity or 0.0, text)


def variants_of(models_dir: Path, base_fingerprint: str) -> list[tuple[Path, dict[str, Any]]]:
    """Variants made from the base with this fingerprint."""
    return [(f, m) for f, m in list_compressed(models_dir)
            if (m.get("base") or {}).get("fingerprint") == base_fingerprint]


def write_json(path: Path, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


@contextmanager
def atomic_variant_dir(models_dir: Path, name: str) -> Iterator[Path]:
    """Yield a fresh temp folder in `models_dir`; on success it becomes `models_dir/name` atomically.

    On any exception (Cancelled, KeyboardInterrupt included) the temp folder is removed and the
    exception propagates; an existing `name` folder is left untouched. An existing `name` folder
    is only replaced after the new one is complete.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = models_dir / f"{TMP_PREFIX}{name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    final = models_dir / name
    try:
        yield tmp
        old = None
        if final.exists():
            old = models_dir / f"{TMP_PREFIX}old-{name}-{secrets.token_hex(4)}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temp_dirs(models_dir: Path, older_than_s: float = 6 * 3600) -> list[Path]:
    """Remove `.tmp-*` folders older than `older_than_s` (left by a killed process); returns them."""
    models_dir = Path(models_dir)
    removed = []
    if not models_dir.is_dir():
        return removed
    now = time.time()
    for child in models_dir.iterdir():
        if child.name.startswith(TMP_PREFIX) and child.is_dir():
            try:
                age = now - child.stat().st_mtime
            except OSError:
                continue
            if age > older_than_s:
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed
