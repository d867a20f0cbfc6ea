"""Plots of observables results (phonons, EOS, RDF, MD stability), drawn defensively from the stored shape:

    {"status": "ok"|"failed", "error", "wall_s", "model": {...}, "reference": {...}, "errors": {...}}

phonons  model/reference: distances, frequencies_THz (n_q x n_branches, or one such block per path segment),
         labels, label_distances, dos_THz, dos, imaginary, min_frequency_THz
eos      model/reference: volumes, energies, v0, e0, B_GPa, a0
rdf      {"temperatures": {label: {"r", "g_model", "g_reference", "w1"}}} (top level or under "model")
stability model/reference: {"runs": [{protocol, target_K, survived, time_to_failure_ps, reason, simulated_ps}],
         "nve_drift_meV_atom_ps"}

Input: a list of observables entries {"element", "label", "observables": {name: result}}. Every figure has one
panel per element with the models overlaid; a missing or failed side is skipped (its reason goes in the panel)."""

from __future__ import annotations

import math

import numpy as np

from mlffbench.report.figures import model_colours, plt

REFERENCE_STYLE = {"color": "black", "ls": "--", "lw": 1.0}


def _arr(x) -> np.ndarray:
    """Float array from JSON lists (None -> NaN); empty array when unusable."""
    try:
        return np.array([np.nan if v is None else v for v in x] if isinstance(x, list) and x and not
                        isinstance(x[0], list) else x, dtype=float)
    except (TypeError, ValueError):
        try:
            return np.array([[np.nan if v is None else v for v in row] for row in x], dtype=float)
        except (TypeError, ValueError):
            return np.array([])


def _side(result, side: str) -> dict | None:
    """The model/reference side of a result, or None when it is missing or only holds an error."""
    value = result.get(side) if isinstance(result, dict) else None
    return value if isinstance(value, dict) and set(value) - {"error", "traceback"} else None


def entries_with(observables: list[dict], name: str) -> list[tuple[str, str, dict]]:
    """(element, model, result) for every entry that has observable ``name``."""
    out = []
    for o in observables:
        result = (o.get("observables") or {}).get(name)
        if isinstance(result, dict):
            out.append((str(o.get("element")), str(o.get("label") or o.get("model")), result))
    return out


def _panels(elements: list[str], ncols: int = 3, size=(4.2, 3.2)):
    n = max(len(elements), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.5), squeeze=False)
    for ax in list(axes.flat)[len(elements):]:
        ax.axis("off")
    return fig, dict(zip(elements, axes.flat))


def _element_panels(observables: list[dict], name: str):
    """(rows, model colours, figure, {element: axis}): one panel per element that has observable ``name``."""
    rows = entries_with(observables, name)
    fig, axes = _panels(list(dict.fromkeys(e for e, _, _ in rows)))
    return rows, model_colours(m for _, m, _ in rows), fig, axes


def _failure_note(ax, notes: list[str]) -> None:
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes)[:300], transform=ax.transAxes, fontsize=6, color="firebrick",
                va="bottom", wrap=True)


