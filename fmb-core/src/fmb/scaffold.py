"""The logic of ``fmb new-plugin NAME`` (the command: :mod:`fmb.commands.new_plugin`): write a skeleton
model-plugin package that passes the conformance kit.

The files come from ``fmb/templates/plugin/`` (``*.tmpl``, :class:`string.Template` with
``$name``, ``$dist``, ``$package``, ``$cls``, ``$fmb_version``; a ``__package__`` folder is
renamed to the import package).
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from fmb import __version__
from fmb.errors import UsageError
from fmb.specs import NAME_RE


def names(name: str) -> dict[str, str]:
    """The template variables for model ``name`` (e.g. ``mymodel`` -> ``fmb-mymodel``, ``fmb_mymodel``)."""
    if not NAME_RE.match(name):
        raise UsageError(f"plugin name {name!r} must match {NAME_RE.pattern} (lower case, e.g. 'mymodel')")
    parts = [p for p in re.split(r"[-_.]", name) if p]
    package = "fmb_" + "_".join(parts)
    if not package.isidentifier():
        raise UsageError(f"plugin name {name!r} does not give a valid Python package name ({package!r})")
    return {
        "name": name,
        "dist": "fmb-" + "-".join(parts),
        "package": package,
        "cls": "".join(p.capitalize() for p in parts) + "Model",
        "fmb_version": ".".join(__version__.split(".")[:2]),
    }


def _walk(node: Traversable, rel: Path) -> list[tuple[Path, str]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            if child.name != "__pycache__":
                out += _walk(child, rel / child.name)
        elif child.name.endswith(".tmpl"):
            out.append((rel / child.name.removesuffix(".tmpl"), child.read_text(encoding="utf-8")))
    return out


def new_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write the skeleton of ``fmb-NAME`` under ``directory``; returns the package folder."""
    values = names(name)
    root = Path(directory) / values["dist"]
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} already exists and is not empty")
    for rel, text in _walk(files("fmb") / "templates" / "plugin", Path()):
        target = root / Path(*[values["package"] if p == "__package__" else p for p in rel.parts])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(text).substitute(values), encoding="utf-8")
    return root
