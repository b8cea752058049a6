"""Shared presentation rules for score deltas (CLI tables and the TUI agree on colours)."""

from __future__ import annotations


def delta_style(delta: float | None, significant: bool) -> str:
    """Green when trust went up, red when down; bold only when the 95% CI excludes zero."""
    if delta is None or abs(delta) < 1e-9:
        return "dim"
    base = "green" if delta > 0 else "red"
    return f"bold {base}" if significant else base


VERDICT_STYLES = {"non-inferior": "bold green", "inferior": "bold red", "inconclusive": "yellow",
                  "too few prompts": "dim"}


def verdict_style(verdict: str | None) -> str:
    """Non-inferiority verdict colours: green ships, red does not, yellow needs more prompts."""
    return VERDICT_STYLES.get(verdict or "", "dim")
