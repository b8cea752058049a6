"""Make untrusted text (model outputs, prompts, DB contents) inert before display.

Two separate dangers: Rich/Textual *markup* (`[link=file:///etc/passwd]`) and raw *terminal
control sequences* (`ESC ] 52` writes the clipboard, `ESC [2J` clears the screen). We strip
control sequences first, then escape markup, so both are shown literally and harmlessly.
"""

from __future__ import annotations

import re

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


def strip_control(text: str) -> str:
    """Remove terminal escape sequences and control characters, keeping \\n and \\t."""
    text = _ANSI.sub("", text)
    return _CONTROL.sub(lambda m: "\ufffd" if m.group() == "\x1b" else "", text)


def safe_markup(text: str) -> str:
    """Text ready to embed inside Rich/Textual markup: controls stripped, markup escaped."""
    return _rich_escape(strip_control(text))


def safe_text(text: str):
    """A `rich.text.Text` that renders `text` literally (no markup parsing at all)."""
    from rich.text import Text

    return Text(strip_control(text))
