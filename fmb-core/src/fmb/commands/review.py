"""``fmb review RUN_DIR...``: the review queue as a local web app, or ``--simulate`` the simulated expert."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("review")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--labels",
    "labels_file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Import prior labels (a labels .parquet or an exported .csv) at start.",
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for labels.parquet, card images and the simulation (default: FIRST_RUN_DIR/review).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (only this machine by default).")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--top", type=int, default=100, show_default=True, help="Candidates taken from each system.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the re-ranking regressor.")
@click.option("--simulate", is_flag=True, help="Run the simulated expert instead of the web app.")
@click.option("--budget", type=int, default=100, show_default=True, help="Objects the simulated expert inspects.")
def review_cmd(run_dirs, labels_file, out, host, port, top, seed, simulate, budget) -> None:
    """One review queue over every system of RUN_DIR...: label, re-rank by active learning, export."""
    from fmb.errors import UsageError
    from fmb.review.queue import build_queue

    queue = build_queue(list(run_dirs), top=top)
    out_dir = Path(out or Path(run_dirs[0]) / "review")
    if simulate:
        from fmb.review.simulate import simulate as run_simulation

        res = run_simulation(queue, budget, out_dir, seed)
        ratio = f"{res['ratio']:.2f}x" if res["ratio"] is not None else "n/a"
        click.echo(
            f"simulated expert, first {res['inspected']} of {res['queue_length']} queued objects "
            f"({res['interesting_in_queue']} interesting in the queue): interesting found with active "
            f"learning {res['found_active']}, without {res['found_plain']} (ratio {ratio})"
        )
        click.echo(f"wrote {out_dir / 'simulation.json'} and {out_dir / 'simulation.png'}")
        return
    if not 0 <= port <= 65535:
        raise UsageError(f"review: --port must be 0-65535, got {port}")
    import socket

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise UsageError(
            f"review: the web app needs the review extra ({exc.name} is missing): pip install 'fmb-core[review]'"
        ) from None

    from fmb.review.app import ReviewSession, make_app
    from fmb.review.labels import LabelStore, read_labels

    store = LabelStore(out_dir / "labels.parquet")
    if labels_file:
        prior = read_labels(labels_file)
        known = queue.index()
        unknown = [o for o in prior if o not in known]
        if unknown:
            raise UsageError(
                f"review: --labels {labels_file}: object_id {unknown[0]} is not in the review queue "
                f"({len(unknown)} such)"
            )
        click.echo(f"imported {store.merge(prior)} label(s) from {labels_file}")
    session = ReviewSession(queue, store, out_dir, seed)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"review: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them: the URL works once printed
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"warning: listening on {host}: anyone who can reach this address can read and label the queue", err=True
        )
    click.echo(
        f"review queue: {len(queue.candidates)} objects from {len(queue.systems)} systems; labels saved to {store.path}"
    )
    click.echo(f"fmb review at http://{shown}:{bound}/ (Ctrl-C stops)")
    config = uvicorn.Config(make_app(session), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
