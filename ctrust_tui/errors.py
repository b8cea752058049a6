"""User-facing errors.

Anything raised as a `CtrustError` is shown to the user as one clear line (CLI exit code 2,
a notification in the TUI). Everything else is a bug and may show a traceback.
"""

from __future__ import annotations


class CtrustError(Exception):
    """A problem the user can fix: bad input, missing model, unusable cache."""

    exit_code = 2


class ModelNotFound(CtrustError):
    """A model name/path/hub id that resolves to nothing usable."""


class InvalidSpec(CtrustError):
    """A compression spec string or option that is not valid."""


class StoreError(CtrustError):
    """The SQLite cache cannot be used (not ours, too new, read-only, full disk)."""


class Cancelled(Exception):
    """Raised inside workers when the user cancels; never shown as an error."""