def _band_blocks(side: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(distances (n_q,), frequencies (n_q, n_branches))] per path segment."""
    d, f = side.get("distances"), side.get("frequencies_THz")
    if d is None or f is None:
        return []
    if isinstance(d, list) and d and isinstance(d[0], list):  # one block per segment
        return [(_arr(di), _arr(fi)) for di, fi in zip(d, f)]
    return [(_arr(d), _arr(f))]


def phonon_figure(observables: list[dict]):
    """Phonon bands (TM23 Fig 7): reference dashed black, models coloured; imaginary modes are below zero."""
    rows, colours, fig, axes = _element_panels(observables, "phonons")
    for element, ax in axes.items():
        notes, ref_done, ticks = [], False, None
        for _, model, result in (r for r in rows if r[0] == element):
            ref, mod = _side(result, "reference"), _side(result, "model")
            if result.get("status") != "ok":
                notes.append(f"{model}: {result.get('error') or 'failed'}")
            if ref and not ref_done:
                for i, (d, f) in enumerate(_band_blocks(ref)):
                    if d.size and f.size:
                        ax.plot(d, f, **REFERENCE_STYLE, label="reference" if i == 0 else None)
                ticks, ref_done = (ref.get("label_distances"), ref.get("labels")), True
            if mod:
                for i, (d, f) in enumerate(_band_blocks(mod)):
                    if d.size and f.size:
                        lines = ax.plot(d, f, color=colours[model], lw=1.0)
                        if i == 0:
                            imag = " (imaginary)" if mod.get("imaginary") else ""
                            lines[0].set_label(model + imag)
                if ticks is None:
                    ticks = (mod.get("label_distances"), mod.get("labels"))
        if ticks and ticks[0] and ticks[1] and len(ticks[0]) == len(ticks[1]):
            ax.set_xticks([float(x) for x in ticks[0]], [str(s).replace("GAMMA", "Γ") for s in ticks[1]],
                          fontsize=7)
            for x in ticks[0]:
                ax.axvline(float(x), color="#bbbbbb", lw=0.5)
        ax.axhline(0, color="#888888", lw=0.5)
        ax.set_ylabel("frequency (THz)", fontsize=8)
        ax.set_title(element, fontsize=10)
        ax.legend(fontsize=6, loc="upper right")
        _failure_note(ax, notes)
    fig.suptitle("Phonon bands (reference dashed)", fontsize=11)
    fig.tight_layout()
    return fig


def eos_figure(observables: list[dict]):
    """Equation of state E(V): reference dashed, models coloured; B (GPa) and V0 in the legend."""
    rows, colours, fig, axes = _element_panels(observables, "eos")
    for element, ax in axes.items():
        notes, ref_done = [], False
        for _, model, result in (r for r in rows if r[0] == element):
            if result.get("status") != "ok":
                notes.append(f"{model}: {result.get('error') or 'failed'}")
            for side, style, name in (("reference", REFERENCE_STYLE, "reference"),
                                      ("model", {"color": colours[model], "lw": 1.2}, model)):
                data = _side(result, side)
                if not data or (side == "reference" and ref_done):
                    continue
                v, e = _arr(data.get("volumes", [])), _arr(data.get("energies", []))
                if v.size and v.shape == e.shape:
                    b, v0 = data.get("B_GPa"), data.get("v0")
                    extra = f" B={b:.0f} GPa" if isinstance(b, (int, float)) else ""
                    extra += f" V0={v0:.2f}" if isinstance(v0, (int, float)) else ""
                    ax.plot(v, e, marker="o" if side == "model" else None, ms=2.5, label=name + extra, **style)
                    ref_done = ref_done or side == "reference"
        ax.set_xlabel("volume (Å³)", fontsize=8)
        ax.set_ylabel("energy (eV)", fontsize=8)
        ax.set_title(element, fontsize=10)
        ax.legend(fontsize=6)
        _failure_note(ax, notes)
    fig.suptitle("Equations of state (reference dashed)", fontsize=11)
    fig.tight_layout()
    return fig


def _rdf_temperatures(result: dict) -> dict:
    """{temperature label: {r, g_model, g_reference, w1}}: the observable keeps the paired curves under
    ``errors.temperatures`` (``model.temperatures`` holds one side's g only)."""
    for holder in (result.get("errors"), result, result.get("model")):
        temps = holder.get("temperatures") if isinstance(holder, dict) else None
        if isinstance(temps, dict):
            return temps
    return {}


def rdf_figure(observables: list[dict]):
    """Radial distribution functions per element and temperature: reference dashed, models coloured (W1 in the
    legend)."""
    rows = entries_with(observables, "rdf")
    panels = list(dict.fromkeys(f"{e} {t}" for e, _, res in rows for t in _rdf_temperatures(res)))
    colours = model_colours(m for _, m, _ in rows)
    fig, axes = _panels(panels or ["rdf"])
    for key, ax in axes.items():
        ref_done = False
        for element, model, result in rows:
            for t, d in _rdf_temperatures(result).items():
                if f"{element} {t}" != key or not isinstance(d, dict):
                    continue
                r = _arr(d.get("r", []))
                gr, gm = _arr(d.get("g_reference", [])), _arr(d.get("g_model", []))
                if not ref_done and r.shape == gr.shape and r.size:
                    ax.plot(r, gr, **REFERENCE_STYLE, label="reference")
                    ref_done = True
                if r.shape == gm.shape and r.size:
                    w1 = d.get("w1")
                    ax.plot(r, gm, color=colours[model], lw=1.1,
                            label=model + (f" (W1={w1:.3g})" if isinstance(w1, (int, float)) else ""))
        ax.set_xlabel("r (Å)", fontsize=8)
        ax.set_ylabel("g(r)", fontsize=8)
        ax.set_title(key, fontsize=10)
        ax.legend(fontsize=6)
    fig.suptitle("Radial distribution functions (reference dashed)", fontsize=11)
    fig.tight_layout()
    return fig


def stability_figure(observables: list[dict]):
    """Crash test: time to failure vs target temperature; a run that survived is an open triangle at its full
    simulated time, a failure a filled cross at its time to failure. Reference black."""
    rows, colours, fig, axes = _element_panels(observables, "stability")
    for element, ax in axes.items():
        ref_done = False
        for i, (_, model, result) in enumerate(r for r in rows if r[0] == element):
            for side, colour, name in (("reference", "black", "reference"), ("model", colours[model], model)):
                data = _side(result, side)
                if not data or (side == "reference" and ref_done):
                    continue
                ref_done = ref_done or side == "reference"
                runs = [r for r in data.get("runs") or [] if isinstance(r, dict)]
                ok = [(r.get("target_K"), r.get("simulated_ps")) for r in runs if r.get("survived")]
                bad = [(r.get("target_K"), r.get("time_to_failure_ps")) for r in runs if not r.get("survived")]
                ok = [(x, y) for x, y in ok if x is not None and y is not None]
                bad = [(x, y) for x, y in bad if x is not None and y is not None]
                drift = data.get("nve_drift_meV_atom_ps")
                label = name + (f" (NVE drift {drift:.2g} meV/atom/ps)" if isinstance(drift, (int, float)) else "")
                shift = 1 + 0.01 * (i + (side == "model"))  # nudge overlapping markers apart
                if ok:
                    ax.scatter([x * shift for x, _ in ok], [y for _, y in ok], marker="^", facecolors="none",
                               edgecolors=colour, s=40, label=label + " survived")
                if bad:
                    ax.scatter([x * shift for x, _ in bad], [y for _, y in bad], marker="X", color=colour, s=40,
                               label=label + " failed")
        ax.set_xlabel("target temperature (K)", fontsize=8)
        ax.set_ylabel("time to failure (ps)", fontsize=8)
        ax.set_title(element, fontsize=10)
        ax.legend(fontsize=6)
    fig.suptitle("MD crash test: time to failure vs temperature (open triangle = survived the whole run)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def structure_eos_figure(observables: list[dict]):
    """MS25 Fig 5c: the lattice constant of every reference structure (e.g. each HEA composition), model against
    reference, one panel per data set, models overlaid."""
    rows = [(str(o.get("dataset")), str(o.get("label") or o.get("model")), r)
            for o in observables if isinstance(r := (o.get("observables") or {}).get("structure_eos"), dict)]
    datasets = list(dict.fromkeys(d for d, _, _ in rows))
    colours = model_colours(m for _, m, _ in rows)
    fig, axes = _panels(datasets)
    for dataset, ax in axes.items():
        lo, hi = np.inf, -np.inf
        for _, model, result in (r for r in rows if r[0] == dataset):
            pts = [(s["reference"]["a0"], s["model"]["a0"]) for s in result.get("structures", [])
                   if s.get("status") == "ok"]
            if pts:
                x, y = np.array(pts).T
                mean = (result.get("errors") or {}).get("a0_percent")
                ax.scatter(x, y, s=18, color=colours[model],
                           label=f"{model} ({mean:.2f} %)" if mean is not None else model)
                lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        if np.isfinite(lo):
            pad = 0.1 * (hi - lo or 0.01)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], **REFERENCE_STYLE)
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("a0 reference (Å)", fontsize=8)
        ax.set_ylabel("a0 model (Å)", fontsize=8)
        ax.legend(fontsize=6, title="model (mean |error|)", title_fontsize=6)
    fig.suptitle("Lattice constant by EOS per structure (MS25 Fig 5c)", fontsize=11)
    fig.tight_layout()
    return fig


OBSERVABLE_FIGURES = {"phonons": phonon_figure, "eos": eos_figure, "rdf": rdf_figure, "stability": stability_figure,
                      "structure_eos": structure_eos_figure}
