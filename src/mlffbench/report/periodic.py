"""Periodic-table heatmaps (TM23 Figs 2-5: the d block; Metal-43 SI Figs 1-2: all 43 metals).

One figure holds one panel per model and ONE colour scale shared by every panel (as TM23 does), so colours
compare across models. Each cell prints its value; elements without a value are grey. Layouts: "dblock" (TM23's
27 metals, periods 4-6 x groups 4-12), "metal43" (groups 1-13 x periods 2-6 at their real positions: exactly the
43 metals of Metal-43, lanthanides aside) and "full" (the 18-column table with f rows, for anything else);
``choose_layout`` picks the smallest that holds a run's elements. Our own small matplotlib layout (pymatviz was
considered; its periodic-table heatmaps draw one table per figure with their own scale and pull plotly/pandas).

Also here: which labeler made each element's reference labels, as caption text (a universal potential is a
surrogate for DFT and every heatmap/table using its labels must say so)."""

from __future__ import annotations

import math
import re

import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from mlffbench import elements as elements_db
from mlffbench.report.figures import fmt_value, plt

MISSING = "#d9d9d9"
#: TM23's d block: periods 4-6 x groups 4-12 (Ti..Zn, Zr..Cd, Hf..Hg)
D_BLOCK_PERIODS = (4, 5, 6)
D_BLOCK_GROUPS = tuple(range(4, 13))
#: Metal-43's table: groups 1-13 x periods 2-6 (its 43 metals fill every metal position there)
METAL43_GROUPS = tuple(range(1, 14))
METAL43_PERIODS = tuple(range(2, 7))
LAYOUTS = ("dblock", "metal43", "full")
#: what a caption says about each layout
LAYOUT_NOTES = {"dblock": "d block as TM23 Figs 2-3", "metal43": "43 metals as Metal-43 SI Figs 1-2",
                "full": "whole periodic table"}


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


def metal43_cells() -> dict[str, tuple[int, int]]:
    """{symbol: (group, period)} of the 43 metals (groups and periods from mlffbench.elements)."""
    return {s: (e.group, e.period) for s, e in elements_db.ELEMENTS.items()}


def choose_layout(symbols) -> str:
    """The smallest layout holding every symbol: "dblock" for TM23-only runs, "metal43" as soon as an s-, p- or
    group-3 metal is in, "full" for anything beyond the 43 metals."""
    symbols = set(symbols)
    if symbols <= {s for row in d_block_symbols() for s in row}:
        return "dblock"
    return "metal43" if symbols <= set(elements_db.ELEMENTS) else "full"


def mean_over_models(data: dict[str, dict[str, float]]) -> dict[str, float]:
    """{element: mean over models} of ``data`` = {model: {element: value}} (Metal-43 SI Fig 2 a-b), over the
    elements every model has: a mean over a subset of models would not compare across elements."""
    per = [v for v in data.values()]
    common = set.intersection(*(set(v) for v in per)) if per else set()
    return {e: float(np.mean([v[e] for v in per])) for e in sorted(common, key=atomic_numbers.get)}


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


def _draw_cells(ax, cells: list[tuple[str, float, float]], values: dict[str, float], norm, cmap, fontsize,
                marked=frozenset()):
    """cells: (symbol, x, y) with y increasing downwards; ``marked`` symbols are outlined and carry a ‡ (labels from
    a labeler that fails a label check, accepted by the config)."""
    for symbol, x, y in cells:
        v = values.get(symbol)
        has = v is not None and math.isfinite(v)
        colour = cmap(norm(v)) if has else MISSING
        ax.add_patch(Rectangle((x, y), 0.96, 0.96, facecolor=colour, edgecolor="white", linewidth=0.6))
        ink = _text_colour(colour) if has else "#808080"
        ax.text(x + 0.48, y + 0.34, symbol + ("‡" if symbol in marked else ""), ha="center", va="center",
                fontsize=fontsize, fontweight="bold", color=ink)
        if symbol in marked:
            ax.add_patch(Rectangle((x + 0.04, y + 0.04), 0.88, 0.88, fill=False, edgecolor="black", linewidth=1.6,
                                   linestyle="--"))
        if has:
            ax.text(x + 0.48, y + 0.70, fmt_value(v), ha="center", va="center", fontsize=fontsize * 0.8, color=ink)


