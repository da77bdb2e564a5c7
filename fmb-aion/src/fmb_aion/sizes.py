"""Architectures for random initialisation: ``size=base`` (AION-1 base) and ``size=tiny`` (tests).

``base`` follows polymathic-ai/aion-base as far as the package documents it: a 12 + 12 layer,
768-wide 4M encoder-decoder with SwiGLU, qk-norm and no biases, the full image codec
(MagVit, 512 hidden, FSQ levels 7,5,5,5,5 = 4375 codes) and spectrum codec (ConvNeXt-1d to
768 channels, 10-bit lookup-free quantiser). The published weights carry their own
config.json, which wins whenever weights are loaded.

``tiny`` keeps every token shape (576 image tokens, 273 spectrum tokens) with dim 64, 2 + 2
layers and small codecs, so the whole pipeline runs in well under a second per batch.

SpectrumCodec's package defaults are inconsistent in 0.0.2 (``encoder_dims`` end in 768 but
``latent_channels`` is 512; ``embedding_dim`` 4 against the quantiser's 10): both sizes pass
matching values explicitly (:func:`spectrum_codec_config`).
"""

from __future__ import annotations

from typing import Any

from fmb.errors import UsageError

SIZES = ("base", "tiny")
TOKEN_KEYS = ("tok_image_hsc", "tok_image", "tok_spectrum_desi")
LFQ_DIM = 10  # the spectrum quantiser's code width (codebook 1024 = 2**10)

_AION_COMMON: dict[str, Any] = {
    "mlp_ratio": 4.0,
    "qkv_bias": False,
    "proj_bias": False,
    "mlp_bias": False,
    "norm_bias": False,
    "act_layer": "SiLU",
    "gated_mlp": True,
    "qk_norm": True,
}
_AION = {
    "base": {"dim": 768, "encoder_depth": 12, "decoder_depth": 12, "num_heads": 12},
    "tiny": {"dim": 64, "encoder_depth": 2, "decoder_depth": 2, "num_heads": 2},
}
_IMAGE_CODEC = {
    "base": {"quantizer_levels": [7, 5, 5, 5, 5], "hidden_dims": 512, "n_compressions": 2, "num_consecutive": 4},
    "tiny": {"quantizer_levels": [7, 5, 5, 5, 5], "hidden_dims": 16, "n_compressions": 2, "num_consecutive": 1},
}
_SPECTRUM_CODEC = {
    "base": {
        "encoder_depths": (3, 3, 9, 3),
        "encoder_dims": (96, 192, 384, 768),
        "decoder_depths": (3, 3, 9, 3),
        "decoder_dims": (384, 192, 96, 1),
    },
    "tiny": {
        "encoder_depths": (1, 1, 1, 1),
        "encoder_dims": (8, 16, 32, 64),
        "decoder_depths": (1, 1, 1, 1),
        "decoder_dims": (32, 16, 8, 1),
    },
}


def check_size(size: str) -> str:
    if size not in SIZES:
        raise UsageError(f"aion: unknown size {size!r} (expected {' or '.join(SIZES)})")
    return size


def aion_config(size: str) -> dict[str, Any]:
    """``AION(config)`` for a random model reading and predicting the image and spectrum tokens."""
    return {"domains_in": list(TOKEN_KEYS), "domains_out": list(TOKEN_KEYS), **_AION[check_size(size)], **_AION_COMMON}


def image_codec_config(size: str) -> dict[str, Any]:
    return dict(_IMAGE_CODEC[check_size(size)])


def spectrum_codec_config(size: str) -> dict[str, Any]:
    """SpectrumCodec kwargs whose dimensions agree (the package defaults do not)."""
    cfg: dict[str, Any] = dict(_SPECTRUM_CODEC[check_size(size)])
    cfg["latent_channels"] = cfg["encoder_dims"][-1]
    cfg["embedding_dim"] = LFQ_DIM
    cfg["dim"] = LFQ_DIM
    cfg["codebook_size"] = 2**LFQ_DIM
    return cfg
