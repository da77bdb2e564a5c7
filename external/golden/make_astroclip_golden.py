"""Make fmb-astroclip/tests/data/astroclip_golden.npz by running UPSTREAM AstroCLIP preprocessing.

Runs the code of PolymathicAI/AstroCLIP at the pinned commit below (read with ``git show COMMIT:path``, so the
working tree of the checkout does not matter): ``ToRGB`` (astroclip/astrodino/data/augmentations.py) and
``AstroClipCollator`` (astroclip/data/datamodule.py), on a few made-up g, r, z stamps laid out as upstream's
export stores them (``scripts/export_data.py``: each natural ``[band, row, col]`` cutout saved as ``.T``).

    git clone https://github.com/PolymathicAI/AstroCLIP /tmp/AstroCLIP
    python external/golden/make_astroclip_golden.py /tmp/AstroCLIP   # or a bare mirror (--git-dir)

Needs numpy, torch and torchvision (CenterCrop, used by the collator). Modules the two files import but the
collator never calls (datasets, lightning, skimage) are replaced by empty stand-ins. In the FMB dev venv,
torchvision's compiled ops fail to register against the CPU torch build; CenterCrop is pure Python, so its
``_meta_registrations`` module is stubbed as well. Nothing from upstream is copied into FMB.

Fixture (npz): ``cutouts`` float16 [N, 3, 152, 152] (natural orientation, nanomaggies, bands g, r, z; float16
so it is small and exactly representable in float32), ``spectra`` float16 [N, 7781] (DESI grid),
``image_out`` float32 [N, 3, 144, 144] and ``spectrum_out`` [N, 7781] (float16, checked lossless): what
upstream's collator hands the networks. Regenerate and commit both files together.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np

COMMIT = "9d8506970773fbbf4f0d445d2b52def77bd60f56"
FILES = {
    "astroclip.astrodino.data.augmentations": "astroclip/astrodino/data/augmentations.py",
    "astroclip.data.datamodule": "astroclip/data/datamodule.py",
}
OUT = Path(__file__).resolve().parents[2] / "fmb-astroclip" / "tests" / "data" / "astroclip_golden.npz"


def _git_show(repo: str, path: str) -> str:
    flag = "--git-dir" if (Path(repo) / "HEAD").is_file() else "-C"
    return subprocess.run(
        ["git", flag, repo, "show", f"{COMMIT}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def load_upstream(repo: str) -> types.ModuleType:
    """Import upstream's datamodule (and its ToRGB) from the pinned commit; returns the datamodule."""
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    lightning = types.ModuleType("lightning")
    lightning.LightningDataModule = object
    for name, mod in {
        "datasets": types.ModuleType("datasets"),
        "lightning": lightning,
        "skimage": types.ModuleType("skimage"),
        "skimage.filters": types.ModuleType("skimage.filters"),
        "skimage.transform": types.ModuleType("skimage.transform"),
    }.items():
        sys.modules.setdefault(name, mod)
    for pkg in ("astroclip", "astroclip.astrodino", "astroclip.astrodino.data", "astroclip.data"):
        m = types.ModuleType(pkg)
        m.__path__ = []
        sys.modules[pkg] = m
    for name, path in FILES.items():
        mod = types.ModuleType(name)
        mod.__package__ = name.rpartition(".")[0]
        mod.__file__ = f"{COMMIT[:7]}:{path}"
        sys.modules[name] = mod
        exec(compile(_git_show(repo, path), mod.__file__, "exec"), mod.__dict__)
    return sys.modules["astroclip.data.datamodule"]


def make_inputs(n: int = 2, seed: int = 20240521) -> tuple[np.ndarray, np.ndarray]:
    """Galaxy-like g, r, z stamps (zero sky outside r = 26 px, so the npz compresses) with noise, negative
    pixels and an asymmetric block at rows 10-19, cols 100-139 (orientation check); and spectra."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:152, :152].astype(np.float64)
    cut = np.zeros((n, 3, 152, 152))
    for i in range(n):
        cy, cx = 75.5 + rng.uniform(-3, 3, 2)
        q, pa = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(pa) + (yy - cy) * np.sin(pa)
        v = (-(xx - cx) * np.sin(pa) + (yy - cy) * np.cos(pa)) / q
        r = np.hypot(u, v)
        inside = np.hypot(xx - cx, yy - cy) < 26
        for b, amp in enumerate(np.array([0.6, 1.0, 1.5]) * rng.uniform(0.5, 3.0)):
            cut[i, b] = np.where(inside, amp * np.exp(-r / 6.0) + rng.normal(0, 0.02, r.shape), 0.0)
        cut[i, :, 10:20, 100:140] = rng.uniform(0.2, 2.0, (3, 1, 1))
    wave = 3600 + 0.8 * np.arange(7781)
    spectra = np.stack([5 + 2 * np.sin(wave / (300 + 100 * i)) + rng.normal(0, 0.3, wave.shape) for i in range(n)])
    return cut.astype(np.float16), (np.round(spectra * 8) / 8).astype(np.float16)  # 1/8 steps: compresses


def main(repo: str) -> None:
    import torch

    dm = load_upstream(repo)
    cutouts, spectra = make_inputs()
    stored = [np.ascontiguousarray(c.astype(np.float32).T) for c in cutouts]  # export_data.py: .T
    samples = [
        {"image": torch.tensor(s), "spectrum": torch.tensor(sp.astype(np.float32).reshape(-1, 1))}
        for s, sp in zip(stored, spectra)
    ]
    out = dm.AstroClipCollator()(samples)  # defaults: center_crop=144, bands g, r, z, m=0.03, Q=20
    image_out = out["image"].numpy().astype(np.float32)
    spectrum_out = out["spectrum"].numpy()[..., 0].astype(np.float32)
    assert np.array_equal(spectrum_out.astype(np.float16).astype(np.float32), spectrum_out)  # stored losslessly
    assert image_out.shape == (len(cutouts), 3, 144, 144), image_out.shape
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        cutouts=cutouts,
        spectra=spectra,
        image_out=image_out,
        spectrum_out=spectrum_out.astype(np.float16),
        commit=np.array(COMMIT),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) from PolymathicAI/AstroCLIP@{COMMIT[:7]}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/AstroCLIP")
