"""The one-line screen switcher shown at the top of every main screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS: tuple[tuple[str, str, str], ...] = (
    ("1", "browse", "Browse"),
    ("2", "compare", "Compare"),
    ("3", "setup", "Setup"),
    ("4", "run", "Run"),
    ("5", "inspect", "Inspect"),
)
READONLY_SCREENS = ("browse", "compare")


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; color: $text-muted; }
    """

    def __init__(self, current: str, readonly: bool = False) -> None:
        super().__init__()
        self.current = current
        self.readonly = readonly

    def render(self) -> Text:
        out = Text(" ctrust ", style="bold reverse")
        out.append(" read-only " if self.readonly else " ", style="bold yellow" if self.readonly else "")
        for key, name, title in SCREENS:
            if self.readonly and name not in READONLY_SCREENS:
                continue
            style = "bold reverse" if name == self.current else ""
            out.append(" ")
            out.append(f" {key} {title} ", style=style)
        out.append("   ? help · ctrl+p palette", style="dim")
        return out
