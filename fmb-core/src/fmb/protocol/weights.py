"""Stage 1, resolve weights: parse ``--weights auto|random|none|PATH|hf:REPO[@REV]``.

Each model plugin turns the parsed request into loaded weights and a
:class:`fmb.models.base.WeightsInfo`; when ``auto`` finds nothing it falls back to random
initialisation with a loud warning, and ``weights.kind == "random"`` is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fmb.errors import UsageError


@dataclass(frozen=True)
class WeightsRequest:
    kind: str  # auto | random | none | path | hf
    location: str = ""
    revision: str = ""


def parse_weights(text: str) -> WeightsRequest:
    """Parse the ``--weights`` value; a path must exist."""
    text = (text or "auto").strip()
    if text in ("auto", "random", "none"):
        return WeightsRequest(text)
    if text.startswith("hf:"):
        repo, _, rev = text[3:].partition("@")
        if repo.count("/") != 1:
            raise UsageError(f"--weights {text!r}: expected hf:OWNER/REPO[@REVISION]")
        return WeightsRequest("hf", repo, rev)
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(f"--weights {text!r}: no such file or folder (use auto, random, a path or hf:REPO)")
    return WeightsRequest("path", str(path.resolve()))
