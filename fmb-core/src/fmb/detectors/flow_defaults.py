"""Parameters of the ``nf`` detector: declared types, ranges and defaults (pure data: registering
imports nothing heavy)."""

from typing import Any

from fmb.paramschema import Param, schema

SCHEMA = schema(
    Param("flow", ("str",), "maf", choices=("maf", "nsf"), doc="flow family (zuko MAF or NSF)"),
    Param("n_components", ("int",), 100, low=1, doc="PCA-whitened components kept (at most the rank of the rows)"),
    Param("folds", ("int",), 3, low=2, doc="out-of-fold splits (every object is scored by a flow that did not see it)"),
    Param("transforms", ("int",), 3, low=1, doc="flow transforms"),
    Param("hidden", ("int",), 64, low=1, doc="hidden units per layer"),
    Param("layers", ("int",), 2, low=1, doc="hidden layers per transform"),
    Param("max_steps", ("int",), 1000, low=1, doc="training budget per fold (Adam steps)"),
    Param("epochs", ("int",), 200, low=1, doc="at most this many passes over a fold's training rows"),
    Param("eval_every", ("int",), 50, low=1, doc="steps between validation checks"),
    Param("patience", ("int",), 4, low=1, doc="stop after this many validation checks without a lower median -log p"),
    Param("batch_size", ("int",), 256, low=1, doc="training batch size"),
    Param("lr", ("float",), 1e-3, low=0, low_open=True, doc="Adam learning rate"),
    Param("weight_decay", ("float",), 1e-5, low=0, doc="Adam weight decay"),
    Param(
        "val_fraction",
        ("float",),
        0.1,
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        doc="fraction of training rows used for early stopping and centring (at most 4,096 rows)",
    ),
    Param("clip", ("float",), 8.0, low=0, low_open=True, doc="clip standardised features at this many sigma"),
    Param("device", ("str",), "cpu", doc="torch device: cpu, cuda, cuda:N or auto"),
    Param("threads", ("int",), 0, low=0, doc="torch/BLAS CPU threads (0: --threads, FMB_THREADS, else the CPUs)"),
    Param("save_dir", ("str", "none"), None, doc="folder to save each fold's flow in"),
)

DEFAULTS: dict[str, Any] = {name: p.default for name, p in SCHEMA.items()}
