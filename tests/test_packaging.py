"""Dependencies: every one bounded both ways, and constraints.txt (what `make setup` installs) is the
exact closure this environment ran, inside those bounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]
    return [Requirement(line) for line in lines]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    return pins


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_runtime_dependencies_have_lower_and_upper_bounds() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in map(Requirement, project["dependencies"]):
        ops = {s.operator for s in req.specifier}
        assert ops & {">=", "=="} and ops & {"<", "=="}, f"{req}: needs a lower and an upper bound"


def test_constraints_pin_every_dependency_inside_its_bounds() -> None:
    pins = _pins()
    for req in _requirements():
        if req.name == "torch":  # installed first from the Makefile's TORCH (CPU or CUDA build)
            assert "torch" not in pins
            continue
        assert _key(req.name) in pins, f"{req.name} is not pinned in constraints.txt: run `make lock`"
        assert Version(pins[_key(req.name)]) in req.specifier, f"{req.name}=={pins[_key(req.name)]} not in {req}"


def test_constraints_match_this_environment() -> None:
    """A changed dependency (or a new one in pyproject) without `make lock` fails here, naming the fix."""
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "lock.py"), "--check"], capture_output=True,
                         text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr


def test_makefile_installs_from_the_constraints() -> None:
    make = (REPO / "Makefile").read_text()
    assert 'pip install -q -c constraints.txt -e ".[dev,ray]"' in make  # CI runs the Ray sweep tests too
