"""``fmb probe RUN_DIR`` or ``fmb probe --model M --dataset S``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("probe")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--model", default=None, help="Model name[:key=value,...] (instead of RUN_DIR).")
@click.option("--dataset", default=None, help="Dataset name[:key=value,...] (with --model; default synthetic).")
@click.option("--modality", default=None, help="Probe only this embedding (image, spectrum or joint).")
@click.option(
    "--regressor",
    "regressors",
    multiple=True,
    type=click.Choice(["ridge", "hgb"]),
    help="Regressor(s) (default: ridge and hgb).",
)
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-baseline", is_flag=True, help="Skip the baseline-model rows.")
@click.option("--no-random", is_flag=True, help="Skip the random-feature rows.")
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for probe.parquet/.csv/.json (default: RUN_DIR, else fmb-probe).",
)
def probe_cmd(run_dir, model, dataset, modality, regressors, folds, seed, no_baseline, no_random, out) -> None:
    """Predict redshift, log_mstar and log_sfr from embeddings (k-fold R^2, RMSE, NMAD, outliers).

    RUN_DIR may be a matrix folder: each distinct embedding of its systems is probed once, into the
    first run folder that uses it (or ``--out``/<run folder name>)."""
    from fmb.errors import UsageError
    from fmb.params import parse_spec
    from fmb.probes.embeddings import embed_table, run_embeddings
    from fmb.runs import expand_run_dirs, read_results

    if (run_dir is None) == (model is None):
        raise UsageError("probe: give either RUN_DIR or --model (with --dataset)")
    if folds < 2:
        raise UsageError(f"probe: --folds must be at least 2, got {folds}")
    if not run_dir:
        mname, mopts = parse_spec(model, "model")
        ds_name, ds_opts = parse_spec(dataset or "synthetic", "dataset")
        table = embed_table(mname, ds_name, mopts, ds_opts, seed=seed)
        _probe(
            mname,
            ds_name,
            ds_opts,
            table,
            regressors,
            folds,
            seed,
            modality,
            no_baseline,
            no_random,
            Path(out or "fmb-probe"),
        )
        return
    dirs = expand_run_dirs(run_dir)
    seen: set[str] = set()
    for d in dirs:
        key = (read_results(d).get("embedding") or {}).get("cache_key") or str(d)
        if key in seen:  # another detector on the same embeddings
            continue
        seen.add(key)
        res, table = run_embeddings(str(d))
        c = res["config"]
        dest = Path(out) / d.name if out and len(dirs) > 1 else Path(out or d)
        _probe(
            res["model"]["name"],
            c["dataset"],
            c.get("dataset_options") or {},
            table,
            regressors,
            folds,
            seed,
            modality,
            no_baseline,
            no_random,
            dest,
        )


def _probe(
    mname: str,
    ds_name: str,
    ds_opts: dict,
    table,
    regressors,
    folds: int,
    seed: int,
    modality,
    no_baseline: bool,
    no_random: bool,
    out_dir: Path,
) -> None:
    """Probe one embedding table and write probe.parquet/.csv/.json in ``out_dir``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from rich.table import Table

    from fmb.io import write_json, write_parquet
    from fmb.probes.embeddings import embed_table
    from fmb.probes.regress import REGRESSORS, run_probes
    from fmb.reporting import Reporter, print_table

    base = None
    if not no_baseline and mname != "baseline":
        base = embed_table("baseline", ds_name, {}, ds_opts, seed=seed)
    rows = run_probes(
        mname, table, tuple(regressors) or REGRESSORS, folds, seed, modality, base, not no_random, reporter=Reporter()
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    t = pa.Table.from_pylist(rows)
    write_parquet(t, out_dir / "probe.parquet")
    pacsv.write_csv(t, out_dir / "probe.csv")
    write_json(
        {
            "model": mname,
            "dataset": ds_name,
            "dataset_options": ds_opts,
            "folds": folds,
            "seed": seed,
            "nmad": "1.4826 * median(|dz - median(dz)| / (1 + z_true)), dz = z_pred - z_true",
            "outlier": "|dz| / (1 + z_true) > 0.15",
            "rows": rows,
        },
        out_dir / "probe.json",
    )
    table_ = Table(title=f"probes: {mname} on {ds_name} ({folds}-fold, seed {seed})", header_style="bold")
    for col in ("features", "target", "regressor", "n", "r2", "rmse", "nmad", "outlier"):
        table_.add_column(col)
    for r in rows:
        f = [r["r2"], r["rmse"], r["nmad"], r["outlier_fraction"]]
        table_.add_row(
            f"{r['model']}/{r['output']}",
            r["target"],
            r["regressor"],
            str(r["n"]),
            *("-" if v is None else f"{v:.3f}" for v in f),
        )
    print_table(table_)
    click.echo(f"wrote {out_dir / 'probe.parquet'}")