def _layout(layout: str):
    """cells [(symbol, x, y)], width, height (cells), cell size (inches), cell font size, column labels
    [(x, text)], row labels [(y, text)] of one layout."""
    if layout == "dblock":
        rows = d_block_symbols()
        cells = [(s, j, i) for i, row in enumerate(rows) for j, s in enumerate(row)]
        return cells, 9, 3, 0.6, 9, [(j, str(g)) for j, g in enumerate(D_BLOCK_GROUPS)], []
    if layout == "metal43":
        g0, p0 = METAL43_GROUPS[0], METAL43_PERIODS[0]
        cells = [(s, g - g0, p - p0) for s, (g, p) in metal43_cells().items()]
        # 0.44 in cells: two panels side by side fill the report's 1200 px column at 90 dpi without shrinking
        return (cells, len(METAL43_GROUPS), len(METAL43_PERIODS), 0.44, 8.5,
                [(g - g0, str(g)) for g in METAL43_GROUPS], [(p - p0, str(p)) for p in METAL43_PERIODS])
    cells = []
    for s in chemical_symbols[1:104]:
        r, c = position(s)
        y = r - 1 if r <= 7 else r - 0.5  # a half-row gap above the f rows
        cells.append((s, c - 1, y))
    return cells, 18, 9.5, 0.5, 6, [], []


def heatmap(data: dict[str, dict[str, float]], *, layout: str = "dblock", title: str = "", unit: str = "",
            cmap: str = "YlOrRd", vmin: float | None = None, vmax: float | None = None, marked=frozenset()):
    """Figure with one periodic-table panel per model. ``data`` = {model: {symbol: value}}; ``layout`` one of
    LAYOUTS (or "auto": ``choose_layout`` of the data's symbols). One colour scale for all panels."""
    if layout == "auto":
        layout = choose_layout({s for per in data.values() for s in per})
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)} or 'auto', got {layout!r}")
    models = list(data) or ["(no data)"]
    norm = _norm(data, vmin, vmax)
    cm = plt.get_cmap(cmap)
    cells, width, height, unit_in, fontsize, col_labels, row_labels = _layout(layout)
    ncols = 1 if layout == "full" or len(models) == 1 else 2
    nrows = math.ceil(len(models) / ncols)
    # Axes placed in inches from the cell size (subplots + a stolen colour-bar slot left cells at ~60 % size).
    x0, x1 = (-0.5 if row_labels else -0.05), width
    y0, y1 = (-0.45 if col_labels else -0.05), height + 0.05
    pw, ph = (x1 - x0) * unit_in, (y1 - y0) * unit_in
    title_in, gap_in, top_in, bar_in = 0.3, 0.25, (0.45 if title else 0.1), 1.0
    fw = ncols * pw + (ncols - 1) * gap_in + bar_in + 0.1
    fh = nrows * (ph + title_in) + (nrows - 1) * gap_in + top_in + 0.1
    fig = plt.figure(figsize=(fw, fh))
    axes = []
    for i in range(nrows * ncols):
        r, c = divmod(i, ncols)
        left = 0.05 + c * (pw + gap_in)
        bottom = fh - top_in - (r + 1) * (ph + title_in) - r * gap_in
        axes.append(fig.add_axes((left / fw, bottom / fh, pw / fw, ph / fh)))
    for ax, model in zip(axes, models):
        _draw_cells(ax, cells, data.get(model, {}), norm, cm, fontsize, set(marked))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(model, fontsize=10, pad=3)
        for x, text in col_labels:
            ax.text(x + 0.48, -0.07, text, ha="center", va="bottom", fontsize=7, color="#555555")
        for y, text in row_labels:
            ax.text(-0.12, y + 0.48, text, ha="right", va="center", fontsize=7, color="#555555")
    for ax in axes[len(models):]:
        ax.axis("off")
    grid_h = fh - top_in - 0.1
    cax = fig.add_axes(((fw - bar_in + 0.15) / fw, (0.1 + 0.1 * grid_h) / fh, 0.16 / fw, 0.8 * grid_h / fh),
                       label="<colorbar>")
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cm), cax=cax)
    bar.set_label(unit)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / fh, va="top")
    return fig


