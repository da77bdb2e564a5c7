"""Assemble the report page of one or more run folders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fmb import __version__
from fmb.io import atomic_path
from fmb.leaderboard import MORE_SCORES, SCORES
from fmb.report import figures as F
from fmb.report.collect import Ranking, Run, load_runs, systems
from fmb.report.embedmap import UnavailableError
from fmb.report.html import Raw, Section, esc, fmt, img, note, page, table
from fmb.report.progress import Steps
from fmb.retrained import weights_facts
from fmb.runs import expand_run_dirs

#: the report's metrics table: the leaderboard's figures (one owner: fmb.leaderboard), in its order
METRIC_COLUMNS = (*(key for key, _ in SCORES), *MORE_SCORES)
METRIC_NAMES = ("AUROC", "AP", "P@10", "P@50", "P@100", "P@1%", "R@100", "R@1%", "Art@100", "Art@1%")
#: columns where the lowest value is the best
LOWER_BETTER = {"artefact_fraction@100", "artefact_fraction@1%"}


def default_out(paths: list[Path]) -> Path:
    """RUN/report.html for one run; report.html in the runs' common folder for several."""
    if len(paths) == 1:
        return paths[0] / "report.html"
    return Path(os.path.commonpath([p.resolve() for p in paths])) / "report.html"


def _no_labels(run: Run) -> str:
    return f"{run.name}: not available: data set {run.result.get('dataset', {}).get('name', '?')!r} has no labels"


def metadata_section(runs: list[Run]) -> Section:
    parts = []
    for run in runs:
        r = run.result
        ds, model, det, env = r.get("dataset", {}), r.get("model", {}), r.get("detector", {}), r.get("environment", {})
        w = model.get("weights", {})
        facts = weights_facts(w)  # one reader of model.weights for every view (fmb.retrained)
        weights = facts["label"] + "".join(
            f", {k} {w[k]}" for k in ("location", "revision", "sha256", "seed") if w.get(k) not in (None, "")
        )
        emb = r.get("embedding", {})
        rows = [
            ["run folder", Raw(f"<code>{esc(run.path)}</code>")],
            [
                "model",
                f"{model.get('name')} {model.get('version', '')} ({model.get('source', '')}, "
                f"licence {model.get('license', '?')})",
            ],
            ["weights used", weights],
            *(
                [["trained on scored objects", facts["trained_on_scored_objects"]]]
                if facts["trained_on_scored_objects"] is not None
                else []
            ),
            ["detector", f"{det.get('name')} {det.get('params', {})}"],
            ["data set", f"{ds.get('name')} {ds.get('options', {})}"],
            ["data set fingerprint", Raw(f"<code>{esc(ds.get('fingerprint', '?'))}</code>")],
            ["objects", f"{ds.get('size')} (labels: {'yes' if ds.get('has_labels') else 'no'})"],
            ["repairs", ", ".join(f"{k}: {v}" for k, v in (ds.get("repairs") or {}).items()) or "none"],
            [
                "embedding cache",
                f"key {emb.get('cache_key')} ({'reused' if emb.get('reused') else 'built'}, "
                f"{emb.get('seconds', '?')} s)",
            ],
            ["seed / device", f"{r.get('config', {}).get('seed')} / {env.get('device')}"],
            [
                "versions",
                f"fmb {r.get('fmb_version')}; plugins "
                + ", ".join(f"{k} {v}" for k, v in (r.get("plugins") or {}).items()),
            ],
            [
                "environment",
                f"Python {env.get('python')} on {env.get('platform')}; "
                + ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items()),
            ],
        ]
        warn = (
            note(f"{model.get('name')} ran with RANDOM weights: these results say nothing about the trained model.")
            if w.get("kind") == "random"
            else ""
        )
        if not facts["held_out"]:
            warn += note(
                f"{model.get('name')}: not held-out numbers: its retrained weights were trained on "
                f"{facts['trained_on_scored_objects']} of the scored objects (score a held-out split)."
            )
        warn += "".join(
            note(f"{model.get('name')} on {ds.get('name')}: outside the model's training domain: {d}")
            for d in r.get("domain_warnings") or []
        )
        if model.get("input_adaptation"):
            rows.append(["input adaptation", Raw(f"<code>{esc(json.dumps(model['input_adaptation']))}</code>")])
        parts.append(f"<h3>{esc(run.title)}</h3>" + warn + table(["", ""], rows, cls="meta"))
    return Section("runs", "Runs", "".join(parts))


