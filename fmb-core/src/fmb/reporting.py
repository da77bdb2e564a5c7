"""Terminal output: progress bars, notices and the end-of-run summary table (rich, on stderr)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class Reporter:
    """Where the protocol reports to. ``quiet`` hides progress bars and notices."""

    def __init__(self, console: Console | None = None, quiet: bool = False, debug: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        #: re-raise failures that are otherwise a warning (``fmb --debug``)
        self.debug = debug

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{message}[/dim]", highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        # soft_wrap: one line per message in logs (rich would break it at 80 columns outside a terminal)
        self.console.print(f"[bold yellow]warning:[/bold yellow] {message}", highlight=False, soft_wrap=True)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        if self.quiet:
            yield lambda n: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


#: width of tables printed outside a terminal: wide enough never to wrap or cut a cell
PLAIN_WIDTH = 100_000


def print_table(table: Table, console: Console | None = None) -> None:
    """Print a table: in a terminal as rich draws it; elsewhere (a pipe, a Slurm or CI log) as a Markdown
    table that is never wrapped at 80 columns nor cut with an ellipsis (every column sized to its
    content, no colours). ``console`` defaults to standard output."""
    from rich import box

    console = console or Console()
    if console.is_terminal:
        console.print(table)
        return
    table.box = box.MARKDOWN
    table.expand = False
    table.title_justify = table.caption_justify = "left"
    for col in table.columns:
        col.ratio, col.width, col.max_width = None, None, None
        col.no_wrap, col.overflow = True, "ignore"
    plain = Console(width=PLAIN_WIDTH, color_system=None, force_terminal=False, highlight=False)
    with plain.capture() as cap:
        plain.print(table)
    lines = [line.rstrip() for line in cap.get().splitlines()]
    console.file.write("\n".join(line for line in lines if line) + "\n")
    console.file.flush()


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _domain(res: dict) -> str:
    """The summary's domain cell: how many ways the data lie outside the model's training domain."""
    if "domain_warnings" not in res:
        return "-"
    n = len(res["domain_warnings"])
    return f"OUTSIDE ({n})" if n else "ok"


def _this_run_seconds(res: dict) -> float:
    """This process's embedding (or cache-reading) seconds: ``wall_seconds`` (schema 2), else ``seconds``."""
    emb = res["embedding"]
    return emb.get("wall_seconds", emb["seconds"])


def summary_table(results: list[tuple[str, dict]]) -> Table:
    """One row per system (its full specs, :func:`fmb.leaderboard.system_label`, and seed) and modality:
    AUROC, AP, P@100, recall@1%, objects left out of the metrics as
    unlabelled, weights, domain, time; an output that could not be scored gets a row with its cause.

    ``domain`` is ``OUTSIDE (n)`` when the data set lies outside the model's training domain in ``n`` ways
    (listed under the table; see :func:`fmb.adapt.domain_warnings`), ``ok`` inside it, ``-`` with no contract.
    """
    from fmb.leaderboard import system_label

    caption = ["results in " + ", ".join(dict.fromkeys(str(Path(f)) for f, _ in results))]
    t = Table(title="FMB summary", header_style="bold")
    t.add_column("model/detector/data/seed", ratio=1, overflow="fold")
    for col in ("modality", "AUROC", "AP", "P@100", "R@1%", "unlabelled", "weights", "domain", "time s"):
        t.add_column(col, justify="left" if col in ("modality", "weights", "domain") else "right", no_wrap=True)
    for _, res in results:
        cfg = res["config"]
        system = f"{system_label(cfg)}/seed={cfg['seed']}"  # full specs: knn and knn:n_neighbors=10 differ
        for mod, entry in res["modalities"].items():
            m = entry.get("metrics") or {}
            t.add_row(
                system,
                mod,
                _fmt(m.get("auroc")),
                _fmt(m.get("average_precision")),
                _fmt(m.get("precision@100")),
                _fmt(m.get("recall@1%")),
                _fmt(m.get("n_unlabelled")),
                _weights_label(res["model"]["weights"]),
                _domain(res),
                f"{_this_run_seconds(res) + entry['detect_seconds']:.1f}",
            )
        for mod, cause in (res.get("failed_outputs") or {}).items():
            t.add_row(
                f"{system}\n[red]not scored: {cause}[/red]",
                mod,
                "failed",
                "-",
                "-",
                "-",
                "-",
                _weights_label(res["model"]["weights"]),
                _domain(res),
                "-",
            )
        caption += [f"{system}: outside the training domain: {w}" for w in res.get("domain_warnings") or []]
        from fmb.retrained import not_held_out_note, weights_facts

        facts = weights_facts(res["model"]["weights"])
        if not facts["held_out"]:
            caption.append(f"{system}: {not_held_out_note(facts['trained_on_scored_objects'])}")
    t.caption = "\n".join(caption)
    return t


def _weights_label(weights: dict) -> str:
    """:func:`fmb.retrained.weights_facts`' label (``retrained from random (seed 0)``: weights written by
    ``fmb retrain`` are never shown as the plugin's own), marked :data:`fmb.retrained.NOT_HELD_OUT` when the
    weights were trained on scored objects (not held-out numbers; the caption says how many)."""
    from fmb.retrained import NOT_HELD_OUT, weights_facts

    f = weights_facts(weights)
    return f["label"] + ("" if f["held_out"] else f" {NOT_HELD_OUT}")


def per_class_table(result: dict) -> Table | None:
    """Recall within the top 5% per anomaly class and modality (when labels exist)."""
    mods = {
        k: v["metrics"]["per_class"]
        for k, v in result["modalities"].items()
        if v.get("metrics") and v["metrics"].get("per_class")
    }
    if not mods:
        return None
    classes = sorted({c for pc in mods.values() for c in pc})
    t = Table(title="recall@5% (AUROC vs normal) per anomaly class", header_style="bold")
    t.add_column("class")
    t.add_column("n", justify="right")
    for mod in mods:
        t.add_column(mod, justify="right")
    for c in classes:
        n = next(pc[c]["n"] for pc in mods.values() if c in pc)
        cells = [
            f"{pc[c]['recall@5%']:.2f} ({_fmt(pc[c]['auroc_vs_normal'])})" if c in pc else "-" for pc in mods.values()
        ]
        t.add_row(c, str(n), *cells)
    return t
