"""Error vs element property (TM23 SI Figs S2-S7): a linear least-squares fit and its R² per model.

Properties come from mlffbench.elements (T_melt, N_d, (10 - N_d)·N_d, group, crystal structure), from an elastic
observable when the run has one (Cauchy pressure C12 - C44 of the reference, GPa), and from a user table
(e.g. the d-band centre, eV) passed as ``extra``: {symbol: {property: value}}. Crystal structure is categorical:
its "fit" is the per-structure mean, and R² is the fraction of variance those means explain (eta²)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlffbench import elements as elements_db
from mlffbench.report.figures import model_colours, plt

NUMERIC_PROPERTIES = {
    "t_melt": ("T_melt (K)", lambda e: e.t_melt),
    "n_d": ("N_d (d electrons)", lambda e: e.n_d),
    "n_d_holes": ("(10 - N_d)·N_d", lambda e: (10 - e.n_d) * e.n_d),
    "group": ("group", lambda e: e.group),
}
EXTRA_LABELS = {"cauchy_pressure_GPa": "Cauchy pressure C12 - C44 (GPa)", "d_band_centre_eV": "d-band centre (eV)"}


@dataclass
class Fit:
    prop: str
    model: str
    n: int
    slope: float | None
    intercept: float | None
    r2: float | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def linear_fit(x, y) -> tuple[float, float, float] | None:
    """(slope, intercept, R²) of y = slope x + intercept; None with fewer than 3 points or constant x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - (slope * x + intercept)) ** 2).sum())
    return float(slope), float(intercept), (1 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def eta_squared(categories, y) -> float | None:
    """Fraction of the variance of y explained by per-category means (R² of a one-way model)."""
    y = np.asarray(y, float)
    cats = np.asarray(categories)
    if y.size < 3 or len(set(cats.tolist())) < 2:
        return None
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(sum(((y[cats == c] - y[cats == c].mean()) ** 2).sum() for c in set(cats.tolist())))
    return 1 - ss_res / ss_tot if ss_tot > 0 else None


def cauchy_pressures(observables: list[dict]) -> dict[str, float]:
    """Reference Cauchy pressure C12 - C44 (GPa) per element from elastic observables, where present. Accepts
    {"C12","C44"} (or "C12_GPa"...) keys or a 6x6 "C_GPa"/"C" matrix on the reference side."""
    out = {}
    for o in observables:
        res = (o.get("observables") or {}).get("elastic")
        ref = res.get("reference") if isinstance(res, dict) else None
        if not isinstance(ref, dict):
            continue
        c12 = ref.get("C12", ref.get("C12_GPa"))
        c44 = ref.get("C44", ref.get("C44_GPa"))
        matrix = ref.get("C_GPa", ref.get("C"))
        if (c12 is None or c44 is None) and isinstance(matrix, list) and len(matrix) == 6:
            try:
                c12, c44 = matrix[0][1], matrix[3][3]
            except (IndexError, TypeError):
                pass
        if isinstance(c12, (int, float)) and isinstance(c44, (int, float)):
            out[str(o.get("element"))] = float(c12) - float(c44)
    return out


def property_table(elements: list[str], observables: list[dict], extra: dict | None = None) -> dict[str, dict]:
    """{property: {symbol: value}} for every property available for these elements (numeric ones only)."""
    table: dict[str, dict] = {}
    for prop, (_, get) in NUMERIC_PROPERTIES.items():
        table[prop] = {s: float(get(elements_db.get(s))) for s in elements}
    cauchy = cauchy_pressures(observables)
    if cauchy:
        table["cauchy_pressure_GPa"] = cauchy
    for symbol, props in (extra or {}).items():
        for prop, value in props.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                table.setdefault(prop, {})[symbol] = float(value)
    return table


def correlations(data: dict[str, dict[str, float]], table: dict[str, dict]) -> list[Fit]:
    """One Fit per (property, model); ``data`` = {model: {element: error}}. Structure gets eta² as R²."""
    fits = []
    for prop, per_el in table.items():
        for model, errs in data.items():
            els = [e for e in errs if e in per_el]
            fit = linear_fit([per_el[e] for e in els], [errs[e] for e in els])
            fits.append(Fit(prop, model, len(els), *(fit or (None, None, None))))
    for model, errs in data.items():
        els = list(errs)
        structures = [elements_db.get(e).lattice for e in els]
        fits.append(Fit("structure", model, len(els), None, None, eta_squared(structures, [errs[e] for e in els])))
    return fits


def correlation_figure(data: dict[str, dict[str, float]], table: dict[str, dict], ylabel: str):
    """One panel per property: error against property, one colour per model, dashed linear fit with R²."""
    props = list(table) + ["structure"]
    colours = model_colours(data)
    ncols = min(3, len(props))
    nrows = math.ceil(len(props) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(props):]:
        ax.axis("off")
    for ax, prop in zip(axes.flat, props):
        for model, errs in data.items():
            if prop == "structure":
                cats = sorted({elements_db.get(e).lattice for e in errs})
                xs = [cats.index(elements_db.get(e).lattice) for e in errs]
                r2 = eta_squared([elements_db.get(e).lattice for e in errs], list(errs.values()))
                jitter = 0.08 * (list(data).index(model) - (len(data) - 1) / 2)
                ax.scatter(np.array(xs) + jitter, list(errs.values()), color=colours[model], s=18,
                           label=f"{model}" + (f" (η²={r2:.2f})" if r2 is not None else ""))
                ax.set_xticks(range(len(cats)), cats)
                ax.set_xlim(-0.5, len(cats) - 0.5)
                continue
            els = [e for e in errs if e in table[prop]]
            x = np.array([table[prop][e] for e in els])
            y = np.array([errs[e] for e in els])
            fit = linear_fit(x, y)
            label = model + (f" (R²={fit[2]:.2f})" if fit else "")
            ax.scatter(x, y, color=colours[model], s=18, label=label)
            for xi, yi, e in zip(x, y, els):
                ax.annotate(e, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
            if fit:
                grid = np.linspace(x.min(), x.max(), 20)
                ax.plot(grid, fit[0] * grid + fit[1], "--", color=colours[model], lw=1)
        label = NUMERIC_PROPERTIES.get(prop, (EXTRA_LABELS.get(prop, prop),))[0]
        ax.set_xlabel("crystal structure" if prop == "structure" else label, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{ylabel} vs element properties (linear fit, R²; TM23 SI S2-S7)", fontsize=11)
    fig.tight_layout()
    return fig
