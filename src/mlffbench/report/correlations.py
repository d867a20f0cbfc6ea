"""Error vs element property (TM23 SI Figs S2-S7) over any of the 43 metals: a linear least-squares fit per model
with n, Pearson r, R² and seeded 95 % bootstrap intervals of r and R² over the elements.

Properties come from mlffbench.elements (T_melt, N_d, (10 - N_d)·N_d, group, period, crystal structure, block
s/p/d), from an elastic observable when the run has one (Cauchy pressure C12 - C44 of the reference, GPa), and
from a user table (e.g. the d-band centre, eV) passed as ``extra``: {symbol: {property: value}}. Crystal structure
and block are categorical: their "fit" is the per-category mean, and R² is the fraction of variance those means
explain (eta²). Intervals: the elements are resampled with replacement (``statistics.draws``, seed ``SEED``, the
same draws for every property and model of one element set) and the 2.5/97.5 percentiles taken
(``statistics.interval``), so no R² is reported without its uncertainty over the choice of metals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlffbench import elements as elements_db
from mlffbench import statistics
from mlffbench.report.figures import model_colours, plt

#: bootstrap seed of every interval here (fixed: the report is regenerated, its intervals must not move)
SEED = 4302


def block(e) -> str:
    """s, p or d block of a metal from its group (groups 3-12 are the d block, Zn/Cd/Hg included)."""
    return "s" if e.group <= 2 else "p" if e.group >= 13 else "d"


NUMERIC_PROPERTIES = {
    "t_melt": ("T_melt (K)", lambda e: e.t_melt),
    "n_d": ("N_d (d electrons)", lambda e: e.n_d),
    "n_d_holes": ("(10 - N_d)·N_d", lambda e: (10 - e.n_d) * e.n_d),
    "group": ("group", lambda e: e.group),
    "period": ("period", lambda e: e.period),
}
#: categorical properties: label, category of an element (fitted by per-category means, eta²)
CATEGORICAL_PROPERTIES = {"structure": ("crystal structure", lambda e: e.lattice), "block": ("block", block)}
EXTRA_LABELS = {"cauchy_pressure_GPa": "Cauchy pressure C12 - C44 (GPa)", "d_band_centre_eV": "d-band centre (eV)"}


@dataclass
class Fit:
    prop: str
    model: str
    n: int
    slope: float | None
    intercept: float | None
    r2: float | None  # R² of the linear fit (= r²); eta² for categorical properties
    r: float | None = None  # Pearson r (numeric properties)
    r_lo: float | None = None  # 95 % bootstrap interval of r over the elements
    r_hi: float | None = None
    r2_lo: float | None = None  # 95 % bootstrap interval of R² (eta²)
    r2_hi: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def ci_text(lo, hi, digits: int = 2) -> str:
    """An interval as "[lo, hi]" (signs kept readable, unlike "lo-hi"); "-" when unknown."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "-"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]"


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


def _known(elements) -> list[str]:
    """The elements mlffbench has facts for (a run may also hold e.g. a Si data set: no T_melt, N_d, ...)."""
    return [e for e in elements if e in elements_db.ELEMENTS]


def property_table(elements: list[str], observables: list[dict], extra: dict | None = None) -> dict[str, dict]:
    """{property: {symbol: value}} for every property available for these elements (numeric ones only)."""
    table: dict[str, dict] = {}
    for prop, (_, get) in NUMERIC_PROPERTIES.items():
        table[prop] = {s: float(get(elements_db.get(s))) for s in _known(elements)}
    cauchy = cauchy_pressures(observables)
    if cauchy:
        table["cauchy_pressure_GPa"] = cauchy
    for symbol, props in (extra or {}).items():
        for prop, value in props.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                table.setdefault(prop, {})[symbol] = float(value)
    return table