def metrics_section(runs: list[Run]) -> Section:
    header = ["system", "objects scored", "missing", *METRIC_NAMES, "detect [s]"]
    rows = []
    for label, run, rk in systems(runs):
        e = run.result.get("modalities", {}).get(rk.modality, {})
        m = e.get("metrics") or {}
        rows.append(
            [
                label,
                e.get("n_scored", len(rk.score)),
                e.get("n_missing", 0),
                *(m.get(c) for c in METRIC_COLUMNS),
                e.get("detect_seconds"),
            ]
        )
    best: dict[int, set[int]] = {}
    if len(rows) > 1:
        for j in range(3, 3 + len(METRIC_COLUMNS)):
            vals = [r[j] for r in rows if r[j] is not None]
            if vals:
                pick = min if METRIC_COLUMNS[j - 3] in LOWER_BETTER else max
                best[j] = {i for i, r in enumerate(rows) if r[j] == pick(vals)}
    body = table(header, rows, numeric=set(range(1, len(header))), best=best)
    body += (
        '<p class="muted">AUROC and average precision (AP) over all scored objects; precision (P@k) and '
        "recall (R@k) among the k top-ranked objects (1% = 1% of the objects); Art@k: fraction of artefacts "
        "(the data set's artefact classes) among them, lower is better; best value per column in bold.</p>"
    )
    outside = [r for r in runs if r.result.get("domain_warnings")]
    body += "".join(
        note(
            f"{r.name}: the data lie outside the model's training domain "
            f"({len(r.result['domain_warnings'])} way(s), listed under Runs): read its metrics with "
            "that caveat"
        )
        for r in outside
    )
    unlabelled = [r for r in runs if not r.has_labels]
    if unlabelled:
        body += "".join(note(_no_labels(r) + " (label metrics are blank)") for r in unlabelled)
    return Section("metrics", "Metrics", body)


def per_run_figure(
    runs: list[Run], anchor: str, title: str, draw, needs_labels: bool, caption: str = "", caption_unlabelled: str = ""
) -> Section:
    """One figure per run; the caption only when a figure was drawn (the unlabelled variant if no run has labels)."""
    parts, drawn = [], False
    for run in runs:
        if needs_labels and not run.has_labels:
            parts.append(note(_no_labels(run)))
            continue
        path = draw(run)
        drawn = drawn or bool(path)
        parts.append(
            img(path, f"{title}: {run.name}")
            if path
            else note(f"{run.name}: not available: no per-class metrics in results.json")
        )
    text = caption if any(r.has_labels for r in runs) or not caption_unlabelled else caption_unlabelled
    return Section(anchor, title, "".join(parts) + (f'<p class="muted">{esc(text)}</p>' if drawn and text else ""))


def embedding_section(runs: list[Run], method: str, seed: int, tables: dict | None = None) -> Section:
    """The 2-D map of each run's embeddings; each map is read from (or stored in) the map cache
    (:func:`fmb.report.embedmap.project_cached`). ``tables``: embedding tables already read for other runs of
    the page, by cache folder (runs of one model and data set share them)."""
    from fmb.report import embedmap as E

    tables = {} if tables is None else tables
    parts = []
    for run in runs:
        try:
            where = str(E.cache_path(run))
            if where not in tables:
                tables[where] = E.read_embeddings(run)
            tab = tables[where]
        except UnavailableError as exc:
            parts.append(note(f"{run.name}: embedding map unavailable: {exc}"))
            continue
        outs = E.outputs_of(run, tab)
        if not outs:
            parts.append(note(f"{run.name}: embedding map unavailable: the cache has none of the run's outputs"))
            continue
        n_all = tab.num_rows
        if n_all > F.MAX_POINTS:  # a seeded subsample: UMAP on every object of a survey takes too long
            keep = np.sort(np.random.default_rng(seed).choice(n_all, F.MAX_POINTS, replace=False))
            tab = tab.take(keep)
        m = E.resolve_method(method, tab.num_rows)
        from fmb.data.canonical import column_array

        ids = tab.column("object_id").to_numpy(zero_copy_only=False)
        key = (run.result.get("embedding") or {}).get("cache_key")
        maps = {o: E.project_cached(column_array(tab, o, np.float32), ids, m, seed, key, o)[0] for o in outs}
        colours = E.map_colours(run, tab)
        path = F.embedding_maps(
            maps, colours, m.upper(), f"{run.name}: embeddings in 2-D", run.path / "figures" / "embedding_map.png", seed
        )
        sub = f" (a random subsample of {n_all})" if n_all > tab.num_rows else ""
        bare = "" if run.has_labels else "; no labels: coloured by what the data set has"
        parts.append(
            img(path, f"embedding map of {run.name}")
            + f'<p class="muted">{esc(E.method_label(m, seed))}; {tab.num_rows} objects{sub}{bare}.</p>'
        )
    return Section("embeddings", "Embedding map", "".join(parts))


