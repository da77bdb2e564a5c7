"""Optional dependencies: which extra of fmb-core (or which plugin package) provides what, and the one-line
error naming the pip command when it is missing. Checks use :func:`importlib.util.find_spec`, which imports
nothing (``fmb --help`` and ``fmb detectors`` stay fast)."""

from __future__ import annotations

from importlib.util import find_spec

from fmb.errors import UsageError

#: extra of fmb-core -> the import names it provides (pyproject.toml [project.optional-dependencies])
EXTRAS: dict[str, tuple[str, ...]] = {
    "hf": ("huggingface_hub", "datasets"),
    "flows": ("torch", "zuko"),
    "umap": ("umap",),
}
#: model names of the plugin packages published with FMB -> the package that registers them
PLUGIN_PACKAGES = {"astroclip": "fmb-astroclip", "astropt": "fmb-astropt", "aion": "fmb-aion"}


def pip_command(extra: str) -> str:
    return f"pip install 'fmb-core[{extra}]'"


def missing(extra: str) -> list[str]:
    """The import names of ``extra`` that are not installed (empty: the extra is usable)."""
    return [m for m in EXTRAS[extra] if find_spec(m) is None]


def require(extra: str, what: str) -> None:
    """Raise a one-line UsageError (exit 2) naming ``what`` needs, what is missing and the pip command."""
    gone = missing(extra)
    if gone:
        raise UsageError(f"{what} needs the '{extra}' extra ({', '.join(gone)} not installed): {pip_command(extra)}")


def status_note(extra: str) -> str:
    """ " (needs [extra]: pip ...)" while the extra is missing, " (extra [extra])" once installed."""
    return f" (NOT INSTALLED: {pip_command(extra)})" if missing(extra) else f" (extra [{extra}])"


def plugin_hint(kind: str, name: str) -> str:
    """ "; install it: pip install fmb-astroclip" for a model of a known plugin package, else ""."""
    return (
        f"; it comes with a plugin package: pip install {PLUGIN_PACKAGES[name]}"
        if (kind == "model" and name in PLUGIN_PACKAGES)
        else ""
    )
