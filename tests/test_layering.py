"""The architecture's import rules, enforced by walking every module's AST.

Imports inside functions count (a lazy import is still a dependency); only `if TYPE_CHECKING:`
blocks are exempt from the laziness rule. A failure names the file, the line and the rule.

- store and trust are pure Python: they never import engine, compress, runner, tui, the scorer
  resolver, the CLI or torch/transformers, not even inside functions;
- engine and compress never import tui, runner or the CLI;
- tui imports the runner and the engine only inside functions (`ctrust browse` stays torch-free).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ctrust_tui"
HEAVY = ("torch", "transformers", "accelerate", "bitsandbytes", "safetensors", "gguf")


@dataclass(frozen=True)
class Import:
    file: str  # path relative to the repo
    line: int
    target: str  # absolute module name
    lazy: bool  # inside a function
    type_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every import in the file, relative ones resolved, with where it sits."""
    source = path.read_text() if source is None else source
    tree = ast.parse(source, filename=str(path))
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[Import] = []

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            child_type = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            rel = str(path.relative_to(PKG.parent))
            if isinstance(child, ast.Import):
                out.extend(Import(rel, child.lineno, a.name, lazy, type_only) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    prefix = ".".join(base)
                    target = f"{prefix}.{child.module}" if child.module else prefix
                else:
                    target = child.module or ""
                if child.module is None:  # `from . import x`: each name may be a module
                    out.extend(Import(rel, child.lineno, f"{target}.{a.name}", lazy, type_only) for a in child.names)
                else:
                    out.append(Import(rel, child.lineno, target, lazy, type_only))
            visit(child, child_lazy, child_type)

    visit(tree, False, False)
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ctrust_tui" else parts[0]


def _within(target: str, layers: tuple[str, ...]) -> bool:
    return target.startswith("ctrust_tui.") and _layer(target) in layers


def violations(imports: list[Import], source_module: str) -> list[str]:
    layer = _layer(source_module)
    bad = []
    for imp in imports:
        t = imp.target
        where = f"{imp.file}:{imp.line} imports {t}"
        if layer in ("store", "trust"):
            if _within(t, ("engine", "compress", "runner", "tui", "scorers", "cli", "serve")) or \
                    t.split(".")[0] in HEAVY:
                bad.append(f"{where}: store and trust are pure Python; they never import engine, compress, "
                           "runner, tui, the scorer resolver, the CLI or torch, not even inside functions")
        elif layer in ("engine", "compress"):
            if _within(t, ("tui", "runner", "cli", "serve")):
                bad.append(f"{where}: engine and compress never import tui, runner or the CLI")
        elif layer == "tui":
            if _within(t, ("runner", "engine")) and not imp.lazy and not imp.type_only:
                bad.append(f"{where} at module level: tui imports the runner and the engine only inside "
                           "functions (so `ctrust browse` never loads torch)")
    return bad


MODULES = sorted(PKG.rglob("*.py"))


def test_every_module_keeps_the_layering_rules() -> None:
    assert len(MODULES) > 60
    found = []
    for path in MODULES:
        found += violations(imports_of(path), module_name(path))
    assert not found, "layering violations:\n" + "\n".join(found)


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("trust/x.py", "def f():\n    from ..engine import loader\n", "store and trust are pure Python"),
    ("store/x.py", "import torch\n", "store and trust are pure Python"),
    ("trust/x.py", "from .. import runner\n", "store and trust are pure Python"),
    ("compress/x.py", "def f():\n    from ..tui import app\n", "engine and compress never import tui"),
    ("tui/screens/x.py", "from ...runner import Runner\n", "tui imports the runner and the engine only inside"),
])
def test_the_checker_catches_each_kind_of_violation(module: str, source: str, expected: str) -> None:
    path = PKG / module
    found = violations(imports_of(path, source), module_name(path))
    assert len(found) == 1 and expected in found[0] and f"ctrust_tui/{module}:" in found[0], found


def test_lazy_and_type_checking_imports_are_allowed_in_tui() -> None:
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..runner import Runner\n"
           "def f():\n    from ..runner import Runner\n")
    path = PKG / "tui" / "x.py"
    assert violations(imports_of(path, src), module_name(path)) == []
