"""Parsing and validation of the synthetic dataset's options (which may arrive as CLI strings)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

from fmb.data.canonical import DataError
from fmb.datasets.synthetic.anomalies import ANOMALY_CLASSES, DEFAULT_TOTAL_RATE, class_counts

MAX_STRENGTH = 100.0
#: ``split`` values: ``all`` and ``test`` are the survey's ``size`` objects, ``train`` the additional objects
SPLITS = ("all", "train", "test")


@dataclass(frozen=True)
class SyntheticOptions:
    """Resolved options: per-class ``rates`` and ``strengths`` cover all eight classes."""

    size: int
    seed: int
    chunk_size: int
    stamp: int
    rates: dict[str, float]
    strengths: dict[str, float]
    split: str = "all"
    train_size: int = 0

    def as_dict(self) -> dict:
        """JSON-ready dict of every option."""
        return asdict(self)

    def generation(self) -> dict:
        """What determines the generated objects (the fingerprint hashes it): every option for
        ``split=train``; without ``split`` and ``train_size`` for ``all`` and ``test``, whose objects are the
        same (so the survey's cache is the one it was before the option existed)."""
        d = self.as_dict()
        if self.split != "train":
            d.pop("split")
            d.pop("train_size")
        return d

    @property
    def n_objects(self) -> int:
        """Objects of the chosen split: ``size`` (all, test) or ``train_size`` (train)."""
        return self.train_size if self.split == "train" else self.size

    @property
    def counts(self) -> dict[str, int]:
        """Exact number of objects per anomaly class (of the chosen split)."""
        return class_counts(self.n_objects, self.rates)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_objects // self.chunk_size)


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
    split: object = "all",
    train_size: object = None,
) -> SyntheticOptions:
    """Coerce and check options. ``anomaly_rate`` is spread evenly over the eight classes (default 5 %,
    or 0 when ``rates`` is given); ``rates`` then sets individual classes. ``split`` is one of
    :data:`SPLITS`; ``train_size`` (default ``size``) the number of training objects."""
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
    split_s = str(split).strip().lower()
    if split_s not in SPLITS:
        raise DataError(f"synthetic: option split={split!r} must be one of {', '.join(SPLITS)}")
    train_i = size_i if train_size is None else _as_int("train_size", train_size, 1, 10_000_000)
    total_rate = sum(resolved.values())
    if total_rate > 1.0 + 1e-9:
        raise DataError(f"synthetic: anomaly rates add up to {total_rate:g}, more than 1")
    return SyntheticOptions(
        size=size_i,
        seed=seed_i,
        chunk_size=min(chunk_i, train_i if split_s == "train" else size_i),
        stamp=stamp_i,
        rates=resolved,
        strengths=strength,
        split=split_s,
        train_size=train_i,
    )
