"""Reusable widgets: score bars, verdict badges, modals, the screen nav line."""
