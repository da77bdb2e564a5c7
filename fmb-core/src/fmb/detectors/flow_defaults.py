"""Default parameters of the ``nf`` detector (pure data: registering imports nothing heavy)."""

from typing import Any

DEFAULTS: dict[str, Any] = {
    "flow": "maf", "n_components": 100, "folds": 5, "transforms": 3, "hidden": 128, "layers": 2,
    "epochs": 200, "patience": 15, "batch_size": 256, "lr": 1e-3, "weight_decay": 1e-5,
    "val_fraction": 0.1, "clip": 8.0, "device": "cpu", "threads": 1, "save_dir": None,
}
