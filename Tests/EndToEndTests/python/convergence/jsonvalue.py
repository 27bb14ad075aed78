"""JSON equality as StateCast defines it: `1` equals `1.0`, object key order
does not matter, `true` is not `1`."""

from __future__ import annotations

import json
from typing import Any

from conftest import json_kind as kind  # noqa: F401  (re-exported: the kinds a derived whitelist tells apart)


def canon(value: Any) -> Any:
    """A hashable form of a JSON value in which exactly the JSON-equal values are equal."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            return ("number", int(value))
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(canon(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, canon(item)) for key, item in value.items()))
    raise TypeError(f"not a JSON value: {value!r}")


def same(a: Any, b: Any) -> bool:
    return canon(a) == canon(b)


def short(value: Any, limit: int = 400) -> str:
    """Compact JSON, cut to `limit` characters for messages."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[:limit] + f"…({len(text)} chars)"


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
