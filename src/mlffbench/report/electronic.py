"""Report of the ``electronic`` task (Metal-43 SI Figs 11-18): small multiples of S(Δ) − S(0) per element (one
curve per smearing method), a table of the sensitivity and DOS(E_F) per element, and the correlation across
elements of each of them with every model's force % error from the accuracy task of the same run (Pearson r and
Spearman ρ, each with a 95 % bootstrap interval over the elements, seeded).

The results are the stored job results of the task (``RunData.electronic``); nothing is recomputed."""

from __future__ import annotations

import math

import numpy as np

from mlffbench.report import html as H
from mlffbench.report.figures import plt, png_base64

MIN_ELEMENTS = 3  # below this a correlation is "not enough data"
N_RESAMPLES = 1000
LEVEL = 0.95
METHOD_STYLE = {"fermi-dirac": ("tab:blue", "-"), "gaussian": ("tab:orange", "--"),
                "methfessel-paxton": ("tab:green", ":")}
QUANTITIES = {"sensitivity": "sensitivity |S(+0.2)−S(−0.2)|/0.4 (eV/atom per eV)",
              "dos_ef": "DOS(E_F) (states/eV/atom)"}


# ---------------------------------------------------------------------------------------------- figure


def curves_figure(results: list[dict], key: str = "S_minus_S0", ncols: int = 6):
    """One panel per element: ``key`` (S_minus_S0: absolute eigenvalues, the paper's; S_ef_minus_S0: measured from
    E_F) against the Fermi-level shift, one curve per smearing method."""
    n = max(1, len(results))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.3 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    for ax, r in zip(axes.flat, results):
        for method, m in r["methods"].items():
            if m.get("status") != "ok":
                continue
            colour, style = METHOD_STYLE.get(method, (None, "-"))
            ax.plot(r["shifts"], m[key], style, color=colour, lw=1.3, label=method)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{r['element']} ({r['lattice']}, {r['n_atoms']} at.)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("S(Δ) − S(0) (eV/atom)" if key == "S_minus_S0" else "S_F(Δ) − S_F(0) (eV/atom)", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("Fermi-level shift Δ (eV)", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1.0))
    what = "absolute eigenvalues (GPAW's zero)" if key == "S_minus_S0" else "eigenvalues measured from E_F"
    fig.suptitle(f"Sum of eigenvalues below E_F + Δ, {what} (Metal-43 SI Figs 11-18)", fontsize=10, y=1.04)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- correlations


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (NaN where x or y is constant)."""
    constant = (np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0)
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(constant, np.nan, (x * y).sum(axis=-1) / np.where(constant, 1.0, den))


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return _pearson(rankdata(x, axis=-1), rankdata(y, axis=-1))


def correlation(x, y, seed: int = 0) -> dict:
    """Pearson r and Spearman ρ of paired values, each with a percentile bootstrap interval over the pairs
    (``N_RESAMPLES`` draws from ``seed``; draws where x or y is constant are left out, and with fewer than half
    left the interval is unknown). Fewer than ``MIN_ELEMENTS`` pairs: ``status`` "not enough data"."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    out = {"n": n, "pearson": None, "pearson_lo": None, "pearson_hi": None, "spearman": None, "spearman_lo": None,
           "spearman_hi": None}
    if n < MIN_ELEMENTS:
        return {**out, "status": "not enough data"}
    draws = np.random.default_rng([seed, n]).integers(0, n, size=(N_RESAMPLES, n))
    for name, f in (("pearson", _pearson), ("spearman", _spearman)):
        out[name] = float(f(x, y))
        samples = f(x[draws], y[draws])
        samples = samples[np.isfinite(samples)]
        if samples.size >= N_RESAMPLES / 2:
            tail = 100 * (1 - LEVEL) / 2
            lo, hi = np.clip(np.percentile(samples, [tail, 100 - tail]), -1.0, 1.0)  # rounding can pass ±1
            out[f"{name}_lo"], out[f"{name}_hi"] = float(lo), float(hi)
    return {**out, "status": "ok" if math.isfinite(out["pearson"]) else "constant values"}


