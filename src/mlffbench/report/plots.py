"""Per-run plots: parity (pred vs ref), learning curves (log-log with the fitted power law, TM23 Fig 6), and
cost vs accuracy. Each returns a matplotlib Figure; none of them computes a score."""

from __future__ import annotations

import math

import numpy as np

from mlffbench.report.figures import fmt_value, model_colours, plt

PARITY_QUANTITIES = (("energy", "energy per atom", "meV/atom"), ("forces", "force components", "meV/Å"),
                     ("stress", "stress components", "GPa"))


def _grid(n: int, ncols: int = 4, size: float = 2.6):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.6, size * nrows + 0.6), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def parity_figure(parities: list, quantity: str, panel: str = "dataset"):
    """One panel per data set (``panel="dataset"``) or per group of one data set (``panel="group"``), every model
    overlaid: predicted against reference for ``quantity`` (energy, forces, stress), with the y = x line and each
    model's MAE (of its full test set where the points are a thinned sample) in its colour in the panel; one
    legend for the figure. Fixed margins, three ticks an axis and no per-panel legend or axis labels keep the
    drawing cheap; save it with ``tight=False``."""
    from matplotlib.ticker import MaxNLocator

    (_, title, unit), = [q for q in PARITY_QUANTITIES if q[0] == quantity]
    panels = list(dict.fromkeys(getattr(p, panel) for p in parities)) or [""]
    colours = model_colours(p.model for p in parities)
    ncols = min(len(panels), 6)
    nrows = math.ceil(len(panels) / ncols)
    size = 2.1
    top_in, bottom_in, left_in = 1.05, 0.45, 0.55
    width, height = max(size * ncols + left_in, 5.0), size * nrows + top_in + bottom_in
    fig, grid = plt.subplots(nrows, ncols, squeeze=False, figsize=(width, height))
    fig.subplots_adjust(left=left_in / width, right=0.99 if ncols > 1 else 0.97, bottom=bottom_in / height,
                        top=1 - top_in / height, wspace=0.32, hspace=0.38)
    axes = list(grid.flat)
    for ax in axes[len(panels):]:
        ax.axis("off")
    for ax, name in zip(axes, panels):
        lo, hi, maes = np.inf, -np.inf, []
        for p in (p for p in parities if getattr(p, panel) == name):
            ref, pred = getattr(p, quantity)
            ok = np.isfinite(ref) & np.isfinite(pred)
            if not ok.any():
                continue
            ref, pred = ref[ok], pred[ok]
            mae = (getattr(p, "mae", None) or {}).get(quantity, float(np.mean(np.abs(pred - ref))))
            ax.scatter(ref, pred, s=2 if len(ref) > 400 else 7, alpha=0.5, color=colours[p.model], rasterized=True,
                       linewidths=0)
            maes.append((p.model, mae))
            lo, hi = min(lo, ref.min(), pred.min()), max(hi, ref.max(), pred.max())
        if np.isfinite(lo):
            pad = 0.05 * (hi - lo or 1.0)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.6, ls="--")
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            for k, (model, mae) in enumerate(maes):  # each model's MAE in its colour, top left
                ax.text(0.03, 0.97 - 0.09 * k, fmt_value(mae), transform=ax.transAxes, fontsize=6, va="top",
                        color=colours[model])
        else:  # e.g. forces of a test group labelled with energies only
            ax.text(0.5, 0.5, f"no {title} labels", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        ax.set_title(str(name), fontsize=9, pad=2, y=1.0)  # a fixed y skips matplotlib's title placement pass
        ax.xaxis.set_major_locator(MaxNLocator(2))
        ax.yaxis.set_major_locator(MaxNLocator(2))
        ax.tick_params(labelsize=6, length=2, pad=1)
    fig.supxlabel(f"reference ({unit})", fontsize=8, y=0.01)
    fig.supylabel(f"predicted ({unit})", fontsize=8, x=0.005)
    handles = [plt.Line2D([], [], ls="", marker="o", ms=4, color=c) for c in colours.values()]
    fig.legend(handles, [f"{m}" for m in colours], loc="upper center", ncol=min(len(colours), 6), fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.32 / height),
               title=f"model (in each panel: its MAE, {unit}, full test set)", title_fontsize=7)
    fig.suptitle(f"Parity: {title} on each {'group' if panel == 'group' else 'data set'}'s test set", fontsize=10,
                 y=1 - 0.05 / height)
    return fig


