"""Conformance checks: does a registered model, dataset or detector honour FMB's protocol?

Plain functions for any test runner::

    from fmb.testing.conformance import check_model, check_dataset, check_detector
    check_model("mymodel")            # raises AssertionError naming the failed check
    check_dataset("mydata", size=64)  # options go to the loader
    check_detector("mydetector", k=3)

Each returns the list of :class:`CheckResult` (passed, or skipped with a reason). For pytest,
:func:`parametrize` makes one test per check::

    @parametrize("model", "mymodel")
    def test_conformance(fmb_check):
        fmb_check()

The kit is a package, one module per kind: :mod:`.common` (check names, results, the ``spec`` and
``light_registration`` checks), :mod:`.models`, :mod:`.datasets`, :mod:`.detectors`; every public name
is importable from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fmb.testing.conformance.common import (
    CHECKS,
    DATASET_CHECKS,
    DETECTOR_CHECKS,
    HEAVY_MODULES,
    MODEL_CHECKS,
    MODEL_EMBEDDING_CHECKS,
    REGISTRATION_BUDGET,
    REGISTRATION_FLOOR_S,
    CheckResult,
    CheckSkipped,
    Harness,
    check_light_registration,
    check_spec,
    import_cost_by_package,
    plugin_module,
)
from fmb.testing.conformance.datasets import DatasetHarness, first_difference
from fmb.testing.conformance.detectors import DetectorHarness, auroc, planted_outliers
from fmb.testing.conformance.models import ModelHarness, drop_modality, mask_spectra, toy_batch

__all__ = [
    "CHECKS",
    "DATASET_CHECKS",
    "DETECTOR_CHECKS",
    "HEAVY_MODULES",
    "MODEL_CHECKS",
    "MODEL_EMBEDDING_CHECKS",
    "REGISTRATION_BUDGET",
    "REGISTRATION_FLOOR_S",
    "CheckResult",
    "CheckSkipped",
    "ConformanceCase",
    "DatasetHarness",
    "DetectorHarness",
    "Harness",
    "ModelHarness",
    "auroc",
    "cases",
    "check_dataset",
    "check_detector",
    "check_light_registration",
    "check_model",
    "check_spec",
    "drop_modality",
    "first_difference",
    "harness",
    "import_cost_by_package",
    "mask_spectra",
    "parametrize",
    "planted_outliers",
    "plugin_module",
    "run_checks",
    "toy_batch",
]


# ------------------------------------------------------------------ entry points


def harness(kind: str, name: str, **options: Any) -> Any:
    """The harness for ``kind``; ``options`` go to the model loader, dataset loader or detector."""
    if kind == "model":
        return ModelHarness(name, options=options)
    if kind == "dataset":
        return DatasetHarness(name, options=options)
    if kind == "detector":
        return DetectorHarness(name, params=options)
    raise ValueError(f"unknown kind {kind!r} (expected model, dataset or detector)")


def run_checks(
    h: Any, kind: str, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None
) -> list[CheckResult]:
    """Run ``checks`` (default: all for ``kind``) on harness ``h``; the first failure raises AssertionError."""
    skip = skip or {}
    results = []
    for check in checks or CHECKS[kind]:
        if check not in CHECKS[kind]:
            raise ValueError(f"unknown {kind} check {check!r} (known: {', '.join(CHECKS[kind])})")
        if check in skip:
            results.append(CheckResult(kind, h.name, check, "skipped", skip[check]))
            continue
        try:
            h.run(check)
        except CheckSkipped as exc:
            results.append(CheckResult(kind, h.name, check, "skipped", str(exc)))
            continue
        except AssertionError as exc:
            raise AssertionError(f"[{kind} conformance: {check}] {exc}") from exc
        results.append(CheckResult(kind, h.name, check, "passed"))
    return results


def check_model(
    name: str,
    *,
    checks: Iterable[str] | None = None,
    skip: dict[str, str] | None = None,
    batch: pa.RecordBatch | None = None,
    weights: str = "auto",
    seed: int = 0,
    **options: Any,
) -> list[CheckResult]:
    """Check a registered model; ``batch`` replaces the toy batch (it must hold every modality)."""
    h = ModelHarness(name, options=options, weights=weights, seed=seed, batch=batch)
    return run_checks(h, "model", checks, skip)


def check_dataset(
    name: str, *, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None, **options: Any
) -> list[CheckResult]:
    """Check a registered dataset opened with ``options``."""
    return run_checks(DatasetHarness(name, options=options), "dataset", checks, skip)


def check_detector(
    name: str, *, checks: Iterable[str] | None = None, skip: dict[str, str] | None = None, **params: Any
) -> list[CheckResult]:
    """Check a registered detector made with ``params``."""
    return run_checks(DetectorHarness(name, params=params), "detector", checks, skip)


@dataclass
class ConformanceCase:
    """One check on one registered thing; calling it runs the check (pytest: skips become skips)."""

    kind: str
    name: str
    check: str
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> CheckResult:
        result = run_checks(harness(self.kind, self.name, **self.options), self.kind, [self.check])[0]
        if result.status == "skipped":
            import pytest

            pytest.skip(result.reason)
        return result

    def __repr__(self) -> str:
        return f"{self.kind}:{self.name}:{self.check}"


def cases(
    kind: str, name: str, *, skip: dict[str, str] | None = None, checks: Iterable[str] | None = None, **options: Any
) -> list[Any]:
    """``pytest.param`` objects, one per check; those in ``skip`` carry ``pytest.mark.skip(reason)``."""
    import pytest

    skip = skip or {}
    out = []
    for check in checks or CHECKS[kind]:
        marks = [pytest.mark.skip(reason=skip[check])] if check in skip else []
        out.append(pytest.param(ConformanceCase(kind, name, check, options), marks=marks, id=f"{name}-{check}"))
    return out


def parametrize(
    kind: str,
    name: str,
    *,
    skip: dict[str, str] | None = None,
    checks: Iterable[str] | None = None,
    argname: str = "fmb_check",
    **options: Any,
) -> Callable:
    """``@parametrize("model", "mymodel")`` on ``def test_x(fmb_check): fmb_check()``: one test per check."""
    import pytest

    return pytest.mark.parametrize(argname, cases(kind, name, skip=skip, checks=checks, **options))
