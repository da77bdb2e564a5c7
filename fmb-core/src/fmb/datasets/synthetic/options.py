"""Parsing and validation of the synthetic dataset's options (which may arrive as CLI strings)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

from fmb.data.canonical import DataError
from fmb.datasets.synthetic.anomalies import ANOMALY_CLASSES, DEFAULT_TOTAL_RATE, class_counts

MAX_STRENGTH = 100.0


@dataclass(frozen=True)
class SyntheticOptions:
    """Resolved options: per-class ``rates`` and ``strengths`` cover all eight classes."""

    size: int
    seed: int
    chunk_size: int
    stamp: int
    rates: dict[str, float]
    strengths: dict[str, float]

    def as_dict(self) -> dict:
        """JSON-ready dict (also what the fingerprint hashes)."""
        return asdict(self)

    @property
    def counts(self) -> dict[str, int]:
        """Exact number of objects per anomaly class."""
        return class_counts(self.size, self.rates)

    @property
    def n_chunks(self) -> int:
        return -(-self.size // self.chunk_size)


def _as_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = value.strip()
            out = int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        else:
            out = value  # type: ignore[assignment]
        if isinstance(out, float):
            if not out.is_integer():
                raise ValueError
            out = int(out)
        out = int(out)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"synthetic: option {name}={value!r} must be an integer") from None
    if out < minimum or (maximum is not None and out > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise DataError(f"synthetic: option {name}={out} must be {bound}")
    return out


def _as_float(name: str, value: object, minimum: float, maximum: float) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        out = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"synthetic: option {name}={value!r} must be a number") from None
    if not math.isfinite(out) or out < minimum or out > maximum:
        raise DataError(f"synthetic: option {name}={out} must be between {minimum} and {maximum}")
    return out


def parse_class_map(name: str, value: object) -> dict[str, object]:
    """A class -> value mapping from a dict, a JSON object string, or ``"lens=0.1;agn=0.02"``
    (pairs separated by ``;``, ``,``, ``|`` or spaces; ``=`` or ``:`` between class and value)."""
    if value is None:
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"synthetic: option {name}: invalid JSON ({exc.msg})") from None
        else:
            out: dict[str, object] = {}
            for item in filter(None, re.split(r"[;,|\s]+", text)):
                m = re.fullmatch(r"([^=:]+)[=:](.+)", item)
                if m is None:
                    raise DataError(f"synthetic: option {name}: expected class=value, got {item!r}")
                out[m.group(1).strip()] = m.group(2).strip()
            value = out
    if not isinstance(value, dict):
        raise DataError(f"synthetic: option {name} must map anomaly classes to numbers, got {value!r}")
    unknown = sorted(str(k) for k in value if k not in ANOMALY_CLASSES)
    if unknown:
        raise DataError(
            f"synthetic: option {name}: unknown anomaly class {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(ANOMALY_CLASSES)})"
        )
    return dict(value)


def resolve_options(
    size: object = 2000,
    seed: object = 0,
    chunk_size: object = 250,
    anomaly_rate: object = None,
    rates: object = None,
    strengths: object = None,
    stamp: object = 64,
) -> SyntheticOptions:
    """Coerce and check options. ``anomaly_rate`` is spread evenly over the eight classes (default 5 %,
    or 0 when ``rates`` is given); ``rates`` then sets individual classes."""
    size_i = _as_int("size", size, 1, 10_000_000)
    seed_i = _as_int("seed", seed, 0, 2**63 - 1)
    chunk_i = _as_int("chunk_size", chunk_size, 1, 100_000)
    stamp_i = _as_int("stamp", stamp, 16, 256)
    rate_map = parse_class_map("rates", rates)
    if anomaly_rate is None:
        total = DEFAULT_TOTAL_RATE if rates is None else 0.0
    else:
        total = _as_float("anomaly_rate", anomaly_rate, 0.0, 1.0)
    resolved = {c: total / len(ANOMALY_CLASSES) for c in ANOMALY_CLASSES}
    for c, v in rate_map.items():
        resolved[c] = _as_float(f"rates[{c}]", v, 0.0, 1.0)
    strength = {c: 1.0 for c in ANOMALY_CLASSES}
    for c, v in parse_class_map("strengths", strengths).items():
        strength[c] = _as_float(f"strengths[{c}]", v, 0.0, MAX_STRENGTH)
    total_rate = sum(resolved.values())
    if total_rate > 1.0 + 1e-9:
        raise DataError(f"synthetic: anomaly rates add up to {total_rate:g}, more than 1")
    return SyntheticOptions(
        size=size_i, seed=seed_i, chunk_size=min(chunk_i, size_i), stamp=stamp_i, rates=resolved, strengths=strength
    )
