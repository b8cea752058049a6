#!/usr/bin/env python3
"""Build the data subsets vendored into ctrust_tui/ from ../shared/data (reproducible, seeded).

Usage: python scripts/vendor_data.py [--shared ../shared] [--only NAME ...]

Each module in scripts/vendor/ exposes `build(shared: Path, out: Path) -> list[Path]` and writes
deterministic subsets (fixed seeds, sorted keys). The package never reads ../shared at run time;
licences and attribution are copied next to the data.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRUST_DATA = ROOT / "ctrust_tui" / "trust" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def copy_common(shared: Path) -> list[Path]:
    TRUST_DATA.mkdir(parents=True, exist_ok=True)
    dt = shared / "data" / "decodingtrust"
    out = []
    for name in ("LICENSE", "prompt_texts.json"):
        shutil.copyfile(dt / name, TRUST_DATA / name)
        out.append(TRUST_DATA / name)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--only", nargs="*", help="vendor modules to run (default: all)")
    args = ap.parse_args()
    shared = args.shared.resolve()
    if not (shared / "data").is_dir():
        print(f"error: {shared}/data not found (pass --shared)", file=sys.stderr)
        return 2
    written = copy_common(shared)
    names = args.only or sorted(p.stem for p in (Path(__file__).parent / "vendor").glob("*.py") if p.stem != "__init__")
    for name in names:
        mod = importlib.import_module(f"vendor.{name}")
        files = mod.build(shared, ROOT)
        written.extend(files)
        print(f"{name}: {len(files)} files")
    total = sum(p.stat().st_size for p in written if p.exists())
    manifest_path = TRUST_DATA / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest = {k: v for k, v in manifest.items() if (ROOT / k).exists()}  # merge: partial runs keep others
    manifest.update({str(p.relative_to(ROOT)): p.stat().st_size for p in sorted(set(written)) if p.exists()})
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"total {total / 1e6:.2f} MB in {len(manifest)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
