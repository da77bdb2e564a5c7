"""Make fmb-astropt/tests/data/astropt_golden.npz by running upstream astropt 2.0.9 code.

Run once from the repository root, in an environment with ``astropt==2.0.9`` and torch:
``python external/golden/make_astropt_golden.py``. ``fmb-astropt/tests/test_golden.py`` holds FMB's
tokenisation against what this writes.

Inputs (seeded, made here): 8-bit RGB images ``H x W x 3`` as ``np.array(PIL.Image)`` gives them from the
``Smith42/galaxies`` JPEGs, 64 x 64 px, the first with a bright block in its top-left corner. Expected:
the training data path of v2.0 (``scripts/train.py`` at tag v2.0.9, ``process_galaxy_wrapper``): the
array ``.swapaxes(0, 2)``, then ``astropt.local_datasets.GalaxyImageDataset.process_galaxy`` (imported and
run, patch size 16 and 8) with the per-patch standardisation of train.py's ``normalise`` (std and mean
over each patch, ``+ 1e-8``, stored as float16) as its ``images`` transform, and ``spiral=True``.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[2] / "fmb-astropt" / "tests" / "data" / "astropt_golden.npz"


def standardise(x: np.ndarray) -> torch.Tensor:
    """The ``images`` transform of train.py (use_hf=True): per patch (dim 1), in float16."""
    t = torch.from_numpy(x).to(torch.float32)
    std, mean = torch.std_mean(t, dim=1, keepdim=True)
    return ((t - mean) / (std + 1e-8)).to(torch.float16)


def main() -> None:
    import types

    # torchvision 0.28 cannot be imported beside the CPU torch here (see external/astropt.md); local_datasets
    # imports only ``torchvision.io`` (for reading JPEG files), which process_galaxy does not use
    if "torchvision" not in sys.modules:
        sys.modules["torchvision"] = types.ModuleType("torchvision")
        sys.modules["torchvision.io"] = sys.modules["torchvision"].io = types.ModuleType("torchvision.io")
    from astropt.local_datasets import GalaxyImageDataset
    from astropt.model import ModalityConfig, ModalityRegistry

    assert version("astropt") == "2.0.9", version("astropt")
    rng = np.random.default_rng(7)
    hwc = rng.integers(0, 40, (2, 64, 64, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:64, :64] - 31.5
    hwc[1] += (120 * np.exp(-(xx**2 + (yy / 0.6) ** 2) / 60))[..., None].astype(np.uint8)
    hwc[0, 2:10, 4:12, :] = 250  # top-left corner block (rows 2-9, cols 4-11)
    out = {"rgb_hwc": hwc, "upstream": np.array(f"astropt=={version('astropt')} torch=={torch.__version__}")}
    for patch in (16, 8):
        reg = ModalityRegistry(
            [
                ModalityConfig(
                    name="images", input_size=patch * patch * 3, patch_size=patch, pos_input_size=1, embed_pos=True
                )
            ]
        )
        ds = GalaxyImageDataset(None, transform={"images": standardise}, spiral=True, modality_registry=reg)
        toks = [ds.process_galaxy(np.array(img).swapaxes(0, 2)).to(torch.float).numpy() for img in hwc]
        out[f"tokens_p{patch}"] = np.stack(toks)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