def shared_range(*datas: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(min, max) over several data sets, to put related figures (e.g. cold->warm and cold->melt) on one scale."""
    vals = np.array([v for d in datas for per in d.values() for v in per.values() if math.isfinite(v)])
    return (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)


# ------------------------------------------------------------------------------------ reference labels in captions
# A source is (reference spec, labeled_by) of an element's data set: the spec from the run's data-set description,
# labeled_by the data job's provenance string (collect.load_run), e.g. "lammps:Cu_mishin(eam/alloy:Cu.eam.alloy)".


def universal_spec(spec) -> dict | None:
    """The universal-potential labeler spec of a data set's reference, or None when its labels are not from one."""
    return spec if isinstance(spec, dict) and spec.get("name") == "universal" else None


def labeler_kind(spec: dict | None, labeled_by: str | None = None) -> str:
    """Short name of the labeler behind a data set's reference labels: "SevenNet-0 surrogate", "lammps EAM",
    "ASE EMT", "GPAW DFT", ... (the LAMMPS pair style comes from ``labeled_by``)."""
    if universal_spec(spec):
        from mlffbench.data.labelers.universal import MODELS

        model = spec.get("model", "sevennet")
        entry = MODELS.get(model, (model,))
        kind = f"{entry[-1]} surrogate"  # the human name is the entry's last field
        # a non-default checkpoint is another reference: name it, so each kind has one describe() sentence
        return kind + (f" ({spec['checkpoint']})" if spec.get("checkpoint") not in (None, *entry) else "")
    name = spec.get("name") if isinstance(spec, dict) else None
    if name == "lammps" or (name is None and (labeled_by or "").startswith("lammps:")):
        style = re.search(r"\(([^:()]+):", labeled_by or "")
        return "lammps " + style.group(1).split("/")[0].upper() if style else "lammps"
    if name is None:
        return labeled_by.split(":")[0] if labeled_by else "unknown"
    return {"emt": "ASE EMT", "gpaw": "GPAW DFT"}.get(name, name)


def labels_by_kind(sources: dict[str, tuple]) -> dict[str, list[str]]:
    """{labeler kind: [elements in Z order]} from {element: source}; LAMMPS pair styles merge into one kind
    ("lammps EAM/MEAM") so a caption names each labeler once."""
    kinds = {el: labeler_kind(*src) for el, src in sources.items()}
    styles = sorted({k[7:] for k in kinds.values() if k.startswith("lammps ")})
    lammps = "lammps " + "/".join(styles) if styles else "lammps"
    out: dict[str, list[str]] = {}
    for el in _z_sorted(kinds):
        out.setdefault(lammps if kinds[el].startswith("lammps") else kinds[el], []).append(el)
    return out


def labels_caption(sources: dict[str, tuple]) -> str:
    """Caption text on the reference labels of a figure's elements. One labeler for all: "Reference labels:
    <universal.describe sentence>." when it is a universal potential, else "" (the data-set table names it).
    Several: which element used which, then what each surrogate is ("Labels: SevenNet-0 surrogate: Mn Hf; lammps
    EAM/MEAM: Cu Ag Au. SevenNet-0 surrogate: SevenNet-0 (sevenn, checkpoint 7net-0), a universal potential used
    as a surrogate for DFT, not DFT.")."""
    from mlffbench.data.labelers.universal import describe

    by_kind = labels_by_kind(sources)
    sentences = {labeler_kind(*src): describe(universal_spec(src[0])) for src in sources.values()
                 if universal_spec(src[0])}
    if len(by_kind) <= 1:
        return f"Reference labels: {next(iter(sentences.values()))}." if sentences else ""
    return ("Labels: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in by_kind.items()) + ". "
            + " ".join(f"{k}: {sentence}." for k, sentence in sentences.items())).strip()


def _z_sorted(symbols) -> list[str]:
    return sorted(symbols, key=lambda e: atomic_numbers.get(e, 999))