def rank_lookup(runs: list[Run], this: Run) -> list[tuple[str, dict[str, int]]]:
    """(label, object id as text -> rank) of every OTHER ranking an object's caption cites: this run's other
    modalities and the main ranking (:func:`main_ranking`) of every other run."""
    pick = [(rk.modality, rk) for rk in this.rankings] + [(r.name, main_ranking(r)) for r in runs if r is not this]
    return [(label, dict(zip(map(str, rk.object_id.tolist()), rk.rank.tolist()))) for label, rk in pick]


def _caption(c, modality: str, elsewhere: list[tuple[str, dict[str, int]]]) -> str:
    from fmb.data.canonical import NORMAL_CLASS, UNLABELLED_CLASS
    from fmb.report import sky

    if c.true_class is None:
        klass = "unknown (no labels)"
    elif c.true_class == UNLABELLED_CLASS:  # a null is_anomaly: not known to be normal nor anomalous
        klass = '<span class="cls-unl">unlabelled</span>'
    else:
        klass = f'<span class="{"cls-anom" if c.true_class != NORMAL_CLASS else ""}">{esc(c.true_class)}</span>'
    bits = [
        f"<b>#{c.rank}</b> &nbsp; object <code>{esc(c.object_id)}</code> &nbsp; score {c.score:.4g} &nbsp; "
        f"true class: {klass}"
    ]
    if c.redshift is not None:
        bits.append(f"z = {c.redshift:.4f}")
    if c.ra is not None and c.dec is not None:
        bits.append(
            f"RA {c.ra:.5f}°, Dec {c.dec:+.5f}° "
            f'(<a href="{esc(sky.legacy_viewer_url(c.ra, c.dec))}" rel="noopener">Legacy Surveys</a>, '
            f'<a href="{esc(sky.esasky_url(c.ra, c.dec))}" rel="noopener">ESASky</a>)'
        )
    ranks = [
        f"{esc(label)} #{look[str(c.object_id)]}"
        for label, look in elsewhere
        if label != modality and str(c.object_id) in look
    ]
    if ranks:
        bits.append("rank elsewhere: " + ", ".join(ranks))
    return "<br>".join(bits)


def gallery_section(runs: list[Run], k: int, all_runs: list[Run] | None = None, shared: dict | None = None) -> Section:
    """Top-k cards per ranking; captions cite each object's rank in the other rankings of ``all_runs``;
    ``shared``: thumbnails already drawn for other runs of the page (:func:`fmb.report.gallery.build_gallery`)."""
    from fmb.plots.object_card import STRETCH
    from fmb.report.gallery import build_gallery

    all_runs = all_runs or runs
    parts = []
    for run in runs:
        try:
            cards = build_gallery(run, k, run.path / "figures", shared)
        except UnavailableError as exc:
            parts.append(note(f"{run.name}: gallery unavailable: {exc}"))
            continue
        elsewhere = rank_lookup(all_runs, run)
        for modality, cs in cards.items():
            items = []
            for c in cs:
                pics = "".join(
                    img(p, f"{what} of object {c.object_id}", cls)
                    for p, what, cls in ((c.image, "cut-out", "cut"), (c.spectrum, "spectrum", "spec"))
                    if p
                )
                items.append(
                    f'<div class="card">{pics or "<em>no image or spectrum</em>"}<div class="cap">'
                    f"{_caption(c, modality, elsewhere)}</div></div>"
                )
            parts.append(
                f"<h3>{esc(run.name)}: top {len(cs)} by {esc(modality)} score</h3>"
                f'<div class="gallery">{"".join(items)}</div>'
            )
    body = (
        f'<p class="muted">Cut-outs: each band ({esc(STRETCH)} stretch) and the RGB composite, north up as '
        "stored, scale bar in arcsec from the pixel scale. Spectra: observed frame, inverse-variance weighted "
        "into 300 bins, 1σ band in grey, masked pixels shaded red, y-range from the 1st-99th percentile; "
        "[OII] 3727, Hβ 4861, [OIII] 5007, Hα 6563 (vacuum wavelengths of the SDSS line table) marked at the "
        "object's redshift where known.</p>"
    ) + "".join(parts)
    return Section("gallery", f"Top-{k} gallery", body)


