"""FMB, the Foundation Models Benchmark: embed -> detect -> score -> compare -> report."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("fmb-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Decorator for plugin hook implementations: ``@fmb.hookimpl``.
hookimpl = pluggy.HookimplMarker("fmb")

__all__ = ["__version__", "hookimpl"]
