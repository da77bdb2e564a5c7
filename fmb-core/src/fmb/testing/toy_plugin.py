"""The plugin object registering the ``toy`` dataset; light (no numpy or pyarrow) like any plugin module."""

from __future__ import annotations

from fmb import hookimpl
from fmb.specs import DatasetSpec


class toy_dataset_plugin:  # noqa: N801 - used like a module-level plugin
    """A plugin object registering ``toy``: ``registered_plugin(toy_dataset_plugin(), "toy")``."""

    @hookimpl
    def register_datasets(self, register):
        register(
            DatasetSpec(
                name="toy",
                description="Tiny seeded canonical data set for tests",
                loader="fmb.testing.toy:open_toy_dataset",
                version="1",
                license="MIT",
                modalities=("image", "spectrum"),
                has_labels=True,
            )
        )