def categories(prop: str, elements) -> dict[str, str]:
    """{symbol: category} of a categorical property (CATEGORICAL_PROPERTIES) for the known elements."""
    get = CATEGORICAL_PROPERTIES[prop][1]
    return {e: get(elements_db.get(e)) for e in _known(elements)}


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis; NaN where x or y is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc ** 2).sum(axis=-1) * (yc ** 2).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (xc * yc).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def pearson_interval(x, y) -> dict:
    """Pearson r of y on x, R² = r², and their 95 % bootstrap intervals over the points (elements), seeded by
    SEED: {"r", "r_lo", "r_hi", "r2_lo", "r2_hi"} (None where undefined or too few points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = dict.fromkeys(("r", "r_lo", "r_hi", "r2_lo", "r2_hi"))
    if x.size < 3:
        return out
    r = float(_pearson(x, y))
    out["r"] = r if math.isfinite(r) else None
    idx = statistics.draws(x.size, SEED)
    samples = _pearson(x[idx], y[idx])
    out["r_lo"], out["r_hi"] = _finite(statistics.interval(samples))
    out["r2_lo"], out["r2_hi"] = _finite(statistics.interval(samples ** 2))
    return out


def eta_squared_interval(cats, y) -> tuple[float | None, float | None]:
    """95 % bootstrap interval of eta² over the points (elements), seeded by SEED; (None, None) when undefined."""
    y, cats = np.asarray(y, float), np.asarray(cats)
    if y.size < 3 or len(set(cats.tolist())) < 2:
        return None, None
    idx = statistics.draws(y.size, SEED)
    ys, codes = y[idx], np.unique(cats, return_inverse=True)[1].reshape(-1)[idx]
    # eta² = SS_between / SS_total per draw, SS_between = sum_k S_k² / n_k - S² / n (vectorised over the draws)
    masks = codes[None, :, :] == np.arange(codes.max() + 1)[:, None, None]  # (categories, draws, n)
    n_k, s_k = masks.sum(axis=2), (masks * ys).sum(axis=2)
    between = (np.where(n_k > 0, s_k ** 2 / np.maximum(n_k, 1), 0.0)).sum(axis=0) - ys.sum(axis=1) ** 2 / y.size
    total = ((ys - ys.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = np.where(((n_k > 0).sum(axis=0) >= 2) & (total > 0), between / np.where(total > 0, total, 1), np.nan)
    return _finite(statistics.interval(samples))


def _finite(pair) -> tuple[float | None, float | None]:
    return tuple(float(v) if v is not None and math.isfinite(v) else None for v in pair)


def correlations(data: dict[str, dict[str, float]], table: dict[str, dict]) -> list[Fit]:
    """One Fit per (property, model); ``data`` = {model: {element: error}}: numeric properties of ``table``
    (linear fit, r, R², intervals), then the categorical ones (structure, block: eta² as R², its interval)."""
    fits = []
    for prop, per_el in table.items():
        for model, errs in data.items():
            els = [e for e in errs if e in per_el]
            x, y = [per_el[e] for e in els], [errs[e] for e in els]
            fit = linear_fit(x, y)
            fits.append(Fit(prop, model, len(els), *(fit or (None, None, None)), **pearson_interval(x, y)))
    for prop in CATEGORICAL_PROPERTIES:
        for model, errs in data.items():
            cats = categories(prop, errs)
            y = [errs[e] for e in cats]
            lo, hi = eta_squared_interval(list(cats.values()), y)
            fits.append(Fit(prop, model, len(cats), None, None, eta_squared(list(cats.values()), y),
                            r2_lo=lo, r2_hi=hi))
    return fits


def _label(prop: str) -> str:
    if prop in CATEGORICAL_PROPERTIES:
        return CATEGORICAL_PROPERTIES[prop][0]
    return NUMERIC_PROPERTIES.get(prop, (EXTRA_LABELS.get(prop, prop),))[0]


def correlation_figure(data: dict[str, dict[str, float]], table: dict[str, dict], ylabel: str):
    """One panel per property: error against property, one colour per model, dashed linear fit; the legend gives
    Pearson r (η² for categorical properties) with its 95 % bootstrap interval over the elements. Categorical
    properties with a single category in the run (e.g. block for TM23 metals) get no panel."""
    elements = {e for errs in data.values() for e in errs}
    cat_props = [p for p in CATEGORICAL_PROPERTIES if len(set(categories(p, elements).values())) > 1]
    props = list(table) + cat_props
    colours = model_colours(data)
    ncols = min(3, len(props))
    nrows = math.ceil(len(props) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.3 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(props):]:
        ax.axis("off")
    for ax, prop in zip(axes.flat, props):
        top: dict[str, tuple[float, float]] = {}  # element -> its highest point, where its symbol is written
        for model, errs in data.items():
            if prop in cat_props:
                cats_of = categories(prop, errs)
                order = ("s", "p", "d")  # blocks in table order; structures alphabetical
                cats = sorted(set(cats_of.values()), key=lambda c: (order.index(c) if c in order else 3, c))
                els = list(cats_of)
                y = np.array([errs[e] for e in els])
                r2 = eta_squared([cats_of[e] for e in els], y)
                lo, hi = eta_squared_interval([cats_of[e] for e in els], y)
                jitter = 0.08 * (list(data).index(model) - (len(data) - 1) / 2)
                x = np.array([cats.index(cats_of[e]) for e in els]) + jitter
                ax.scatter(x, y, color=colours[model], s=14,
                           label=model + (f": η²={r2:.2f} {ci_text(lo, hi)}" if r2 is not None else ""))
                tilt = len(cats) > 4  # seven structure names overlap when written flat
                ax.set_xticks(range(len(cats)), [c.replace("simple_hexagonal", "simple hex.") for c in cats],
                              fontsize=7, rotation=30 if tilt else 0, ha="right" if tilt else "center")
                ax.set_xlim(-0.5, len(cats) - 0.5)
                continue
            els = [e for e in errs if e in table[prop]]
            x = np.array([table[prop][e] for e in els])
            y = np.array([errs[e] for e in els])
            fit = linear_fit(x, y)
            stats = pearson_interval(x, y)
            label = model + (f": r={stats['r']:.2f} {ci_text(stats['r_lo'], stats['r_hi'])}"
                             if stats["r"] is not None else "")
            ax.scatter(x, y, color=colours[model], s=14, label=label)
            # symbols only where x mostly separates the elements (T_melt, Cauchy pressure): on integer
            # properties (group, N_d) dozens of symbols would stack on one column
            if len(set(x.tolist())) >= 0.6 * len(x):
                for xi, yi, e in zip(x, y, els):
                    if e not in top or yi > top[e][1]:
                        top[e] = (xi, yi)
            if fit:
                grid = np.linspace(x.min(), x.max(), 20)
                ax.plot(grid, fit[0] * grid + fit[1], "--", color=colours[model], lw=1)
        for e, (xi, yi) in top.items():
            ax.annotate(e, (xi, yi), fontsize=5.5, xytext=(2, 2), textcoords="offset points", color="#333333")
        if prop in ("n_d", "n_d_holes", "group", "period"):
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(_label(prop), fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best", framealpha=0.7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{ylabel} vs element properties (linear fit; Pearson r or η² with 95 % bootstrap interval over "
                 "the elements; TM23 SI S2-S7)", fontsize=10)
    fig.tight_layout()
    return fig
