"""Model conformance: :class:`ModelHarness` loads a registered model once and runs the model checks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fmb.data import canonical as C
from fmb.testing.conformance.common import (
    CheckSkipped,
    Harness,
    _registry,
    _spec,
)


def _nan_equal(a: np.ndarray, b: np.ndarray, rtol: float = 0.0, atol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def toy_batch(size: int = 12, seed: int = 0, **options: Any) -> pa.RecordBatch:
    """One canonical batch of the ``toy`` data set (images and spectra, no missing data)."""
    from fmb.testing.toy import ToyDataset

    return (
        pa.Table.from_batches(list(ToyDataset(size=size, seed=seed, **options).iter_batches(size)))
        .combine_chunks()
        .to_batches()[0]
    )


def drop_modality(batch: pa.RecordBatch, modality: str) -> pa.RecordBatch:
    """``batch`` without the columns of ``modality`` (spectrum also drops ``wavelength``)."""
    cols = set(C.MODALITY_COLUMNS[modality]) | ({C.WAVELENGTH} if modality == "spectrum" else {C.RGB})
    keep = [i for i, f in enumerate(batch.schema) if f.name not in cols]
    return pa.RecordBatch.from_arrays(
        [batch.column(i) for i in keep], schema=pa.schema([batch.schema.field(i) for i in keep])
    )


def mask_spectra(batch: pa.RecordBatch, rows: Iterable[int]) -> pa.RecordBatch:
    """``batch`` with every spectrum pixel of ``rows`` masked (ivar 0): the modality is missing there."""
    mask = C.column_array(batch, C.MASK, bool).copy()
    ivar = C.column_array(batch, C.IVAR).copy()
    rows = list(rows)
    mask[rows] = True
    ivar[rows] = 0.0
    out = batch
    for col, values in ((C.MASK, mask), (C.IVAR, ivar)):
        idx = out.schema.get_field_index(col)
        arr = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
        out = out.set_column(idx, out.schema.field(idx), arr)
    return out


@dataclass
class ModelHarness(Harness):
    """Loads a registered model once and runs the model checks on it."""

    kind = "model"

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    weights: str = "auto"
    seed: int = 0
    batch: pa.RecordBatch | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    _model: Any = None

    @property
    def spec(self) -> Any:
        return _spec("model", self.name)

    def load(self, weights: str | None = None, seed: int | None = None) -> Any:
        _ = self.spec  # an unknown name is an AssertionError naming it
        return _registry().load_model(
            self.name,
            weights=weights or self.weights,
            device="cpu",
            options=dict(self.options),
            seed=self.seed if seed is None else seed,
        )

    @property
    def model(self) -> Any:
        if self._model is None:
            from fmb.models.base import Model, WeightsInfo

            m = self.load()
            assert isinstance(m, Model), f"model {self.name!r}: loader returned {type(m).__name__}, not a Model"
            assert isinstance(m.weights, WeightsInfo), f"model {self.name!r}: .weights is not a WeightsInfo"
            self._model = m
        return self._model

    def data(self) -> pa.RecordBatch:
        if self.batch is None:
            self.batch = toy_batch()
        return self.batch

    def embed(self, batch: pa.RecordBatch, model: Any = None) -> dict[str, np.ndarray]:
        """``model.embed(batch)`` (default: the harness's model), checked for one row per input row."""
        out = (model or self.model).embed(batch)
        assert isinstance(out, dict), f"model {self.name!r}: embed returned {type(out).__name__}, not a dict"
        for key, arr in out.items():
            rows = np.shape(arr)[0] if np.ndim(arr) else None
            assert rows == batch.num_rows, (
                f"model {self.name!r} output {key!r}: {rows} rows for a batch of {batch.num_rows}; embed must return "
                f"exactly one row per input row, in input order (NaN rows where a modality is missing), never drop, "
                f"add or reorder rows"
            )
        return out

    def _random(self, seed: int) -> Any:
        from fmb.errors import FMBError

        try:
            return self.load(weights="random", seed=seed)
        except FMBError as exc:
            raise CheckSkipped(f"model {self.name!r} does not load --weights random ({exc})") from None

    def check_seeded(self) -> None:
        batch, s = self.data(), self.seed
        a = self._random(s)
        if a.weights.kind != "random":
            raise CheckSkipped(
                f"model {self.name!r}: --weights random gives weights of kind {a.weights.kind!r} "
                f"(nothing randomly initialised to seed)"
            )
        assert a.weights.seed == s, (
            f"model {self.name!r}: loaded with --weights random --seed {s} but records weights.seed {a.weights.seed!r}"
        )
        ea, eb, ec = self.embed(batch, a), self.embed(batch, self._random(s)), self.embed(batch, self._random(s + 1))
        for key in ea:
            assert _nan_equal(ea[key], eb[key], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: two loads with --weights random --seed {s} give different "
                f"embeddings; the weight initialisation is not seeded (seed every generator from the loader's seed)"
            )
        assert any(not _nan_equal(ea[k], ec[k], self.rtol, self.atol) for k in ea if k in ec), (
            f"model {self.name!r}: --weights random with --seed {s} and --seed {s + 1} give identical embeddings; "
            f"the loader ignores its seed at weight initialisation"
        )

    def check_no_hidden_state(self) -> None:
        batch = self.data()
        n = batch.num_rows
        fresh = self.embed(batch, self.load())
        warmed = self.load()
        self.embed(batch.slice(n // 2), warmed)  # another batch first: its statistics differ from the full batch's
        after = self.embed(batch, warmed)
        for key in fresh:
            same = _nan_equal(after[key], fresh[key], self.rtol, self.atol)
            assert same, (
                f"model {self.name!r} output {key!r}: a batch embedded after another batch differs from the same "
                f"batch embedded by a freshly loaded model (max |diff| "
                f"{np.nanmax(np.abs(after[key] - fresh[key])):.3g}); the model keeps state fitted on the batches it "
                f"has seen (e.g. normalisation statistics from the first batch)"
            )

    def _modalities_in(self, batch: pa.RecordBatch) -> set[str]:
        return set(C.modalities_of(batch.schema))

    def expected_outputs(self, batch: pa.RecordBatch) -> set[str]:
        have = self._modalities_in(batch) & set(self.spec.modalities)
        return {o for o in self.spec.outputs if (o in have if o != "joint" else have == set(self.spec.modalities))}

    def check_outputs(self) -> None:
        batch, spec = self.data(), self.spec
        out = self.embed(batch)
        unknown = set(out) - set(spec.outputs)
        assert not unknown, f"model {self.name!r}: undeclared outputs {sorted(unknown)} (spec: {sorted(spec.outputs)})"
        missing = self.expected_outputs(batch) - set(out)
        assert not missing, f"model {self.name!r}: no {sorted(missing)} output for a batch with every modality"
        for key, arr in out.items():
            where = f"model {self.name!r} output {key!r}"
            assert isinstance(arr, np.ndarray), f"{where}: {type(arr).__name__}, not a numpy array"
            assert arr.dtype == np.float32, f"{where}: dtype {arr.dtype}, expected float32"
            assert arr.shape == (batch.num_rows, spec.outputs[key]), (
                f"{where}: shape {arr.shape}, expected ({batch.num_rows}, {spec.outputs[key]})"
            )
            bad = ~np.isfinite(arr).all(axis=1)
            assert not bad.any(), f"{where}: row {int(np.flatnonzero(bad)[0])} is not finite (no data is missing)"

    def check_deterministic(self) -> None:
        batch = self.data()
        a, b = self.embed(batch), self.embed(batch)
        for key in a:
            assert _nan_equal(a[key], b[key]), f"model {self.name!r} output {key!r}: same batch twice differs"

    def check_prepared(self) -> None:
        """``embed_prepared(prepare(batch))`` (the embed stage's path: the loader prepares, the model runs)
        equals ``embed(batch)`` exactly."""
        batch = self.data()
        direct = self.embed(batch)
        staged = self.model.embed_prepared(self.model.prepare(batch))
        assert set(staged) == set(direct), (
            f"model {self.name!r}: embed_prepared(prepare(batch)) gives outputs {sorted(staged)}, "
            f"embed(batch) {sorted(direct)}"
        )
        for key in direct:
            assert np.array_equal(np.asarray(staged[key]), direct[key], equal_nan=True), (
                f"model {self.name!r} output {key!r}: embed_prepared(prepare(batch)) differs from embed(batch); "
                "the embed stage runs the former (prepare in the loader thread, forward passes in the caller's)"
            )

    def check_batch_independent(self) -> None:
        batch = self.data()
        full = self.embed(batch)
        n = batch.num_rows
        order = np.random.default_rng(0).permutation(n)
        shuffled = self.embed(batch.take(pa.array(order)))
        for key in full:
            assert _nan_equal(shuffled[key], full[key][order], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: a row's embedding changes when its batch mates are reordered"
            )
        for i in sorted({0, n // 2, n - 1}):
            alone = self.embed(batch.slice(i, 1))
            for key in full:
                assert _nan_equal(alone[key][0], full[key][i], self.rtol, self.atol), (
                    f"model {self.name!r} output {key!r}: row {i} embedded alone differs from row {i} in a "
                    f"batch of {n} (max |diff| {np.nanmax(np.abs(alone[key][0] - full[key][i])):.3g})"
                )

    def check_missing_modality(self) -> None:
        batch, spec = self.data(), self.spec
        full = self.embed(batch)
        for gone in C.modalities_of(batch.schema):
            if set(spec.modalities) == {gone}:
                continue  # a one-modality model has nothing to embed without it
            part = drop_modality(batch, gone)
            out = self.embed(part)
            for key in (gone, "joint"):
                if key in out:
                    assert np.isnan(out[key]).all(), (
                        f"model {self.name!r}: a batch without {gone!r} columns gives a {key!r} output that is not "
                        f"all NaN; give no output (or NaN rows) for a missing modality, never zeros or made-up values"
                    )
            for key in self.expected_outputs(part):
                assert key in out, f"model {self.name!r}: a batch without {gone!r} gives no {key!r} output"
                assert _nan_equal(out[key], full[key], self.rtol, self.atol), (
                    f"model {self.name!r}: output {key!r} changes when the {gone!r} columns are absent"
                )

    def check_masked_spectrum(self) -> None:
        spec = self.spec
        if "spectrum" not in spec.modalities:
            raise CheckSkipped(f"model {self.name!r} does not read spectra")
        batch = self.data()
        n = batch.num_rows
        rows = [0, n // 2]
        full = self.embed(batch)
        out = self.embed(mask_spectra(batch, rows))
        keep = np.setdiff1d(np.arange(n), rows)
        for key in ("spectrum", "joint"):
            if key not in spec.outputs:
                continue
            assert key in out, f"model {self.name!r}: no {key!r} output when some spectra are entirely masked"
            for i in rows:
                assert np.isnan(out[key][i]).all(), (
                    f"model {self.name!r} output {key!r}: row {i} has an entirely masked spectrum but its embedding "
                    f"is not all NaN (a missing modality must give NaN rows, never zeros)"
                )
            assert _nan_equal(out[key][keep], full[key][keep], self.rtol, self.atol), (
                f"model {self.name!r} output {key!r}: unmasked rows change when other rows' spectra are masked"
            )
        if "image" in out:
            assert _nan_equal(out["image"], full["image"], self.rtol, self.atol), (
                f"model {self.name!r}: the image output changes when spectra are masked"
            )

    def _weights_source(self, batch: pa.RecordBatch) -> Any:
        """A model whose weights differ from the loader's default where possible (random, another seed).

        Saving *these* and loading them back tells a loader that reads ``--weights PATH`` from one
        that ignores the path and builds its default weights while recording ``kind: path``.
        """
        from fmb.errors import FMBError

        try:
            other = self.load(weights="random", seed=self.seed + 1009)
        except FMBError:
            return self.model
        mine, theirs = self.embed(batch), self.embed(batch, other)
        if other.can_save_weights and any(
            not _nan_equal(mine[k], theirs[k], self.rtol, self.atol) for k in mine if k in theirs
        ):
            return other
        return self.model

    def check_weights_roundtrip(self) -> None:
        model = self.model
        if not model.can_save_weights:
            raise CheckSkipped(f"model {self.name!r} has no save_weights(path): weights round trip not applicable")
        batch = self.data()
        source = self._weights_source(batch)
        with tempfile.TemporaryDirectory(prefix="fmb-weights-") as tmp:
            target = Path(tmp) / "weights"
            written = source.save_weights(target)
            path = Path(written) if written is not None else target
            assert path.exists(), f"model {self.name!r}: save_weights({target}) wrote nothing at {path}"
            again = self.load(weights=str(path))
            assert again.weights.kind == "path", (
                f"model {self.name!r}: loaded from --weights {path} but weights.kind is {again.weights.kind!r}"
            )
            a, b = self.embed(batch, source), self.embed(batch, again)
        default = self.embed(batch) if source is not model else None
        assert set(a) == set(b), f"model {self.name!r}: reloaded weights give outputs {sorted(b)}, not {sorted(a)}"
        for key in a:
            if _nan_equal(a[key], b[key], self.rtol, self.atol):
                continue
            if default is not None and _nan_equal(b[key], default[key], self.rtol, self.atol):
                raise AssertionError(
                    f"model {self.name!r} output {key!r}: loading --weights {path.name} gives the embeddings of the "
                    f"default weights, not of the saved ones; the loader ignores --weights PATH (yet records "
                    f"kind 'path')"
                )
            raise AssertionError(
                f"model {self.name!r} output {key!r}: embeddings differ after save_weights and --weights PATH"
            )
