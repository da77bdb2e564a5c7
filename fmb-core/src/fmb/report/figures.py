"""The report's figures (matplotlib, Agg), saved as deterministic PNGs (no timestamps, no software tag)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fmb.data import canonical as C
from fmb.io import atomic_path
from fmb.report.collect import Ranking, Run

MAX_POINTS = 20000  # points drawn in a scatter map (a seeded subsample beyond this)


def plt():
    """pyplot on the Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    pyplot.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return pyplot


def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG (atomically, without metadata that changes between runs) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt().close(fig)
    return path


def class_colours(classes: list[str]) -> dict[str, Any]:
    """A fixed colour per anomaly class (normal is grey), stable for a sorted class list."""
    cmap = plt().get_cmap("tab10" if len(classes) <= 10 else "tab20")
    return {
        C.NORMAL_CLASS: "0.6",
        **{c: cmap(i % cmap.N) for i, c in enumerate(c for c in classes if c != C.NORMAL_CLASS)},
    }


def modality_colours(run: Run) -> dict[str, str]:
    """The same colour for a modality in every figure of a run (scores.parquet order)."""
    return {rk.modality: f"C{i}" for i, rk in enumerate(run.rankings)}


def _anomaly_classes(rankings: list[Ranking]) -> list[str]:
    found: set[str] = set()
    for rk in rankings:
        if rk.classes is not None:
            found |= set(rk.classes.tolist())
    return sorted(found - {C.NORMAL_CLASS, C.UNLABELLED_CLASS})