LC_QUANTITIES = (("force", "force_mae", "force MAE (meV/Å)"), ("energy", "energy_mae", "energy MAE (meV/atom)"),
                 ("stress", "stress_mae", "stress MAE (GPa)"))


def learning_curve_figure(curves: list, raw: list[dict] | None = None):
    """TM23 Fig 6 / MS25 Fig 3: error vs training frames in log-log, per quantity; markers = replicate means
    (small dots = replicates when ``raw`` results are given), dashed = fitted power law a N^b with b and R²."""
    from mlffbench.units import GPA

    scale = {"force": 1e3, "energy": 1e3, "stress": 1 / GPA}
    keys = {"force": "forces.mae", "energy": "energy_per_atom.mae", "stress": "stress.mae"}
    labels = [f"{c.dataset} {c.model}" + "".join(f" {k}={v}" for k, v in c.sweep.items()) for c in curves]
    if len(curves) > MAX_LC_LEGEND:  # many data sets: one colour and one legend entry per model (b, R²: the table)
        return _learning_curves_by_model(curves, raw, scale, keys)
    colours = model_colours(labels)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (q, attr, ylabel) in zip(axes, LC_QUANTITIES):
        for c, label in zip(curves, labels):
            n = np.array(c.sizes, dtype=float)
            err = np.array(getattr(c, attr), dtype=float) * scale[q]
            law = getattr(c, q)
            ok = err > 0
            text = f"{label}: b={law.b:+.2f}, R²={law.r2:.2f}" if law else f"{label}: no fit"
            ax.plot(n[ok], err[ok], "o", color=colours[label], label=text, ms=5)
            pts = _replicates(raw, c, keys[q], scale[q])
            if pts:
                ax.plot(*zip(*pts), ".", color=colours[label], alpha=0.4, ms=3)
            if law and ok.any():
                grid = np.geomspace(n[ok].min(), n[ok].max(), 50)
                ax.plot(grid, law.a * grid**law.b * scale[q], "--", color=colours[label], lw=1)
        drawn = ax.has_data() and any(np.isfinite(line.get_ydata()).any() and (line.get_ydata() > 0).any()
                                      for line in ax.get_lines())
        _finish_lc_axis(ax, q, ylabel, drawn, legend_size=6)
    fig.suptitle("Learning curves (log-log; dashed: power law a·N^b fitted over all replicates)", fontsize=11)
    fig.tight_layout()
    return fig


def _replicates(raw: list[dict] | None, curve, key: str, scale: float) -> list[tuple[float, float]]:
    """(training frames, error) of every replicate result of ``curve`` in ``raw`` with a positive ``key`` error."""
    pts = [(r["n_train"], r["tests"]["test"]["overall"].get(key)) for r in raw or ()
           if r["dataset"] == curve.dataset and r["label"] == curve.model
           and r.get("point", {}).get("sweep", {}) == curve.sweep]
    return [(x, y * scale) for x, y in pts if y is not None and y > 0]


def _finish_lc_axis(ax, q: str, ylabel: str, drawn: bool, legend_size: int) -> None:
    """Log-log axes with labels, legend and grid; an axis with nothing positive to draw says so (a molecule has no
    stress labels)."""
    ax.set_xlabel("training frames N")
    if not drawn:
        ax.text(0.5, 0.5, f"no {q} labels", ha="center", va="center", transform=ax.transAxes)
        return
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    ax.grid(True, which="both", alpha=0.3)


