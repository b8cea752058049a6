"""The shell commands the README and docs show, as concrete argument lists a test can run.

Commands are every line of the ```bash blocks (`\\` continues a line, `#` starts a comment).
The usage grammar is expanded so every written form is exercised: `[--opt VALUE]` groups are
included, and `a|b|c` alternatives are zipped, so command k takes alternative k of each choice
(every alternative runs once, without a cartesian blow-up).
Upper-case placeholders (FILE.jsonl, DIMENSION, NAME) are filled from a table the test supplies.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "models" / "README.md")
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class DocCommand:
    source: str  # "README.md:62"
    text: str  # the command as written (continuations joined, comment dropped)
    words: tuple[str, ...]  # shlex words, brackets and alternatives still in place


def doc_commands(paths: tuple[Path, ...] = DOCS) -> list[DocCommand]:
    out: list[DocCommand] = []
    for path in paths:
        if not path.is_file():
            continue
        lang, pending, start = None, "", 0
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = _FENCE.match(line.strip())
            if m:
                lang = None if lang is not None else m.group(1)
                continue
            if lang not in ("bash", "sh", "shell", "console"):
                continue
            if not pending:
                start = n
            pending += " " + line.strip().removeprefix("$ ")
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            words = tuple(shlex.split(pending, comments=True))
            pending = ""
            if words:  # every line of a shell block, so an unknown program fails the test, not hides
                out.append(DocCommand(f"{path.relative_to(REPO)}:{start}", " ".join(words), words))
    return out


def expand(words: tuple[str, ...], fill: dict[str, str]) -> list[list[str]]:
    """Concrete argument lists for one usage line (see the module docstring)."""
    flat: list[str] = []
    for w in words:  # drop the grammar's brackets: optional groups are always exercised
        w = w.removeprefix("[").removesuffix("]")
        if w:
            flat.append(w)
    choices = [w.split("|") for w in flat]
    n = max(len(c) for c in choices)
    commands = []
    for k in range(n):
        argv = []
        for c in choices:
            word = c[k % len(c)]
            argv.append(fill.get(word, word))
        commands.append(argv)
    return commands


PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.[a-z0-9]+)?$")


def placeholders(words: tuple[str, ...]) -> set[str]:
    found = set()
    for w in words:
        for alt in w.removeprefix("[").removesuffix("]").split("|"):
            if PLACEHOLDER.match(alt):
                found.add(alt)
    return found
