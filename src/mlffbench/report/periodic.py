"""Periodic-table heatmaps (TM23 Figs 2-5: the d block; Metal-43 SI Figs 1-2: the whole table).

One figure holds one panel per model and ONE colour scale shared by every panel (as TM23 does), so colours
compare across models. Each cell prints its value; elements without a value are grey. Our own small matplotlib
layout (pymatviz was considered; its periodic-table heatmaps draw one table per figure with their own scale and
pull plotly/pandas, and the d-block layout is a few lines here)."""

from __future__ import annotations

import math

import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from mlffbench.report.figures import fmt_value, plt

MISSING = "#d9d9d9"
#: TM23's d block: periods 4-6 x groups 4-12 (Ti..Zn, Zr..Cd, Hf..Hg)
D_BLOCK_PERIODS = (4, 5, 6)
D_BLOCK_GROUPS = tuple(range(4, 13))


def position(symbol: str) -> tuple[int, int]:
    """(row, column) of an element in the 18-column table; lanthanides/actinides sit in rows 8/9 from column 3."""
    z = atomic_numbers[symbol]
    if z <= 2:
        return 1, 1 if z == 1 else 18
    for period, (start, end) in enumerate(((3, 10), (11, 18)), start=2):
        if start <= z <= end:
            return period, z - start + 1 if z - start < 2 else z - end + 18
    for period, (start, end) in enumerate(((19, 36), (37, 54)), start=4):
        if start <= z <= end:
            return period, z - start + 1
    for period, (start, end, f_row) in enumerate(((55, 86, 8), (87, 118, 9)), start=6):
        if start <= z <= end:
            if z < start + 2:
                return period, z - start + 1
            if z <= start + 16:  # La..Lu / Ac..Lr
                return f_row, z - start + 1
            return period, z - end + 18
    raise ValueError(f"no table position for {symbol}")


def d_block_symbols() -> list[list[str]]:
    """Rows of the TM23 d block, symbols in group order."""
    rows = []
    for period in D_BLOCK_PERIODS:
        rows.append([next(s for s in chemical_symbols[1:87] if position(s) == (period, g)) for g in D_BLOCK_GROUPS])
    return rows


def _norm(data: dict[str, dict[str, float]], vmin=None, vmax=None) -> Normalize:
    vals = [v for per in data.values() for v in per.values() if v is not None and math.isfinite(v)]
    lo = min(vals) if vals else 0.0
    hi = max(vals) if vals else 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.01
    return Normalize(vmin if vmin is not None else lo, vmax if vmax is not None else hi)


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _draw_cells(ax, cells: list[tuple[str, float, float]], values: dict[str, float], norm, cmap, fontsize):
    """cells: (symbol, x, y) with y increasing downwards."""
    for symbol, x, y in cells:
        v = values.get(symbol)
        has = v is not None and math.isfinite(v)
        colour = cmap(norm(v)) if has else MISSING
        ax.add_patch(Rectangle((x, y), 0.96, 0.96, facecolor=colour, edgecolor="white", linewidth=0.6))
        ink = _text_colour(colour) if has else "#808080"
        ax.text(x + 0.48, y + 0.34, symbol, ha="center", va="center", fontsize=fontsize, fontweight="bold",
                color=ink)
        if has:
            ax.text(x + 0.48, y + 0.70, fmt_value(v), ha="center", va="center", fontsize=fontsize * 0.8, color=ink)


def heatmap(data: dict[str, dict[str, float]], *, layout: str = "dblock", title: str = "", unit: str = "",
            cmap: str = "YlOrRd", vmin: float | None = None, vmax: float | None = None):
    """Figure with one periodic-table panel per model. ``data`` = {model: {symbol: value}}; ``layout`` is
    "dblock" (TM23 periods 4-6 x groups 4-12) or "full" (18 columns + f rows). One colour scale for all panels."""
    if layout not in ("dblock", "full"):
        raise ValueError(f"layout must be 'dblock' or 'full', got {layout!r}")
    models = list(data) or ["(no data)"]
    norm = _norm(data, vmin, vmax)
    cm = plt.get_cmap(cmap)
    if layout == "dblock":
        rows = d_block_symbols()
        cells = [(s, j, i) for i, row in enumerate(rows) for j, s in enumerate(row)]
        width, height, fontsize = 9, 3, 9
        panel = (5.6, 2.1)
    else:
        cells = []
        for s in chemical_symbols[1:104]:
            r, c = position(s)
            y = r - 1 if r <= 7 else r - 0.5  # a half-row gap above the f rows
            cells.append((s, c - 1, y))
        width, height, fontsize = 18, 9.5, 6
        panel = (9.0, 4.9)
    ncols = 1 if layout == "full" or len(models) == 1 else 2
    nrows = math.ceil(len(models) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols + 0.8, panel[1] * nrows + 0.5),
                             squeeze=False)
    for ax, model in zip(axes.flat, models):
        _draw_cells(ax, cells, data.get(model, {}), norm, cm, fontsize)
        ax.set_xlim(-0.1, width)
        ax.set_ylim(height + 0.05, -0.1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(model, fontsize=10, pad=14 if layout == "dblock" else 4)
        if layout == "dblock":
            for j, g in enumerate(D_BLOCK_GROUPS):
                ax.text(j + 0.48, -0.05, str(g), ha="center", va="bottom", fontsize=7, color="#555555")
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cm)
    bar = fig.colorbar(sm, ax=axes.ravel().tolist(), shrink=0.85, pad=0.02)
    bar.set_label(unit)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def shared_range(*datas: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(min, max) over several data sets, to put related figures (e.g. cold->warm and cold->melt) on one scale."""
    vals = np.array([v for d in datas for per in d.values() for v in per.values() if math.isfinite(v)])
    return (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