def agreement_section(runs: list[Run], out_dir: Path, main_only: bool = False) -> Section | None:
    """Heatmaps of rank agreement between systems (every run x modality, or each run's main ranking)."""
    from fmb.compare import rankings as R

    sys = [(r.name, r, main_ranking(r)) for r in runs] if main_only else systems(runs)
    if len(sys) < 2:
        return None
    ids, S = R.align([rk.object_id for *_, rk in sys], [rk.score for *_, rk in sys])
    names = [label for label, *_ in sys]
    if len(ids) < 2:
        return Section(
            "agreement",
            "Agreement between systems",
            note(f"not available: only {len(ids)} object(s) are common to every system"),
        )
    mats = {
        "Spearman ρ": R.pairwise(S, R.spearman),
        "Jaccard, top 1%": R.pairwise(S, lambda a, b: R.jaccard_top(a, b, "1%")),
        "retention: top 1% → top 1%": R.pairwise(S, lambda a, b: R.retention(a, b, "1%", "1%")),
        "retention: top 1% → top 10%": R.pairwise(S, lambda a, b: R.retention(a, b, "1%", "10%")),
    }
    path = F.heatmaps(
        names,
        mats,
        out_dir / "figures" / "agreement.png",
        note=f"{len(ids)} common objects; top 1% = {R.resolve_k('1%', len(ids))}",
    )
    body = img(path, "agreement heatmaps") + (
        '<p class="muted">On the objects scored by every system. Spearman: rank correlation of the scores. '
        "Jaccard: overlap of the two top-1% sets (|A∩B| / |A∪B|). Retention (row → column): the fraction of the "
        "row system's top 1% that the column system also puts in its top 1% (or top 10%).</p>"
    )
    return Section("agreement", "Agreement between systems", body)


def nuisance_section(runs: list[Run], out_dir: Path, n_scatter: int = 3) -> Section | None:
    """Does a score merely track brightness or S/N? Spearman rho of each system's score with spectrum S/N
    and image magnitude (results.json ``nuisance_spearman``, :mod:`fmb.protocol.nuisance`) as a heatmap and a
    table, and score-vs-nuisance scatters of the ``n_scatter`` systems with the largest |rho|."""
    sys = systems(runs)
    rows, names, rho = [], [], []
    for label, run, rk in sys:
        ns = (run.result.get("modalities", {}).get(rk.modality) or {}).get("nuisance_spearman")
        if ns is None:
            continue
        vals = [ns.get(k) for k, *_ in F.NUISANCE_SHOWN]
        r = [np.nan if v is None else sign * v for v, (_, _, sign) in zip(vals, F.NUISANCE_SHOWN)]
        names.append(label)
        rho.append(r)
        rows.append((label, run, rk, r))
    if not rows:
        return None
    from fmb.leaderboard import system_label

    R = np.array(rho, dtype=np.float64)
    strength = np.nan_to_num(np.abs(R), nan=-1.0).max(axis=1)
    pick, seen = [], set()
    for i in np.argsort(-strength, kind="stable"):  # strongest first; one seed per system
        key = (system_label(rows[i][1].result.get("config") or {}), rows[i][2].modality)
        if strength[i] >= 0 and key not in seen and len(pick) < n_scatter:
            seen.add(key)
            pick.append(rows[i])
    scatters = [(label, rk) for label, _, rk, _ in pick if rk.nuisance]
    path = F.nuisance(names, R, scatters, out_dir / "figures" / "nuisance.png")
    body = img(path, "Spearman rho of each score with spectrum S/N and image magnitude")
    body += table(
        ["system", "ρ (score, spectrum S/N)", "ρ (score, image magnitude)"],
        [[label, *(float(v) if np.isfinite(v) else None for v in r)] for label, *_, r in rows],
        numeric={1, 2},
    )
    body += (
        '<p class="muted">Spearman rank correlation of each system\'s score with the median per-pixel S/N of the '
        "spectrum and with the magnitude of the image's first band (-2.5 log10 of its total flux; ρ with the "
        "magnitude is minus ρ with the flux). |ρ| near 1: the system mostly ranks objects by brightness or "
        "noise, not by what they are (red: bright or high S/N scores high; blue: faint or noisy scores high). "
        "–: the output has no spectrum or no image. The scatters show the "
        f"{len(scatters)} system(s) with the largest |ρ|: anomalies red, unlabelled objects hollow.</p>"
    )
    if len(scatters) < len(pick):
        body += note(
            "score-vs-nuisance scatters need per-object S/N and flux in scores.parquet (runs of "
            "fmb older than this report have only the correlations)"
        )
    return Section("nuisance", "Nuisance diagnostics", body)


