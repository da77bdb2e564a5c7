"""Declared parameters (name, type, range or choices, default, doc) and their one-line checks.

Detectors, datasets and models take ``name:key=value`` parameters from the command line and the
TOML file. Each declares what it accepts as :class:`Param` objects; :func:`check_params` checks a
whole parameter dict before any work is done and raises a one-line :class:`~fmb.errors.UsageError`
naming the thing, the parameter and what is valid. Pure data: importing this module is cheap.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fmb.errors import UsageError

#: type names a Param may take; a value must match one of them
TYPES = ("int", "float", "bool", "str", "dict", "list", "none", "any")


def suggest(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` (difflib ratio >= 0.6), else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Param:
    """One declared parameter.

    ``types``: accepted type names (:data:`TYPES`); ``int`` accepts integral floats (``2.0``) and
    converts them; ``float`` accepts ints. ``low``/``high`` bound numbers (inclusive unless
    ``low_open``/``high_open``); ``choices`` restrict strings (compared case-insensitively and
    returned lower-case). A ``None`` value is accepted only when ``"none"`` is among ``types``.
    """

    name: str
    types: tuple[str, ...] = ("any",)
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""

    def describe(self) -> str:
        """What is valid, in words: ``"an integer >= 1"``, ``"one of maf, nsf"``."""
        parts = []
        for t in self.types:
            if t in ("int", "float"):
                word = "an integer" if t == "int" else "a number"
                bounds = []
                if self.low is not None:
                    bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
                if self.high is not None:
                    bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
                parts.append(word + (" " + " and ".join(bounds) if bounds else ""))
            elif t == "str":
                parts.append(f"one of {', '.join(self.choices)}" if self.choices else "a string")
            elif t == "none":
                parts.append("none")
            elif t != "any":
                parts.append({"bool": "true or false", "dict": "a dict", "list": "a list"}[t])
        return " or ".join(dict.fromkeys(parts)) or "any value"

    def check(self, owner: str, value: Any) -> Any:
        """The value (converted where documented above); UsageError naming ``owner`` and the parameter."""

        def bad(why: str = "") -> UsageError:
            return UsageError(f"{owner}: parameter {self.name}={value!r} {why or 'must be ' + self.describe()}")

        if "any" in self.types:
            return value
        if value is None:
            if "none" in self.types:
                return None
            raise bad()
        if isinstance(value, bool):
            if "bool" in self.types:
                return value
            raise bad()
        if isinstance(value, (int, float)):
            if "int" in self.types and (isinstance(value, int) or (math.isfinite(value) and value.is_integer())):
                return self._range(int(value), bad)
            if "float" in self.types:
                if not math.isfinite(value):
                    raise bad("must be finite")
                return self._range(float(value), bad)
            raise bad()
        if isinstance(value, str):
            if "str" not in self.types:
                raise bad()
            if self.choices:
                low = value.strip().lower()
                if low not in self.choices:
                    raise bad(f"must be one of {', '.join(self.choices)}{suggest(low, self.choices)}")
                return low
            return value
        kind = {dict: "dict", list: "list", tuple: "list"}.get(type(value))
        if kind in self.types:
            return value
        raise bad()

    def _range(self, x: float, bad: Callable[..., UsageError]) -> float:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            raise bad()
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            raise bad()
        return x


def schema(*params: Param) -> dict[str, Param]:
    """A name -> Param mapping from Params."""
    return {p.name: p for p in params}


def check_params(owner: str, declared: dict[str, Param], params: dict[str, Any]) -> dict[str, Any]:
    """Check every parameter of ``params`` against ``declared``; returns the checked (converted) values.

    Unknown names are a UsageError listing the valid ones (with a suggestion for a misspelling).
    ``owner`` names the thing in messages, e.g. ``"detector 'nf'"``.
    """
    unknown = sorted(set(params) - set(declared))
    if unknown:
        hint = suggest(unknown[0], declared)
        raise UsageError(
            f"{owner}: unknown parameter(s) {', '.join(unknown)}{hint} (valid: {', '.join(sorted(declared)) or 'none'})"
        )
    return {k: declared[k].check(owner, v) for k, v in params.items()}


def keyword_names(func: Callable[..., Any], skip: Iterable[str] = ()) -> list[str] | None:
    """The keyword parameters of ``func`` (without ``*args``, ``**kwargs`` and ``skip``); None when it
    declares none but takes ``**kwargs`` (then only ``func`` itself can tell what it accepts)."""
    names, var_kw = [], False
    for p in inspect.signature(func).parameters.values():
        var_kw |= p.kind == p.VAR_KEYWORD
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skip:
            continue
        names.append(p.name)
    return None if var_kw and not names else names


def check_names(owner: str, known: Iterable[str], given: Iterable[str], what: str = "option") -> None:
    """UsageError when ``given`` has a name not in ``known``; lists the valid ones, suggests the closest."""
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UsageError(
            f"{owner}: unknown {what}(s) {', '.join(unknown)}{suggest(unknown[0], known)} "
            f"(valid: {', '.join(known) or 'none'})"
        )