def roc_pr(run: Run, path: Path) -> Path:
    """ROC and precision-recall curves, one line per modality."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    p = plt()
    fig, (a1, a2) = p.subplots(1, 2, figsize=(10, 4.2))
    prevalence = None
    colour = modality_colours(run)
    for rk in (r for r in run.rankings if r.has_labels):
        y, s = rk.truth()  # labelled objects only, as in results.json
        if not 0 < y.sum() < len(y):
            continue
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        a1.plot(fpr, tpr, color=colour[rk.modality], lw=1.5, label=f"{rk.modality} (AUROC {roc_auc_score(y, s):.3f})")
        a2.step(
            rec,
            prec,
            where="post",
            color=colour[rk.modality],
            lw=1.5,
            label=f"{rk.modality} (AP {average_precision_score(y, s):.3f})",
        )
        prevalence = y.mean()
    a1.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="random")
    if prevalence is not None:
        a2.axhline(prevalence, ls="--", color="0.6", lw=1, label=f"random ({prevalence:.3f})")
    a1.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    for a in (a1, a2):
        a.legend(loc="lower right" if a is a1 else "upper right")
        a.grid(alpha=0.3)
    fig.suptitle(run.name)
    fig.tight_layout()
    return save(fig, path)


def roc_pr_compare(entries: list[tuple[str, Ranking]], path: Path) -> Path:
    """ROC and precision-recall of several systems in one figure: a line per (label, ranking), legends outside the
    axes ordered best first (AUROC for ROC, AP for PR); up to 20 distinct colours (tab20), then line styles."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    p = plt()
    curves = []
    for label, rk in entries:
        y, s = rk.truth()  # labelled objects only: an unlabelled object is neither a positive nor a negative
        if 0 < y.sum() < len(y):
            curves.append((label, y, s, roc_auc_score(y, s), average_precision_score(y, s)))
    width = 0.07 * max([len(c[0]) for c in curves] + [10]) + 1.6  # legend column, in inches
    fig, (a1, a2) = p.subplots(1, 2, figsize=(11 + 2 * width, 4.8), layout="constrained")
    cmap = p.get_cmap("tab20")
    styles = ("-", "--", ":", "-.")
    for i, (label, y, s, auc, ap) in enumerate(curves):
        kw = {"color": cmap(i % 20), "ls": styles[(i // 20) % 4], "lw": 1.3}
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        a1.plot(fpr, tpr, label=f"{auc:.3f}  {label}", **kw)
        a2.step(rec, prec, where="post", label=f"{ap:.3f}  {label}", **kw)
    a1.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    if curves:
        a2.axhline(curves[0][1].mean(), ls="--", color="0.6", lw=1)
    a1.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    for a, key, name in ((a1, 3, "AUROC"), (a2, 4, "AP")):
        h, lab = a.get_legend_handles_labels()
        order = sorted(range(len(curves)), key=lambda j: -curves[j][key])
        a.legend(
            [h[j] for j in order],
            [lab[j] for j in order],
            title=name,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            frameon=False,
            fontsize=7 if len(curves) > 12 else 8,
        )
        a.grid(alpha=0.3)
    return save(fig, path)


def score_histograms(run: Run, path: Path) -> Path:
    """Per modality: the score histogram (normal vs anomalous) and each anomaly class's scores as a strip."""
    p = plt()
    classes = _anomaly_classes(run.rankings)
    colours = class_colours(classes)
    n = len(run.rankings)
    labelled = run.has_labels
    rows = 2 if classes else 1
    fig, axes = p.subplots(
        rows,
        n,
        figsize=(4.2 * n, 3.0 + (0.28 * len(classes) + 0.6 if classes else 0)),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [3, 0.28 * len(classes) + 0.6] if classes else [1]},
    )
    rng = np.random.default_rng(0)
    for j, rk in enumerate(run.rankings):
        ax = axes[0, j]
        bins = np.histogram_bin_edges(rk.score, bins=40)
        if labelled and rk.has_labels:
            y, s = rk.truth()  # unlabelled objects are neither normal nor anomalous
            ax.hist(s[~y], bins=bins, density=True, color="0.75", label=f"normal ({(~y).sum()})")
            if y.any():
                ax.hist(
                    s[y], bins=bins, density=True, histtype="step", lw=1.6, color="C3", label=f"anomalous ({y.sum()})"
                )
            n_unl = int((~rk.labelled).sum()) if rk.labelled is not None else 0
            if n_unl:  # drawn apart, never pooled with the normal objects
                ax.hist(
                    rk.score[~rk.labelled],
                    bins=bins,
                    density=True,
                    histtype="step",
                    ls="--",
                    lw=1.2,
                    color="0.3",
                    label=f"unlabelled ({n_unl})",
                )
            ax.legend(loc="upper right")
        else:
            ax.hist(rk.score, bins=bins, color="0.6", label="all objects (no labels)")
        ax.set(title=rk.modality, ylabel="density" if labelled else "objects")
        if classes and rk.classes is not None:
            st = axes[1, j]
            cls = rk.classes
            for i, c in enumerate(classes):
                s = rk.score[cls == c]
                st.scatter(s, i + rng.uniform(-0.25, 0.25, len(s)), s=10, color=colours[c], lw=0)
            st.set_yticks(range(len(classes)), classes if j == 0 else [""] * len(classes))
            st.set_ylim(-0.6, len(classes) - 0.4)
            st.invert_yaxis()
            st.grid(axis="x", alpha=0.3)
        axes[-1, j].set_xlabel("anomaly score (higher = more anomalous)")
        axes[-1, j].xaxis.set_major_locator(p.MaxNLocator(5))
    fig.suptitle(f"{run.name}: score distributions")
    fig.tight_layout()
    return save(fig, path)


def class_recall(run: Run, path: Path) -> Path | None:
    """Recall within the top 5% per anomaly class (from results.json), one bar per modality."""
    per = run.result.get("modalities", {})
    colour = modality_colours(run)
    order = [rk.modality for rk in run.rankings] + sorted(set(per) - set(colour))
    mods = {
        m: per[m]["metrics"]["per_class"] for m in order if m in per and (per[m].get("metrics") or {}).get("per_class")
    }
    if not mods:
        return None
    classes = sorted({c for pc in mods.values() for c in pc})
    p = plt()
    fig, ax = p.subplots(figsize=(9, 1.4 + 0.16 * len(classes) * len(mods) + 0.12 * len(classes)))
    h = 0.8 / len(mods)
    for i, (m, pc) in enumerate(mods.items()):
        vals = [pc.get(c, {}).get("recall@5%", np.nan) for c in classes]
        ax.barh(
            np.arange(len(classes)) + (i - (len(mods) - 1) / 2) * h,
            vals,
            height=h,
            color=colour.get(m, f"C{len(colour) + i}"),
            label=m,
        )
    counts = {c: max(pc.get(c, {}).get("n", 0) for pc in mods.values()) for c in classes}
    ax.set_yticks(range(len(classes)), [f"{c} (n={counts[c]})" for c in classes])
    ax.invert_yaxis()
    ax.axvline(0.05, ls="--", color="0.5", lw=1, label="random (0.05)")
    ax.set(xlim=(0, 1), xlabel="recall within the top 5% of the ranking", title=f"{run.name}: recall per class")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def embedding_maps(
    maps: dict[str, np.ndarray], colours: dict[str, tuple[str, Any]], method: str, title: str, path: Path, seed: int = 0
) -> Path:
    """Rows: one 2-D map per embedding output; columns: colourings (anomaly class is categorical,
    anything else a colour scale). ``colours`` maps a column title to (kind, per-object values, or a dict
    output -> values)."""
    p = plt()
    rows, cols = len(maps), len(colours)
    fig, axes = p.subplots(rows, cols, figsize=(4.6 * cols + 1.2, 4.2 * rows), squeeze=False)
    rng = np.random.default_rng(seed)
    for i, (out, xy) in enumerate(maps.items()):
        ok = np.isfinite(xy).all(axis=1)
        idx = np.flatnonzero(ok)
        if len(idx) > MAX_POINTS:
            idx = np.sort(rng.choice(idx, MAX_POINTS, replace=False))
        for j, (name, (kind, vals)) in enumerate(colours.items()):
            ax = axes[i, j]
            if isinstance(vals, dict):  # one colouring per output (e.g. its own anomaly score)
                vals = vals.get(out, next(iter(vals.values())))
            v = vals[idx]
            if kind == "class":
                classes = sorted(set(v.tolist()) - {C.NORMAL_CLASS, C.UNLABELLED_CLASS})
                cc = class_colours(classes)
                norm = v == C.NORMAL_CLASS
                unl = v == C.UNLABELLED_CLASS  # neither normal nor anomalous: hollow grey rings
                if unl.any():
                    ax.scatter(*xy[idx[unl]].T, s=6, facecolor="none", edgecolor="0.45", lw=0.4, label="unlabelled")
                ax.scatter(*xy[idx[norm]].T, s=4, color=cc[C.NORMAL_CLASS], lw=0, alpha=0.5, label="normal")
                for c in classes:
                    sel = v == c
                    ax.scatter(*xy[idx[sel]].T, s=18, color=cc[c], lw=0.3, edgecolor="k", label=c)
                if i == 0:
                    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=1.5, frameon=False)
            else:
                v = v.astype(np.float64)
                fin = np.isfinite(v)
                sc = ax.scatter(
                    *xy[idx[fin]].T,
                    c=v[fin],
                    s=5,
                    lw=0,
                    cmap="viridis" if kind == "redshift" else "magma",
                    vmin=np.nanpercentile(v, 1) if fin.any() else None,
                    vmax=np.nanpercentile(v, 99) if fin.any() else None,
                )
                fig.colorbar(sc, ax=ax, label=name, fraction=0.046, pad=0.02)
            ax.set_title(f"{out}: {name}")
            ax.set_xlabel(f"{method} 1")
            ax.set_ylabel(f"{method} 2")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def heatmaps(names: list[str], mats: dict[str, np.ndarray], path: Path, note: str = "") -> Path:
    """Annotated [M, M] heatmaps side by side (row = source system, column = target)."""
    p = plt()
    m = len(names)
    n = len(mats)
    ncols = 2 if n > 2 else n
    nrows = -(-n // ncols)
    cell = max(0.45, min(0.9, 8.0 / m))
    label = 0.075 * max(len(s) for s in names)  # room for the tick labels, in inches
    size = cell * m
    fig, axes = p.subplots(
        nrows, ncols, figsize=(ncols * (size + 1.2) + label, nrows * (size + 0.6 + label) + 0.5), squeeze=False
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for k, (ax, (title, M)) in enumerate(zip(axes.ravel(), mats.items())):
        lo = -1 if "Spearman" in title else 0
        im = ax.imshow(M, vmin=lo, vmax=1, cmap="RdBu_r" if lo < 0 else "viridis")
        ax.set_xticks(range(m), names, rotation=45, ha="right")
        ax.set_yticks(range(m), names if k % ncols == 0 else [""] * m)
        ax.set_xlabel("target system")
        if k % ncols == 0:
            ax.set_ylabel("source system")
        ax.set_title(title)
        if m <= 14:
            for i in range(m):
                for j in range(m):
                    val = M[i, j]
                    dark = (val - lo) / (1 - lo) < 0.5 if lo == 0 else abs(val) > 0.6
                    ax.text(
                        j,
                        i,
                        "–" if not np.isfinite(val) else f"{val:.2f}",
                        ha="center",
                        va="center",
                        fontsize=10 if m <= 6 else 8,
                        color="white" if dark else "black",
                    )
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle("agreement between systems" + (f" ({note})" if note else ""))
    fig.tight_layout()
    return save(fig, path)


#: the nuisance variables as the report shows them: (results.json key, label, sign): the magnitude is
#: -2.5 log10(flux), a decreasing function of the flux, so its Spearman rho is minus the flux's
NUISANCE_SHOWN = (("spectrum_snr", "spectrum S/N", 1.0), ("image_flux", "image magnitude", -1.0))


def relative_magnitude(flux: np.ndarray) -> np.ndarray:
    """-2.5 log10(flux) (zero point unknown, so relative; NaN for flux <= 0 or NaN)."""
    f = np.asarray(flux, np.float64)
    out = np.full(f.shape, np.nan)
    ok = np.isfinite(f) & (f > 0)
    out[ok] = -2.5 * np.log10(f[ok])
    return out


def nuisance(names: list[str], rho: np.ndarray, scatters: list[tuple[str, Ranking]], path: Path) -> Path:
    """Left: an annotated [M, 2] heatmap of each system's Spearman rho with spectrum S/N and image magnitude
    (NaN: not available, shown as "–"). Right: for each system in ``scatters``, its score against S/N
    (log axis) and against the relative magnitude, anomalies in red, unlabelled objects as hollow rings."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    p = plt()
    m = len(names)
    ns = len(scatters)
    label_w = 0.075 * max(len(s) for s in names)
    fig = p.figure(figsize=(2.6 + label_w + 6.4 * (ns > 0), max(2.4, 0.32 * m + 1.4, 2.6 * ns)), layout="constrained")
    grid = fig.add_gridspec(max(ns, 1), 3 if ns else 1, width_ratios=[1.2 + label_w, 3, 3] if ns else [1])
    ax = fig.add_subplot(grid[:, 0])
    im = ax.imshow(rho, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
    ax.set_xticks(range(len(NUISANCE_SHOWN)), [lab for _, lab, _ in NUISANCE_SHOWN], rotation=30, ha="right")
    ax.set_yticks(range(m), names)
    ax.set_title("Spearman ρ of the score with")
    for i in range(m):
        for j in range(len(NUISANCE_SHOWN)):
            v = rho[i, j]
            ax.text(
                j,
                i,
                "–" if not np.isfinite(v) else f"{v:+.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if np.isfinite(v) and abs(v) > 0.6 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.08, pad=0.04)
    for r, (label, rk) in enumerate(scatters):
        anom = np.zeros(len(rk.score), bool)
        unl = np.zeros(len(rk.score), bool)
        if rk.has_labels:
            anom = rk.labelled & rk.labels[C.IS_ANOMALY].astype(bool)
            unl = ~rk.labelled
        xs = (
            ("spectrum_snr", "spectrum S/N (median per pixel)", rk.nuisance.get("spectrum_snr")),
            ("image_flux", "relative magnitude (-2.5 log10 flux)", rk.nuisance.get("image_flux")),
        )
        for c, (key, xlabel, x) in enumerate(xs):
            a = fig.add_subplot(grid[r, 1 + c])
            if x is None:
                a.set_axis_off()
                continue
            if key == "image_flux":
                x = relative_magnitude(x)
            fin = np.isfinite(x)
            if key == "spectrum_snr":
                fin &= x > 0
                a.set_xscale("log")
                a.xaxis.set_major_formatter(ScalarFormatter())  # 20, 30 rather than 2x10^1
                a.xaxis.set_minor_formatter(NullFormatter())
            norm = fin & ~anom & ~unl
            a.scatter(x[norm], rk.score[norm], s=3, color="0.6", lw=0, alpha=0.6, label="normal")
            if (fin & unl).any():
                a.scatter(
                    x[fin & unl],
                    rk.score[fin & unl],
                    s=6,
                    facecolor="none",
                    edgecolor="0.35",
                    lw=0.4,
                    label="unlabelled",
                )
            if (fin & anom).any():
                a.scatter(x[fin & anom], rk.score[fin & anom], s=7, color="C3", lw=0, label="anomalous")
            a.set(xlabel=xlabel, ylabel="score" if c == 0 else "")
            a.set_title(label, fontsize=8)
            if r == 0 and c == 1:
                a.legend(loc="upper right", fontsize=7, markerscale=2)
            a.grid(alpha=0.3)
    return save(fig, path)
