"""Option parsing, in one place: ``name:key=value,key=value`` strings from the command line into a name
and parameters (:func:`parse_spec`, :func:`parse_value`), and the coercion of option values that may
arrive as CLI strings or TOML values (:func:`as_bool`, :func:`as_int`, :func:`as_float`, :func:`as_list`).
Declared parameters (name, type, range) are checked in :mod:`fmb.paramschema`."""

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
    """Split ``"knn:n_neighbors=10,method=mean"`` into ``("knn", {"n_neighbors": 10, "method": "mean"})``.

    Raises UsageError (one line) for an empty name, an item without ``=`` and a key given twice."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"empty {what} name in {text!r}")
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in _split_top(rest))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad {what} parameter {item!r} in {text!r}: expected key=value")
        if key.strip() in params:  # the last one silently winning would run what the user did not ask for
            raise UsageError(f"{what} parameter {key.strip()!r} given twice in {text!r}")
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


# ----------------------------------------------------------------------------- value coercion


def as_bool(value: Any) -> bool:
    """``True``/``"true"``/``"1"``/``"yes"`` -> True (options may arrive as CLI strings)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return bool(value)


def as_int(value: Any, name: str) -> int:
    """``value`` as an int (``"8"`` -> 8); ValueError naming option ``name`` otherwise."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name!r} must be an integer, got {value!r}") from None


def as_limit(value: Any, name: str = "limit") -> int | None:
    """A row limit: None (or ``""``/``none``) for no limit, else a positive int (``"10"`` -> 10, ``10.0`` -> 10).

    Raises a one-line UsageError naming option ``name`` for 0, a negative, a fraction, a bool or text.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        n = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"option {name!r} must be a positive integer (number of objects), got {value!r}") from None
    if n < 1:
        raise UsageError(f"option {name!r} must be a positive integer (number of objects), got {value!r}")
    return n


def as_float(value: Any, name: str) -> float | None:
    """``value`` as a float (``"0.1"`` -> 0.1), None for None or ``""``; ValueError naming ``name``."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"option {name!r} must be a number, got {value!r}") from None


def as_list(value: Any) -> list[str] | None:
    """``"a,b"``, ``"[a,b]"`` or ``["a", "b"]`` -> ``["a", "b"]``; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [v.strip().strip("'\"") for v in text.split(",") if v.strip().strip("'\"")]
    return [str(v).strip() for v in value]