def review_section(runs: list[Run]) -> Section | None:
    """The simulated expert's discovery curves (``fmb review --simulate``, RUN/review/), where a run has them."""
    parts = []
    for run in runs:
        sim = run.path / "review" / "simulation.json"
        if not (sim.exists() and sim.with_suffix(".png").exists()):
            continue
        r = json.loads(sim.read_text())
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "n/a"
        parts.append(
            f"<h3>{esc(run.name)}</h3>"
            + img(sim.with_suffix(".png"), "discovery curves")
            + f'<p class="muted">Interesting objects in the first {r["inspected"]} inspected of a '
            f"{r['queue_length']}-object queue ({len(r['systems'])} systems): {r['found_active']} "
            f"with active learning, {r['found_plain']} in the plain fused order ({esc(ratio)}). "
            "See docs/review.md.</p>"
        )
    return Section("review", "Simulated expert", "".join(parts)) if parts else None


def main_ranking(run: Run) -> Ranking:
    """The ranking that stands for a run in comparisons: ``joint`` where the run has it, else its first modality."""
    return next((rk for rk in run.rankings if rk.modality == "joint"), run.rankings[0])


def leaderboard_section(runs: list[Run], df=None) -> Section:
    """The leaderboard (:func:`fmb.leaderboard.leaderboard`: one row per system and output, seeds pooled,
    sorted by the declared main score) as the page's first table."""
    from fmb.leaderboard import HIGHER_IS_BETTER, MAIN_SCORE, _cell, leaderboard
    from fmb.retrained import NOT_HELD_OUT, not_held_out_note

    df = leaderboard([r.path for r in runs]) if df is None else df
    rows = [
        [
            r.rank,
            r.system + ("" if r.held_out else f" {NOT_HELD_OUT}"),
            r.modality,
            r.weights_origin,
            r.seeds,
            _cell(r.auroc, r.auroc_sd, r.auroc_ci_low, r.auroc_ci_high),
            _cell(r.ap, r.ap_sd, r.ap_ci_low, r.ap_ci_high),
        ]
        for r in df.itertuples(index=False)
    ]
    flagged = "".join(
        note(f"#{r.rank}: {not_held_out_note(int(r.trained_on_scored_objects))}")
        for r in df.itertuples(index=False)
        if not r.held_out
    )
    header = ["#", "system", "output", "weights", "seeds", "AUROC ± sd [95% CI]", "AP ± sd [95% CI]"]
    body = (
        flagged
        + table(header, rows, numeric={0})
        + (
            f'<p class="muted">Main score: {esc(MAIN_SCORE.upper())} '
            f"({'higher' if HIGHER_IS_BETTER else 'lower'} is better). Mean ± sample sd over seeds (several seeds "
            "only); [CI]: bootstrap interval over objects recorded in results.json (mean of the seeds' bounds). "
            "The same table is <code>fmb leaderboard</code>.</p>"
        )
    )
    return Section("leaderboard", "Leaderboard", body)