#: more curves than this: one colour and legend entry per model (a legend line per curve would not be read)
MAX_LC_LEGEND = 10


def _learning_curves_by_model(curves: list, raw: list[dict] | None, scale: dict, keys: dict):
    """The learning curves of many data sets: per model one colour, its data sets' replicate means (markers),
    replicates (dots) and fitted power laws (dashed) drawn as one line each (NaN-separated), so the figure stays
    cheap to draw; each curve's b and R² are in the table under it."""
    models = list(dict.fromkeys(c.model for c in curves))
    colours = model_colours(models)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (q, attr, ylabel) in zip(axes, LC_QUANTITIES):
        drawn = False
        for model in models:
            mine = [c for c in curves if c.model == model]
            mx, my, dx, dy, fx, fy = [], [], [], [], [], []
            for c in mine:
                n = np.array(c.sizes, dtype=float)
                err = np.array(getattr(c, attr), dtype=float) * scale[q]
                ok = err > 0
                mx += list(n[ok]) + [np.nan]
                my += list(err[ok]) + [np.nan]
                for x, y in _replicates(raw, c, keys[q], scale[q]):
                    dx.append(x)
                    dy.append(y)
                law = getattr(c, q)
                if law and ok.any():
                    grid = np.geomspace(n[ok].min(), n[ok].max(), 20)
                    fx += list(grid) + [np.nan]
                    fy += list(law.a * grid**law.b * scale[q]) + [np.nan]
            if not any(v == v and v > 0 for v in my):
                continue
            drawn = True
            ax.plot(mx, my, "o", color=colours[model], ms=4, label=f"{model} ({len(mine)} data sets)")
            if dx:
                ax.plot(dx, dy, ".", color=colours[model], alpha=0.4, ms=3)
            if fx:
                ax.plot(fx, fy, "--", color=colours[model], lw=0.8, alpha=0.7)
        _finish_lc_axis(ax, q, ylabel, drawn, legend_size=7)
    fig.suptitle("Learning curves (log-log; dashed: power law a·N^b fitted over all replicates; b and R² of each "
                 "data set in the table)", fontsize=11)
    fig.tight_layout()
    return fig


def cost_accuracy_figure(results: list[dict], cost_key: str = "predict_us_per_atom"):
    """Cost vs accuracy (accuracy task): one small point per element, one large point per model (medians)."""
    xlabel = {"predict_us_per_atom": "prediction cost (µs/atom, log)", "fit_s": "training time (s, log)"}[cost_key]
    colours = model_colours(r["label"] for r in results)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for model, colour in colours.items():
        pts = [((r.get("cost") or {}).get(cost_key), r["tests"]["test"]["overall"].get("forces.percent"))
               for r in results if r["label"] == model]
        pts = np.array([(x, y) for x, y in pts if x and y is not None and math.isfinite(y) and x > 0], dtype=float)
        if not len(pts):
            continue
        ax.scatter(pts[:, 0], pts[:, 1], s=12, alpha=0.5, color=colour)
        ax.scatter(np.median(pts[:, 0]), np.median(pts[:, 1]), s=90, color=colour, edgecolor="black",
                   label=f"{model} (median of {len(pts)})")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("force % error (TM23 Eq. 2)")
    ax.set_title("Cost vs accuracy (accuracy task, full split)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def breakdown_figure(data: dict[str, dict[str, float]], ylabel: str, title: str):
    """Grouped bars: one group of bars per subset (a data set's groups or elements), one bar per model."""
    models = list(data)
    names = list(dict.fromkeys(n for per in data.values() for n in per))
    colours = model_colours(models)
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(names) * max(len(models), 1) ** 0.5 + 2), 3.6))
    x = np.arange(len(names))
    for i, model in enumerate(models):
        ys = [data[model].get(n, np.nan) for n in names]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, ys, width, color=colours[model], label=model)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30 if max(map(len, names or [""])) > 6 else 0, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
