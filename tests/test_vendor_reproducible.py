"""Every vendoring script is seeded: rebuilding from ../shared gives the committed bytes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODULES = sorted(p.stem for p in (ROOT / "scripts" / "vendor").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_vendor_script_reproduces_packaged_data(name: str, tmp_path: Path) -> None:
    if not (SHARED / "data" / "decodingtrust").is_dir():
        pytest.skip("needs the shared data folder next to the repo (present in CI)")
    spec = importlib.util.spec_from_file_location(f"vendor_{name}", ROOT / "scripts" / "vendor" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    written = mod.build(SHARED, tmp_path)
    assert written
    for path in written:
        assert path.read_bytes() == (ROOT / path.relative_to(tmp_path)).read_bytes(), path