def seed_metrics_table(df) -> str:
    """Every figure of the metrics table as mean ± sd over the seeds of each system (leaderboard rows)."""
    import math

    from fmb.leaderboard import _cell

    def cell(row: dict, key: str) -> str:
        col = {"auroc": "auroc", "average_precision": "ap"}.get(key, key)
        return _cell(row[col], row[f"{col}_sd"], math.nan, math.nan)

    rows = [
        [r["system"], r["modality"], r["n_seeds"], *(cell(r, c) for c in METRIC_COLUMNS)] for r in df.to_dict("records")
    ]
    return table(["system", "output", "seeds", *METRIC_NAMES], rows, numeric={2}) + (
        '<p class="muted">Mean ± sample sd over seeds (ddof 1) of each metric; one seed: the value alone. '
        "Also in <code>leaderboard.csv</code> (column = the results.json key, and <code>KEY_sd</code>).</p>"
    )


def seed_class_table(runs: list[Run]) -> str:
    """Recall within the top 5% per anomaly class (results.json ``per_class``) as mean ± sd over the seeds
    of each system and output (systems as in :func:`fmb.leaderboard.system_label`); "" without classes."""
    import math

    from fmb.leaderboard import _cell, _mean, _sd, system_label

    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        label = system_label(run.result.get("config") or {})
        for mod, entry in (run.result.get("modalities") or {}).items():
            pc = (entry.get("metrics") or {}).get("per_class")
            if pc:
                groups.setdefault((label, mod), []).append(pc)
    classes = sorted({c for pcs in groups.values() for pc in pcs for c in pc})
    if not classes:
        return ""
    rows = []
    for (label, mod), pcs in groups.items():
        cells = []
        for c in classes:
            vals = [pc[c].get("recall@5%") for pc in pcs if c in pc]
            cells.append(_cell(_mean(vals), _sd(vals), math.nan, math.nan))
        rows.append([label, mod, len(pcs), *cells])
    return table(["system", "output", "seeds", *classes], rows, numeric={2}) + (
        '<p class="muted">Recall within the top 5% of the ranking per anomaly class: mean ± sample sd over seeds.</p>'
    )


def stability_section(df) -> Section | None:
    """Ranking stability between the seeds of each system with several (leaderboard's ``jaccard@k_*``
    columns, :func:`fmb.leaderboard.seed_stability`); None when no system has two seeds."""
    from fmb.leaderboard import STABILITY_K, stability_cells

    multi = df[df["n_seeds"] > 1]
    if not len(multi):
        return None
    rows = [[r["system"], r["modality"], r["seeds"], *stability_cells(r)] for r in multi.to_dict("records")]
    body = table(["system", "output", "seeds", *(f"top-{k} Jaccard: mean (min)" for k in STABILITY_K)], rows)
    body += (
        '<p class="muted">For each pair of seeds of one system, the Jaccard index |A ∩ B| / |A ∪ B| of their '
        "top-k object sets (on the objects both scored; 1% of those objects for top-1%); mean over the pairs and, "
        "in brackets, the worst pair. 1: every seed hands over the same candidates; near 0: the candidate list "
        "depends on the seed. Reis et al. 2019 (arXiv:1911.06823) show that small changes to an unsupervised "
        "method move its list of top anomalies a lot, hence this check. Also in <code>leaderboard.csv</code> "
        "(<code>jaccard@K_mean</code>, <code>jaccard@K_min</code>).</p>"
    )
    return Section("stability", "Ranking stability over seeds", body)


def compare_curves_section(runs: list[Run], out_dir: Path) -> Section:
    """One ROC and one precision-recall figure with a line per run (its main ranking, :func:`main_ranking`)."""
    entries = [(r.name, main_ranking(r)) for r in runs]
    labelled = [(n, rk) for n, rk in entries if rk.has_labels]
    if not labelled:
        return Section("curves", "ROC and precision-recall", note("not available: no run has labels"))
    path = F.roc_pr_compare(labelled, out_dir / "figures" / "roc_pr_compare.png")
    mods = sorted({rk.modality for _, rk in labelled})
    body = img(path, "ROC and precision-recall of every system") + (
        f'<p class="muted">One line per system, on its {esc(" / ".join(mods))} score (joint where the model has '
        "it); legend ordered by AUROC (ROC) and AP (PR), best first; dashed: a random ranking. The anomalies are "
        "the positives. Each system's own curves per modality are in its section below.</p>"
    )
    return Section("curves", "ROC and precision-recall", body)


