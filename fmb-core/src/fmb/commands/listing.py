"""``fmb plugins``, ``fmb models``, ``fmb datasets``, ``fmb detectors``: what is installed and registered."""

from __future__ import annotations

import json

import click


def _emit(rows: list[dict], as_json: bool, columns: list[str], title: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    from fmb.reporting import print_table

    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(
            *(
                ", ".join(map(str, v))
                if isinstance(v, (list, tuple))
                else ", ".join(f"{k}={x}" for k, x in v.items())
                if isinstance(v, dict)
                else str(v)
                for v in (r.get(c, "") for c in columns)
            )
        )
    print_table(table)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Installed plugins: distribution, version, hooks and what each registers."""
    from fmb.plugins import plugin_info, registry

    reg = registry()
    rows = []
    for info in plugin_info():
        registers = {
            kind: sorted(n for n, s in specs.items() if s.source.endswith(f"({info.name})"))
            for kind, specs in reg.specs.items()
        }
        rows.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
                "hooks": info.hooks,
                "registers": {k: v for k, v in registers.items() if v},
                "problems": reg.problems(info.name),
            }
        )
    _emit(rows, as_json, ["name", "distribution", "version", "hooks", "registers", "problems"], "FMB plugins")


def _list_kind(kind: str, as_json: bool, columns: list[str]) -> None:
    from fmb.plugins import registry

    reg = registry()
    rows = [{**spec.to_dict(), "conflict": []} for _, spec in sorted(reg.specs[kind].items())]
    for name, sources in sorted(reg.conflicts[kind].items()):  # unusable: shown, never silently dropped
        rows.append({"name": name, "kind": kind, "source": "CONFLICT: " + " / ".join(sources), "conflict": sources})
    rows.sort(key=lambda r: r["name"])
    _emit(rows, as_json, columns, f"FMB {kind}s")


@click.command("models")
@click.option("--json", "as_json", is_flag=True)
def models(as_json: bool) -> None:
    """Registered models with their modalities and embedding sizes."""
    _list_kind("model", as_json, ["name", "modalities", "outputs", "version", "license", "source"])


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True)
def datasets(as_json: bool) -> None:
    """Registered datasets: modalities and whether labels exist."""
    _list_kind("dataset", as_json, ["name", "modalities", "has_labels", "description", "source"])


@click.command("detectors")
@click.option("--json", "as_json", is_flag=True)
def detectors(as_json: bool) -> None:
    """Registered anomaly detectors and their default parameters."""
    _list_kind("detector", as_json, ["name", "params", "description", "source"])
