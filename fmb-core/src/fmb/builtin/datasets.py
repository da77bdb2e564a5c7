"""Built-in datasets: the synthetic default survey and loaders for real survey data."""

from __future__ import annotations

from fmb import __version__, hookimpl
from fmb.specs import DatasetSpec


@hookimpl
def register_datasets(register):
    register(
        DatasetSpec(
            name="synthetic",
            description="Seeded synthetic Euclid (VIS/Y/J/H) + DESI-like survey with 8 labelled anomaly classes "
            "(the default data set; generated on first use and cached under FMB_HOME)",
            loader="fmb.datasets.synthetic:open_dataset",
            version=__version__,
            license="MIT (data generated locally; see fmb/datasets/data/NOTICE.md)",
            citation="FMB synthetic survey; kcorrect templates (Blanton & Roweis 2007)",
            modalities=("image", "spectrum"),
            has_labels=True,
        )
    )
    register(
        DatasetSpec(
            name="euclid-desi",
            description="Euclid Q1 x DESI DR1 (msiudek/astroPT_euclid_Q1_desi_dr1_dataset) from a local "
            "save_to_disk folder, local Parquet files or the Hugging Face hub",
            loader="fmb.datasets.euclid_desi:open_dataset",
            version=__version__,
            license="see the data set card",
            citation="Euclid Collaboration (2025), Q1; DESI Collaboration (2025), DR1",
            modalities=("image", "spectrum"),
            has_labels=False,
        )
    )
    register(
        DatasetSpec(
            name="parquet",
            description="Your own Parquet or Arrow files, with a column mapping onto the canonical fields",
            loader="fmb.datasets.files:open_dataset",
            version=__version__,
            license="user data",
            modalities=("image", "spectrum"),
            has_labels=False,
        )
    )
