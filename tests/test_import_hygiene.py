"""The pure layers and the browse path must never import torch/transformers (fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers")


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('HEAVY=' + ','.join(m for m in ('torch','transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    marker = [line for line in out.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker, out.stdout
    return {m for m in marker[-1][len("HEAVY="):].split(",") if m}


@pytest.mark.parametrize(
    "code",
    [
        "import ctrust_tui.store, ctrust_tui.trust",
        "import ctrust_tui.trust.registry as r\nfor d in r.available_ids(): r.get_dimension(d)",
        "import ctrust_tui.runner, ctrust_tui.events, ctrust_tui.compress, ctrust_tui.report",
        "import ctrust_tui.tui.app",
        "from ctrust_tui.scorers import resolve_toxicity_scorer; resolve_toxicity_scorer(None)",
        "import ctrust_tui.sweep, ctrust_tui.sweep.display",  # a sweep's driver judges without torch
    ],
)
def test_pure_imports_do_not_load_torch(code: str) -> None:
    assert _modules_after(code) == set()


@pytest.mark.parametrize("argv", [["--help"], ["browse", "--help"], ["runs", "--help"], ["run", "--help"],
                                  ["sweep", "--help"]])
def test_cli_help_does_not_load_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom ctrust_tui.cli import main\n"
        f"sys.argv=['ctrust', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    assert _modules_after(code) == set()


def test_runs_listing_does_not_load_torch(tmp_path) -> None:
    db = tmp_path / "c.db"
    code = (
        "import sys\nfrom ctrust_tui.store import open_store\n"
        f"open_store({str(db)!r}).close()\n"
        "from ctrust_tui.cli import main\n"
        f"sys.argv=['ctrust','runs','--db',{str(db)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    )
    assert _modules_after(code) == set()
