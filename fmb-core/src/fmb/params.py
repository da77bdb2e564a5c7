"""Parse ``name:key=value,key=value`` strings from the command line into a name and parameters."""

from __future__ import annotations

import ast
from typing import Any

from fmb.errors import UsageError


def parse_value(text: str) -> Any:
    """``10`` -> 10, ``0.5`` -> 0.5, ``true`` -> True, ``none`` -> None, ``[1,2]`` -> [1, 2]; else the string."""
    low = text.strip().lower()
    if low in {"true", "false"}:
        return low == "true"
    if low in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_spec(text: str, what: str = "option") -> tuple[str, dict[str, Any]]:
    """Split ``"knn:n_neighbors=10,method=mean"`` into ``("knn", {"n_neighbors": 10, "method": "mean"})``."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"empty {what} name in {text!r}")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in _split_top(rest))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad {what} parameter {item!r} in {text!r}: expected key=value")
        params[key.strip()] = parse_value(value)
    return name, params


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def format_spec(name: str, params: dict[str, Any]) -> str:
    """The inverse of :func:`parse_spec`, with sorted keys (used in folder names and logs)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={params[k]!r}" for k in sorted(params))
