"""Read the data subsets vendored into the package (built by scripts/vendor_data.py).

Nothing here touches the network or `../shared`: the package must run offline from a wheel.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ..errors import CtrustError

_PACKAGE = "ctrust_tui.trust"


def data_text(relpath: str) -> str:
    """Text of `ctrust_tui/trust/data/<relpath>`; a clear error if the vendored file is missing."""
    node = resources.files(_PACKAGE).joinpath("data", *relpath.split("/"))
    try:
        return node.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CtrustError(
            f"vendored data file missing: ctrust_tui/trust/data/{relpath} "
            "(rebuild with `python scripts/vendor_data.py`)"
        ) from None


@cache
def load_json(relpath: str) -> Any:
    return json.loads(data_text(relpath))


def load_jsonl(relpath: str) -> list[Any]:
    return [json.loads(line) for line in data_text(relpath).splitlines() if line.strip()]


def prompt_texts() -> dict[str, Any]:
    """DecodingTrust's exact prompt strings (`prompt_texts.json`, vendored verbatim)."""
    return load_json("prompt_texts.json")
