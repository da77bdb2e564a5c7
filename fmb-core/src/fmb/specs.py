"""Spec objects: the strict metadata a plugin registers for each model, dataset and detector.

Registering a spec imports nothing heavy: the implementation is named by a lazy ``loader``
string, ``"package.module:attr"``, imported only when the thing is used.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from fmb.contracts import ContractError, InputContract
from fmb.errors import FMBError

NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
LOADER_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
MODALITIES = ("image", "spectrum")
OUTPUTS = ("image", "spectrum", "joint")


class SpecError(ValueError):
    """A spec that does not validate."""


class LoaderError(SpecError, FMBError):
    """A spec whose ``loader`` does not import, names no attribute or names nothing callable.

    One line naming the kind, the name, the source plugin and the loader (the ``fmb`` command
    prints it and exits with status 2); the import error is chained as ``__cause__``.
    """


def _require_str(kind: str, name: str, attr: str, value: object, allow_empty: bool = False) -> None:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise SpecError(f"{kind} {name!r}: field {attr!r} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class _BaseSpec:
    name: str
    description: str
    loader: str
    version: str = "0.0.0"
    license: str = "unknown"
    citation: str = ""
    homepage: str = ""
    #: set by the plugin manager: the distribution (or plugin name) that registered it
    source: str = field(default="", compare=False)

    kind = "spec"

    def validate(self) -> None:
        """Raise :class:`SpecError` naming the spec and field when something is wrong."""
        _require_str(self.kind, str(self.name), "name", self.name)
        if not NAME_RE.match(self.name):
            raise SpecError(f"{self.kind} {self.name!r}: name must match {NAME_RE.pattern}")
        for attr in ("description", "version", "license"):
            _require_str(self.kind, self.name, attr, getattr(self, attr))
        _require_str(self.kind, self.name, "citation", self.citation, allow_empty=True)
        _require_str(self.kind, self.name, "loader", self.loader)
        if not LOADER_RE.match(self.loader):
            raise SpecError(f"{self.kind} {self.name!r}: loader {self.loader!r} is not 'module:attr'")

    def load(self) -> Any:
        """Import and return the callable named by ``loader``.

        Raises :class:`LoaderError` (one line naming this spec and its source) when the module
        does not import (including a missing dependency of that module), lacks the attribute,
        or the attribute is not callable.
        """
        module, _, attr = self.loader.partition(":")
        where = f"{self.kind} {self.name!r}" + (f" from {self.source}" if self.source else "")
        try:
            obj: Any = importlib.import_module(module)
        except Exception as exc:
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise LoaderError(f"{where}: loader {self.loader!r} does not import: {first}") from exc
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise LoaderError(f"{where}: loader {self.loader!r}: {module!r} has no attribute {attr!r}") from None
        if not callable(obj):
            raise LoaderError(f"{where}: loader {self.loader!r} names a {type(obj).__name__}, not a callable")
        return obj

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass(frozen=True)
class ModelSpec(_BaseSpec):
    """A model: which modalities it reads and which embeddings (outputs) it produces.

    ``outputs`` maps an output name (``image``, ``spectrum``, ``joint``) to its dimension.
    The loader is a callable
    ``load_model(spec, weights="auto", device="cpu", options=None, seed=0) -> fmb.models.base.Model``.
    ``weights`` lists the named weight sources it knows (e.g. ``hf:polymathic-ai/astroclip``).
    ``input_contract`` (:class:`fmb.contracts.InputContract`, optional) declares what the model's
    authors fed the network; core adapts data to it and warns outside its domain (:mod:`fmb.adapt`).
    ``default_options`` are the options a model runs with when the user passes none (core overlays the
    user's options on them, and the embedding cache keys on the result). ``preprocessing_version``:
    bump it whenever the conversion of canonical data into model input changes (crops, stretches,
    normalisation); it enters the embedding cache key. ``retrain`` (optional, ``"module:attr"``) names the
    plugin's :class:`fmb.commands.retrain.Retrainer`; core's ``fmb retrain MODEL`` imports it on use.
    ``shared_space``: True only when the model's ``image`` and ``spectrum`` embeddings live in one space,
    trained to agree for the same object (e.g. AstroCLIP's contrastive training); ``mismatch`` without an
    explicit alignment refuses other models.
    """

    modalities: tuple[str, ...] = ()
    outputs: dict[str, int] = field(default_factory=dict)
    weights: tuple[str, ...] = ()
    default_options: dict[str, Any] = field(default_factory=dict)
    input_contract: InputContract | None = None
    preprocessing_version: str = "1"
    retrain: str = ""
    shared_space: bool = False

    kind = "model"

    def validate(self) -> None:
        super().validate()
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            raise SpecError(
                f"model {self.name!r}: modalities {self.modalities!r} must be a non-empty subset of {MODALITIES}"
            )
        if not self.outputs:
            raise SpecError(f"model {self.name!r}: outputs must declare at least one embedding")
        for out, dim in self.outputs.items():
            if out not in OUTPUTS:
                raise SpecError(f"model {self.name!r}: unknown output {out!r} (expected one of {OUTPUTS})")
            if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
                raise SpecError(f"model {self.name!r}: output {out!r} dimension must be a positive int")
            if out in MODALITIES and out not in self.modalities:
                raise SpecError(f"model {self.name!r}: output {out!r} needs modality {out!r}")
        _require_str(self.kind, self.name, "preprocessing_version", self.preprocessing_version)
        _require_str(self.kind, self.name, "retrain", self.retrain, allow_empty=True)
        if self.retrain and not LOADER_RE.match(self.retrain):
            raise SpecError(f"model {self.name!r}: retrain {self.retrain!r} is not 'module:attr'")
        if not isinstance(self.shared_space, bool):
            raise SpecError(f"model {self.name!r}: shared_space must be True or False, got {self.shared_space!r}")
        if self.shared_space and not {"image", "spectrum"} <= set(self.outputs):
            raise SpecError(f"model {self.name!r}: shared_space needs both an 'image' and a 'spectrum' output")
        if "joint" in self.outputs and len(self.modalities) < 2:
            raise SpecError(f"model {self.name!r}: a 'joint' output needs two modalities")
        if self.input_contract is not None:
            if not isinstance(self.input_contract, InputContract):
                raise SpecError(f"model {self.name!r}: input_contract must be an fmb.contracts.InputContract")
            try:
                self.input_contract.validate(f"model {self.name!r}")
            except ContractError as exc:
                raise SpecError(str(exc)) from None
            for mod in MODALITIES:
                if getattr(self.input_contract, mod) is not None and mod not in self.modalities:
                    raise SpecError(
                        f"model {self.name!r}: input_contract declares {mod!r} but the model "
                        f"does not read that modality"
                    )


@dataclass(frozen=True)
class DatasetSpec(_BaseSpec):
    """A dataset. The loader is ``open_dataset(**options) -> fmb.datasets.base.Dataset``."""

    modalities: tuple[str, ...] = ()
    has_labels: bool = False

    kind = "dataset"

    def validate(self) -> None:
        super().validate()
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            raise SpecError(
                f"dataset {self.name!r}: modalities {self.modalities!r} must be a non-empty subset of {MODALITIES}"
            )


@dataclass(frozen=True)
class DetectorSpec(_BaseSpec):
    """A detector. The loader is ``make_detector(**params) -> fmb.detectors.Detector``.

    ``params`` documents accepted parameters and their defaults.
    """

    params: dict[str, Any] = field(default_factory=dict)

    kind = "detector"


SPEC_TYPES = {"model": ModelSpec, "dataset": DatasetSpec, "detector": DetectorSpec}