def system_details(
    run: Run,
    embedding_map: str,
    seed: int,
    top_k: int,
    all_runs: list[Run],
    shared: dict | None = None,
    steps: Steps | None = None,
    tables: dict | None = None,
) -> str:
    """A collapsed <details> block with everything about one run (metadata, curves, scores, map, gallery)."""
    steps = steps or Steps(None, 1)
    one = [run]
    rk = main_ranking(run)
    m = run.result.get("modalities", {}).get(rk.modality, {}).get("metrics") or {}
    summary = f'<b>{esc(run.name)}</b> &nbsp; <span class="muted">{esc(run.title)}'
    if m.get("auroc") is not None:
        summary += f"; {esc(rk.modality)} AUROC {m['auroc']:.3f}, AP {m.get('average_precision', float('nan')):.3f}"
    summary += "</span>"
    figs = run.path / "figures"
    parts = [metadata_section(one), metrics_section(one)]
    with steps.step(f"figures of {run.name}"):
        parts += [
            per_run_figure(one, "curves", "ROC and precision-recall", lambda r: F.roc_pr(r, figs / "roc_pr.png"), True),
            per_run_figure(
                one, "scores", "Score distributions", lambda r: F.score_histograms(r, figs / "scores.png"), False
            ),
            per_run_figure(
                one, "recall", "Recall per class", lambda r: F.class_recall(r, figs / "class_recall.png"), True
            ),
        ]
    with steps.step(f"embedding map of {run.name}", long=True):
        parts.append(embedding_section(one, embedding_map, seed, tables))
    with steps.step(f"gallery of {run.name}", long=True):
        parts.append(gallery_section(one, top_k, all_runs, shared))
    inner = "".join(f"<h3>{esc(s.title)}</h3>{s.body}" for s in parts[1:])
    return (
        f'<details class="system" id="system-{esc(run.name)}"><summary>{summary}</summary>'
        f"{parts[0].body}{inner}</details>"
    )


def combined_sections(
    runs: list[Run], out_dir: Path, top_k: int, embedding_map: str, seed: int, steps: Steps | None = None
) -> list[Section]:
    """The page of several runs: leaderboard, one comparison figure, agreement, then one collapsed block per run."""
    from fmb.leaderboard import leaderboard

    steps = steps or Steps(None, 1)
    full = metrics_section(runs)
    with steps.step("leaderboard and stability over seeds"):
        df = leaderboard([r.path for r in runs])
    seeded = bool(len(df)) and int(df["n_seeds"].max()) > 1
    pooled = (
        f"<details><summary>mean ± sd over seeds, every system and output ({len(df)} rows)</summary>"
        f"{seed_metrics_table(df)}{seed_class_table(runs)}</details>"
        if seeded
        else ""
    )
    sections = [
        leaderboard_section(runs, df),
        Section(
            "metrics",
            "Metrics",
            pooled + f"<details><summary>every run and output, P@k and R@k "
            f"({sum(len(r.rankings) for r in runs)} rows)</summary>{full.body}</details>",
        ),
    ]
    stability = stability_section(df)
    if stability:
        sections.append(stability)
    with steps.step("comparison figures (ROC/PR, agreement, nuisance)"):
        sections.append(compare_curves_section(runs, out_dir))
        agreement = agreement_section(runs, out_dir, main_only=True)
        if agreement:
            sections.append(agreement)
        nuis = nuisance_section(runs, out_dir)
        if nuis:
            sections.append(nuis)
    shared: dict = {}  # thumbnails of objects shared by several runs are drawn once
    tables: dict = {}  # embedding tables shared by several runs are read once
    blocks = "".join(system_details(r, embedding_map, seed, top_k, runs, shared, steps, tables) for r in runs)
    sections.append(
        Section(
            "systems",
            f"Systems ({len(runs)})",
            '<p class="muted">Click a system to open its metadata, curves per modality, score '
            f"distributions, recall per class, embedding map and top-{top_k} gallery.</p>" + blocks,
        )
    )
    return sections


