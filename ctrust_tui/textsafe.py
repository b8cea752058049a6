"""Make untrusted text (model outputs, prompts, files, DB contents) inert before display or export.

The one home for sanitising: the TUI, the progress display, error lines, `runs`, `compare` and
every export format call these helpers. Dangers, and what neutralises each:

- raw *terminal control sequences* (`ESC ] 52` writes the clipboard, `ESC [2J` clears the screen)
  and other C0/C1 controls: removed by `strip_control`;
- *bidi overrides/isolates* (U+202A-U+202E, U+2066-U+2069, and the marks U+200E/U+200F/U+061C):
  they reorder what a reader sees ("Trojan Source", CVE-2021-42574): removed by `strip_control`;
- Rich/Textual *markup* (`[link=file:///etc/passwd]`): escaped by `safe_markup`, or avoided with `safe_text`;
- spreadsheet *formulas* in CSV (`=HYPERLINK(...)`, `+`, `-`, `@`, tab, CR first): `csv_cell` prefixes `'`;
- markdown table structure (`|`, newlines, raw HTML): `md_cell` escapes it.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape as _rich_escape

# CSI, OSC (terminated by BEL or ST), DCS/SOS/PM/APC strings, and single-char ESC sequences.
_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]            # CSI ... final byte
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?   # OSC ... BEL or ST
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?     # DCS / SOS / PM / APC
    | \x9b[0-?]*[ -/]*[@-~]             # 8-bit CSI
    | \x9d[^\x07\x9c]*(?:\x07|\x9c)?    # 8-bit OSC
    | \x1b[@-Z\\-_]?                    # lone ESC + one char
    """,
    re.VERBOSE,
)
# C0/C1 controls except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# bidi embeddings/overrides (LRE RLE PDF LRO RLO), isolates (LRI RLI FSI PDI) and marks (LRM RLM ALM)
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# first characters that make a spreadsheet treat a CSV cell as a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def strip_control(text: str) -> str:
    """Remove terminal escape sequences, control characters and bidi controls, keeping \\n and \\t."""
    text = _BIDI.sub("", _ANSI.sub("", text))
    return _CONTROL.sub(lambda m: "\ufffd" if m.group() == "\x1b" else "", text)


def one_line(text: str) -> str:
    """`strip_control`, then newlines and tabs as spaces: for error lines and single-line cells."""
    return " ".join(strip_control(text).replace("\t", " ").splitlines()) if text else ""


def md_cell(text: object) -> str:
    """A markdown table cell: one line, backslash, `|` and `<` escaped so the cell cannot end early,
    start a new row, or open raw HTML."""
    s = one_line(str(text))
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def csv_cell(text: object) -> str:
    """A CSV cell a spreadsheet shows as text: controls stripped, a leading formula character
    (`=`, `+`, `-`, `@`, tab, CR) neutralised with a `'` prefix."""
    s = strip_control(str(text))
    return "'" + s if s.startswith(_FORMULA_START) else s


def clean_tree(obj: Any) -> Any:
    """`strip_control` on every string (keys included) of a JSON-like tree, for JSON exports."""
    if isinstance(obj, str):
        return strip_control(obj)
    if isinstance(obj, dict):
        return {clean_tree(k) if isinstance(k, str) else k: clean_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_tree(v) for v in obj]
    return obj


def safe_markup(text: str) -> str:
    """Text ready to embed inside Rich/Textual markup: controls stripped, markup escaped."""
    return _rich_escape(strip_control(text))


def safe_text(text: str):
    """A `rich.text.Text` that renders `text` literally (no markup parsing at all)."""
    from rich.text import Text

    return Text(strip_control(text))
