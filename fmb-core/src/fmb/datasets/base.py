"""The dataset interface every dataset plugin implements.

A dataset plugin registers a :class:`fmb.specs.DatasetSpec` whose ``loader`` ("module:attr")
names a callable ``open_dataset(**options) -> Dataset``. Options come from the command line
(``--dataset synthetic:size=500,seed=3``) or the TOML file, as strings or TOML values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import pyarrow as pa

from fmb.data import canonical as C


class Dataset(ABC):
    """A finite, ordered collection of objects in the canonical schema (see fmb.data.canonical).

    Implementations stream: ``iter_batches`` never holds the whole data set in memory.
    """

    #: registered name, set by the implementation
    name: str = ""
    #: options that only say where the data are or how they are read (``path``, read sizes), whose
    #: effect ``fingerprint`` covers by content: left out of the embedding cache key, so a moved copy
    #: of the same bytes reuses it. Every other option enters the key, whatever ``fingerprint`` covers.
    NOT_FINGERPRINTED: tuple[str, ...] = ()
    #: the options core opened it with (set by ``fmb.protocol.run.open_dataset``; part of the cache key)
    requested_options: dict | None = None
    #: anomaly classes that are artefacts (instrument, reduction), not science; empty when the data set says none
    artefact_classes: tuple[str, ...] = ()
    #: what makes equal object ids the same objects (the retrained-weights overlap check,
    #: :func:`fmb.protocol.weights.training_overlap`): "" when ids name objects across the data set's files
    #: and options; a data set whose ids are row numbers (synthetic) gives the hash of what generated them
    object_pool: str = ""

    def __init__(self) -> None:
        self.repairs = C.Repairs()

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hash (hex) of the data's content and of the options that shape it.

        It must change when any byte of the data changes (hash file contents with
        ``fmb.fingerprint.file_hash``). Core adds the options to the embedding cache key itself.
        """

    @abstractmethod
    def __len__(self) -> int:
        """Number of objects."""

    @property
    @abstractmethod
    def schema(self) -> pa.Schema:
        """The canonical Arrow schema of the batches."""

    @abstractmethod
    def iter_batches(self, batch_size: int = 256, start: int = 0, stop: int | None = None) -> Iterator[pa.RecordBatch]:
        """Yield validated canonical batches for rows ``[start, stop)`` in a fixed order."""

    def options(self) -> dict:
        """The resolved options (recorded in results.json)."""
        return {}

    @property
    def modalities(self) -> list[str]:
        """Modalities present (``image``, ``spectrum``)."""
        return C.modalities_of(self.schema)

    @property
    def has_labels(self) -> bool:
        """True when ``is_anomaly`` is present."""
        return C.has_labels(self.schema)

    def read_columns(self, columns: list[str]) -> pa.Table:
        """Small columns (ids, labels) for every object, streamed batch by batch."""
        tables = []
        for b in self.iter_batches(4096):
            tables.append(pa.Table.from_batches([b]).select([c for c in columns if c in b.schema.names]))
        return pa.concat_tables(tables) if tables else pa.table({})
