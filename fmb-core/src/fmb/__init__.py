"""FMB, the Foundation Models Benchmark: embed -> detect -> score -> compare -> report."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("fmb-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Decorator for plugin hook implementations: ``@fmb.hookimpl``.
hookimpl = pluggy.HookimplMarker("fmb")

#: the Python API (:mod:`fmb.api`), imported on first use so that ``import fmb`` and ``fmb --help`` stay light
_API = ("run", "embed", "get_model", "load_run", "list_models", "RunResult")

__all__ = ["__version__", "hookimpl", *_API]


def __getattr__(name: str):  # PEP 562: lazy attributes
    if name in _API:
        from fmb import api

        return getattr(api, name)
    raise AttributeError(f"module 'fmb' has no attribute {name!r}")
