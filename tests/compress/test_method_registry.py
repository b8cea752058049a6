"""The compression-method registry (spec.METHODS) is the one list: every method it names has
exactly one implementation for its pipeline, and nothing else dispatches on method names."""

from __future__ import annotations

import re
from pathlib import Path

from ctrust_tui.compress import methods
from ctrust_tui.compress.spec import METHODS, PIPELINES

PKG = Path(__file__).resolve().parents[2] / "ctrust_tui"


def test_every_method_has_one_implementation_for_its_pipeline() -> None:
    for name, info in METHODS.items():
        assert info.pipeline in PIPELINES, name
        impls = [table for table in (methods.WEIGHT_ONLY, methods.SEQUENTIAL) if name in table]
        if info.pipeline == "weight_only":
            assert impls == [methods.WEIGHT_ONLY], name
        elif info.pipeline == "sequential":
            assert impls == [methods.SEQUENTIAL], name
            assert info.calibrated and methods.needs_calibration(_spec(name))
        else:
            assert impls == [], name
        assert info.writes_folder == (info.pipeline in ("weight_only", "sequential", "awq"))
    assert set(methods.OWN_METHODS) == set(methods.WEIGHT_ONLY) | set(methods.SEQUENTIAL)


def _spec(name: str):
    from ctrust_tui.compress.spec import parse_spec

    return parse_spec({"gptq": "gptq-4b-g128", "sparsegpt": "sparsegpt-0.5", "wanda": "wanda-2:4"}[name])


def test_no_dispatch_on_method_names_outside_the_registry() -> None:
    """Which code runs for which method is read from the registry (pipeline + tables): no
    `elif spec.method ==` chains anywhere, and no branching on a method name in the pipeline
    code (api, methods, runner). A method's own module may still guard its input."""
    chain = re.compile(r"^\s*elif\s+spec\.(method|kind)\b")
    branch = re.compile(r"^\s*(el)?if\s+spec\.method\s*(==|in)\s")
    pipeline_code = {"compress/api.py", "compress/methods.py", "runner.py"}
    found = []
    for path in [PKG / "runner.py", *(PKG / "compress").glob("*.py"), *(PKG / "engine").glob("*.py")]:
        rel = str(path.relative_to(PKG))
        if rel == "compress/spec.py":  # the registry and the spec's string form
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if chain.search(line) or (rel in pipeline_code and branch.search(line)):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "dispatch on the registry's pipeline/tables instead:\n" + "\n".join(found)
