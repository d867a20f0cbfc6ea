"""How each model's errors spread across the elements of a collection (Metal-43 SI Fig 2 c-d).

Per model, the per-element energy MAE (meV/atom) and force MAE (meV/Å, component-wise) on each element's own
test set form a distribution over elements: one figure, two panels, a stepped histogram per model on shared
bins, legend with mean ± standard deviation across elements. The standard deviation is the sample one (ddof=1):
the elements stand for metals in general. Its summary numbers go to the report's JSON and CSV as records in the
CSV's shape (``records``)."""

from __future__ import annotations

import numpy as np

from mlffbench.report.figures import model_colours, plt

#: a distribution over fewer elements says nothing (the section is drawn from this many on)
MIN_ELEMENTS = 3
#: (metric name in collect.METRICS, panel title, axis unit, CSV quantity, CSV unit)
QUANTITIES = (("energy_mae", "energy MAE", "meV/atom", "energy_per_atom", "meV_atom"),
              ("force_mae", "force MAE", "meV/Å", "forces", "meV_A"))
STATS = ("n", "mean", "std", "median", "min", "max")


def summary(values) -> dict:
    """n, mean, sample std (ddof=1; None for one value), median, min, max of finite values (None when empty)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0, **{k: None for k in STATS[1:]}}
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def distributions(data: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict]]:
    """{metric: {model: summary}} from ``data`` = {metric: {model: {element: value}}}."""
    return {q: {m: summary(per.values()) for m, per in models.items()} for q, models in data.items()}


def _legend(model: str, s: dict, unit: str) -> str:
    """ "model: mean ± std unit (n=..)", mean to 3 significant figures and std to the same decimals."""
    mean = s["mean"]
    digits = int(np.clip(2 - np.floor(np.log10(abs(mean))), 0, 4)) if mean else 2
    std = "" if s["std"] is None else f" ± {s['std']:.{digits}f}"
    return f"{model}: {mean:.{digits}f}{std} {unit} (n={s['n']})"


def histogram_figure(data: dict[str, dict[str, dict[str, float]]], title: str = ""):
    """Two panels (energy MAE, force MAE; ``data`` = {metric: {model: {element: value}}}): a stepped histogram
    per model on bins shared by the models, legend "model: mean ± std unit (n)", mean marked by a dotted line."""
    colours = model_colours(m for models in data.values() for m in models)
    quantities = [q for q in QUANTITIES if data.get(q[0])]
    fig, axes = plt.subplots(1, max(1, len(quantities)), figsize=(5.6 * max(1, len(quantities)), 3.8),
                             squeeze=False)
    for ax, (key, name, unit, _, _) in zip(axes.flat, quantities):
        models = data[key]
        pooled = np.array([v for per in models.values() for v in per.values() if np.isfinite(v)])
        # ~2 sqrt(n) bins over the pooled range: enough to show the shape of 43 values, few enough to stay smooth
        n_el = max(len(per) for per in models.values())
        bins = np.linspace(pooled.min(), pooled.max(), int(np.clip(2 * np.sqrt(n_el), 5, 20)) + 1) \
            if pooled.size and np.ptp(pooled) > 0 else 10
        for model, per in models.items():
            v = np.array([x for x in per.values() if np.isfinite(x)])
            if not v.size:
                continue
            s = summary(v)
            ax.hist(v, bins=bins, histtype="step", linewidth=1.6, color=colours[model],
                    label=_legend(model, s, unit))
            ax.axvline(s["mean"], color=colours[model], ls=":", lw=1)
        ax.set_xlabel(f"{name} per element ({unit})", fontsize=9)
        ax.set_ylabel("elements", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7, title="mean ± std across elements", title_fontsize=7, frameon=False)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or "Per-element errors across elements (Metal-43 SI Fig 2 c-d)", fontsize=11)
    fig.tight_layout()
    return fig


def records(data: dict[str, dict[str, dict[str, float]]], run: str, dataset: str,
            mean_over_models: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """CSV-shaped records (report.build.CSV_FIELDS): per model and quantity the across-element statistics
    (stat "mae_<stat>_over_elements", split "full"; ``dataset`` = the collection) and, when given, the per-element
    mean over models of the Metal-43 SI Fig 2 a-b heatmaps ({metric: {element: value}}, model "mean over models")."""
    out = []
    units = {q[0]: q[3:] for q in QUANTITIES}
    for key, models in data.items():
        quantity, unit = units[key]
        for model, s in distributions({key: models})[key].items():
            for stat in STATS:
                out.append({"run": run, "task": "accuracy", "split": "full", "dataset": dataset, "element": "",
                            "model": model, "n_train": None, "n_test": None, "quantity": quantity,
                            "stat": "n_elements" if stat == "n" else f"mae_{stat}_over_elements",
                            "value": s[stat], "unit": "" if stat == "n" else unit})
    for key, per in (mean_over_models or {}).items():
        quantity, unit = units[key]
        out += [{"run": run, "task": "accuracy", "split": "full", "dataset": dataset, "element": el,
                 "model": "mean over models", "n_train": None, "n_test": None, "quantity": quantity,
                 "stat": "mae_mean_over_models", "value": v, "unit": unit} for el, v in per.items()]
    return out