def scalars(results: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{quantity: {method: {data set: value}}} of the finished methods."""
    out: dict = {q: {} for q in QUANTITIES}
    for r in results:
        for method, m in r["methods"].items():
            if m.get("status") == "ok":
                for q in QUANTITIES:
                    out[q].setdefault(method, {})[r["dataset"]] = m[q]
    return out


def correlations(results: list[dict], errors: dict[str, dict[str, float]], seed: int = 0) -> list[dict]:
    """One row per (quantity, smearing method, model): the correlation across the data sets both have.
    ``errors``: {model: {data set: force % error}}."""
    element = {r["dataset"]: r["element"] for r in results}
    rows = []
    for quantity, per_method in scalars(results).items():
        for method, values in per_method.items():
            for model, errs in errors.items():
                common = [d for d in values if d in errs]
                c = correlation([values[d] for d in common], [errs[d] for d in common], seed)
                rows.append({"quantity": quantity, "method": method, "model": model,
                             "elements": [element[d] for d in common], **c})
    return rows


# ---------------------------------------------------------------------------------------------- section


def _fmt_ci(lo, hi) -> str:
    return "-" if lo is None or hi is None else f"{lo:+.2f} to {hi:+.2f}"


def section(run, numbers: dict, errors: dict[str, dict[str, float]]) -> str | None:
    """The HTML body of the section (None when the run has neither results nor refusals of the task);
    ``errors``: {model: {data set: force % error}} of the learned models. Adds ``numbers["electronic"]``."""
    results = sorted(run.electronic, key=lambda r: r["dataset"])
    na = [x for x in run.not_run if x["task"] == "electronic"]
    failed = [j for j in run.failed if j.name.startswith("electronic:")]
    if not results and not na and not failed:
        return None
    seed = int((run.provenance.get("config") or {}).get("seed") or 0)
    body = ('<p class="note">Per element: one GPAW SCF (PBE, plane waves, no spin polarisation) of the primitive '
            "ground-state cell per smearing method, then S(Δ) = 2/N Σ<sub>nk</sub> w<sub>k</sub> "
            "f((ε<sub>nk</sub> − E<sub>F</sub> − Δ)/σ) ε<sub>nk</sub> on the frozen eigenvalues with that method's "
            "occupation function (rigid Fermi-level shift). Sensitivity = |S(+0.2) − S(−0.2)|/0.4 eV; with absolute "
            "eigenvalues it is ≈ E<sub>F</sub>·DOS(E<sub>F</sub>) in GPAW's energy zero, so DOS(E<sub>F</sub>) "
            "(zero-independent) is correlated too. Fe, Co and Ni are run non-magnetic (Metal-43 does not state its "
            "spin setting).</p>")
    if results:
        body += H.figure(png_base64(curves_figure(results)), "electronic-curves",
                         "S(Δ) − S(0) per element, one curve per smearing method (absolute eigenvalues, as the paper)")
        body += H.figure(png_base64(curves_figure(results, "S_ef_minus_S0")), "electronic-curves-ef",
                         "the same with eigenvalues measured from E_F (independent of the energy zero; ≈ DOS·Δ²/2)")
    rows = []
    for r in results:
        for method, m in r["methods"].items():
            ok = m.get("status") == "ok"
            rows.append([r["dataset"], r["element"], method, m.get("fermi_level") if ok else None,
                         m.get("sensitivity") if ok else None, m.get("slope_0") if ok else None,
                         m.get("dos_ef") if ok else None, m.get("curvature") if ok else None, r["n_atoms"],
                         "x".join(map(str, r["kpts"])), m.get("seconds") if ok else None, r["lattice_source"],
                         "ok" if ok else f"failed: {m.get('reason')}"])
    rows += [[x["dataset"], None, "all", None, None, None, None, None, None, None, None, None, f"n/a: {x['reason']}"]
             for x in na]
    rows += [[j.name.split(":")[1], None, "all", None, None, None, None, None, None, None, None, None,
              f"failed: {j.error}"] for j in failed]
    body += H.table(["data set", "element", "smearing", "E_F eV", "sensitivity eV/atom/eV", "dS/dΔ(0)",
                     "DOS(E_F) 1/eV/atom", "curvature 1/eV/atom", "atoms", "k-points", "SCF s", "lattice constant",
                     "status"], rows, fmt="{:.3f}",
                    elements=[(run.datasets.get(row[0]) or {}).get("elements") or [row[1] or ""] for row in rows])
    notes = [f"{r['dataset']}: {n}" for r in results for n in r.get("notes") or []]
    if notes:
        body += '<p class="note">' + H.esc("; ".join(notes)) + ".</p>"
    corr = correlations(results, errors, seed)
    if corr:
        crow = [[QUANTITIES[c["quantity"]], c["method"], c["model"], c["n"],
                 c["pearson"] if c["status"] == "ok" else c["status"], _fmt_ci(c["pearson_lo"], c["pearson_hi"]),
                 c["spearman"] if c["status"] == "ok" else c["status"], _fmt_ci(c["spearman_lo"], c["spearman_hi"])]
                for c in corr]
        body += ("<h3>Correlation with the force % error (accuracy task, this run)</h3>"
                 + H.table(["quantity", "smearing", "model", "n metals", "Pearson r", "95% CI", "Spearman ρ",
                            "95% CI"], crow, fmt="{:+.2f}")
                 + f'<p class="note">95 % percentile bootstrap over the metals ({N_RESAMPLES} draws, seed {seed}); '
                 f'fewer than {MIN_ELEMENTS} metals: "not enough data".</p>')
    elif results:
        body += '<p class="note">Correlation with the force % error: not enough data (no accuracy results of the ' \
                "same data sets in this run).</p>"
    numbers["electronic"] = {"results": results, "not_run": na, "correlations": corr}
    return body


def records(run) -> list[dict]:
    """CSV records (report.collect.number_records) of every scalar: split = smearing method."""
    out = []
    for r in run.electronic:
        for method, m in r["methods"].items():
            if m.get("status") != "ok":
                continue
            for stat, unit in (("sensitivity", "eV/atom/eV"), ("slope_0", "eV/atom/eV"), ("dos_ef", "1/eV/atom"),
                               ("curvature", "1/eV/atom"), ("fermi_level", "eV")):
                out.append({"run": run.name, "task": "electronic", "dataset": r["dataset"], "element": r["element"],
                            "model": "", "n_train": None, "split": method, "n_test": None, "quantity": "eigenvalue_sum",
                            "stat": stat, "value": m[stat], "unit": unit})
    return out