def build_report(
    paths: list[str | Path],
    out: str | Path | None = None,
    top_k: int = 12,
    embedding_map: str = "auto",
    seed: int = 0,
    reporter: Any | None = None,
) -> Path:
    """Write the HTML report of the run folders (figures also under RUN/figures/) and return its path.

    One run: every section in full. Several runs (or a matrix folder, expanded to its run folders): one
    combined page (leaderboard at the top, one ROC/PR figure comparing the systems, agreement, and a
    collapsed section per run), so that a 12-system page stays a few screens long.

    ``reporter`` (:class:`fmb.reporting.Reporter`): where the progress of each step goes (a rich bar in a
    terminal, plain lines elsewhere, :mod:`fmb.report.progress`); None: silent.
    """
    runs = load_runs(expand_run_dirs([Path(p) for p in paths]))
    out = Path(out) if out else default_out([r.path for r in runs])
    out.parent.mkdir(parents=True, exist_ok=True)
    with Steps(reporter, 2 + 3 * len(runs) if len(runs) > 1 else 4) as steps:
        if len(runs) > 1:
            sections = combined_sections(runs, out.parent, top_k, embedding_map, seed, steps)
        else:
            sections = single_sections(runs, top_k, embedding_map, seed, steps)
            with steps.step("agreement and nuisance figures"):
                agreement = agreement_section(runs, out.parent)
                if agreement:
                    sections.append(agreement)
                nuis = nuisance_section(runs, out.parent)
                if nuis:
                    sections.append(nuis)
    review = review_section(runs)
    if review:
        sections.append(review)
    title = "FMB report: " + (runs[0].title if len(runs) == 1 else f"{len(runs)} runs")
    subtitle = (
        f"fmb {__version__}; {sum(len(r.rankings) for r in runs)} system(s): "
        + ", ".join(label for label, *_ in systems(runs))
        if len(runs) == 1
        else (f"fmb {__version__}; {len(runs)} runs, {sum(len(r.rankings) for r in runs)} rankings (run x modality)")
    )
    if not any(r.has_labels for r in runs):
        sections[0].body = (
            note(
                "These runs have no labels: metrics, ROC/PR curves and recall per class are "
                "not available; the rest of the report is."
            )
            + sections[0].body
        )
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page(title, subtitle, sections), encoding="utf-8")
    return out


def single_sections(
    runs: list[Run], top_k: int, embedding_map: str, seed: int, steps: Steps | None = None
) -> list[Section]:
    steps = steps or Steps(None, 1)
    of = f" of {runs[0].name}" if len(runs) == 1 else ""  # which run, in a log of a matrix's reports
    with steps.step(f"figures{of}"):
        figures = _single_figures(runs)
    with steps.step(f"embedding map{of}", long=True):
        emb = embedding_section(runs, embedding_map, seed)
    with steps.step(f"gallery{of}", long=True):
        gallery = gallery_section(runs, top_k)
    return [metadata_section(runs), metrics_section(runs), *figures, emb, gallery]


def _single_figures(runs: list[Run]) -> list[Section]:
    return [
        per_run_figure(
            runs,
            "curves",
            "ROC and precision-recall",
            lambda r: F.roc_pr(r, r.path / "figures" / "roc_pr.png"),
            True,
            "The anomalies are the positives; dashed lines: a random ranking.",
        ),
        per_run_figure(
            runs,
            "scores",
            "Score distributions",
            lambda r: F.score_histograms(r, r.path / "figures" / "scores.png"),
            False,
            "Top: density of the scores of normal and anomalous objects. Bottom: the score of "
            "each object of each anomaly class (one dot per object).",
            "Histogram of the scores of all objects (no labels to split them by).",
        ),
        per_run_figure(
            runs,
            "recall",
            "Recall per class",
            lambda r: F.class_recall(r, r.path / "figures" / "class_recall.png"),
            True,
            "Fraction of each anomaly class found within the top 5% of the ranking.",
        ),
    ]


__all__ = ["build_report", "default_out", "fmt"]
