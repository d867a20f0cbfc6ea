"""The training evidence of epoch-trained fits (``result["training"]``, ``models.training.record``): the marks of a
budget-limited or diverged fit wherever its numbers are shown, the training table (text and report) and the
training curves (validation force error vs wall time and vs epoch).

Results of families that are not epoch-trained, and runs made before the training protocol, have no "training"
record: every function here takes that absence as "nothing to say"."""

from __future__ import annotations

import math

from mlffbench.report_text import format_table

#: a fit its budget (max_epochs / max_minutes) stopped while the validation error was still falling
BUDGET_MARK = "†"
#: a fit whose loss became non-finite (the last good epoch is scored)
DIVERGED_MARK = "×"
MARKS = ((BUDGET_MARK, "training stopped by its budget while still improving (x % per 10 epochs)"),
         (DIVERGED_MARK, "training diverged (non-finite loss; the last good epoch is scored)"))
TITLE = ("Training of the epoch-trained fits (validation error of the held-out validation frames; "
         f"{BUDGET_MARK} budget-limited, {DIVERGED_MARK} diverged)")


def of(result: dict | None) -> dict | None:
    """The training record of a stored result, None where it has none."""
    rec = (result or {}).get("training")
    return rec if isinstance(rec, dict) else None


def brief(rec: dict | None) -> dict | None:
    """The record without its per-epoch curve (what a table row keeps)."""
    return None if rec is None else {k: v for k, v in rec.items() if k != "curve"}


def mark(rec: dict | None) -> str:
    if not rec:
        return ""
    return {"budget": BUDGET_MARK, "diverged": DIVERGED_MARK}.get(rec.get("status"), "")


def _max_epochs(rec: dict):
    return (rec.get("protocol") or {}).get("max_epochs")


def improvement_text(rec: dict) -> str:
    """The relative fall of the best validation value over the last 10 epochs, as a percentage."""
    per10 = rec.get("improvement_last_10_epochs")
    if per10 is None or not isinstance(per10, (int, float)) or not math.isfinite(per10):
        return "-"
    return f"{100 * per10:.1f} %"


def reason(rec: dict | None) -> str | None:
    """Why a fit is marked (one line), None for a converged fit or no record."""
    if not rec:
        return None
    status = rec.get("status")
    epochs, top = rec.get("epochs"), _max_epochs(rec)
    ran = f"{epochs}/{top}" if top else f"{epochs}"
    if status == "budget":
        per10 = improvement_text(rec)
        still = (f"{per10} per 10 epochs" if per10 != "-" else
                 f"improvement per 10 epochs not measured: {epochs} epochs")
        return (f"training stopped by its budget ({rec.get('stopped_by') or '?'}, {ran} epochs) while still "
                f"improving ({still})")
    if status == "diverged":
        good = rec.get("last_good_epoch")
        return (f"training diverged (non-finite loss) after {ran} epochs; epoch "
                f"{rec.get('best_epoch') if rec.get('best_epoch') is not None else good} scored")
    return None


def notes(items) -> str:
    """Footnote lines "† data set model: reason" for ``items`` of (data set, model, record)."""
    out = ""
    for dataset, model, rec in items:
        why = reason(rec)
        if why:
            out += f"\n{mark(rec)} {dataset} {model}: {why}"
    return out


def marked_results(results) -> list[tuple[dict, dict]]:
    """(result, record) of every budget-limited or diverged fit among ``results``."""
    return [(r, rec) for r in results for rec in [of(r)] if mark(rec)]


# -- the training table -----------------------------------------------------------------------------------------
HEADER = ["data set", "model", "task", "status", "stopped by", "epochs", "best", "best valid F", "improv.",
          "wall", "device", "precision", "train/valid"]
#: "nan" would print as "-" in a text table (report_text): say what it is
STOPPED_BY = {"nan": "non-finite"}
UNITS = ["", "", "", "", "", "run/max", "epoch", "meV/Å", "per 10 ep", "min", "", "", "frames"]


def best_valid_forces(rec: dict) -> float | None:
    """The validation force error (meV/Å) of the best epoch, else the lowest of the curve."""
    curve = rec.get("curve") or []
    by_epoch = {e.get("epoch"): (e.get("valid") or {}).get("forces") for e in curve}
    v = by_epoch.get(rec.get("best_epoch"))
    if v is None or not _finite(v):
        vals = [x for x in by_epoch.values() if _finite(x)]
        v = min(vals) if vals else None
    if v is None and rec.get("monitor") == "forces" and _finite(rec.get("best_valid")):
        v = rec["best_valid"]
    return None if v is None else float(v)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def row(result: dict, rec: dict) -> list:
    proto = rec.get("protocol") or {}
    top = proto.get("max_epochs")
    f = best_valid_forces(rec)
    metric = rec.get("curve_metric") or "mae"
    wall = rec.get("wall_s")
    return [result.get("dataset"), result.get("label") or result.get("model"), result.get("task") or "-",
            (rec.get("status") or "?") + mark(rec), STOPPED_BY.get(rec.get("stopped_by"), rec.get("stopped_by") or "-"),
            f"{rec.get('epochs', '-')}/{top if top else '-'}",
            rec.get("best_epoch") if rec.get("best_epoch") is not None else "-",
            "-" if f is None else f"{f:.2f}" + (" (rmse)" if metric == "rmse" else ""),
            improvement_text(rec), "-" if not _finite(wall) else f"{wall / 60:.1f}", rec.get("device") or "-",
            proto.get("precision") or "-", f"{rec.get('n_train', '-')}/{rec.get('n_valid', '-')}"]


def trained(results) -> list[tuple[dict, dict]]:
    """(result, record) of every result with a training record, in order (data set, model, task)."""
    return [(r, rec) for r in results for rec in [of(r)] if rec is not None]


def rows(results) -> list[list]:
    return [row(r, rec) for r, rec in trained(results)]


def table(results) -> str:
    """The text table, empty string where no result has a training record."""
    body = rows(results)
    if not body:
        return ""
    out = format_table(HEADER, UNITS, body, text_columns=(0, 1, 2, 3, 4, 10, 11))
    out += ("\nimprov.: relative fall of the best validation value over the last 10 epochs ('-': 10 epochs or "
            "fewer); best valid F: validation force MAE (component-wise) at the scored epoch")
    out += notes((r.get("dataset"), r.get("label") or r.get("model"), rec) for r, rec in trained(results))
    return out


def text_section(results) -> str:
    """Title and table for summary.txt (empty where nothing was epoch-trained)."""
    t = table(results)
    return f"{TITLE}\n{t}" if t else ""


# -- the training curves ----------------------------------------------------------------------------------------
def curves(results) -> dict[str, list[tuple[str, list, list, list]]]:
    """{data set: [(model, epochs, wall minutes, validation forces meV/Å)]} of the results whose curve has
    validation force errors (finite points only)."""
    out: dict[str, list] = {}
    for r, rec in trained(results):
        pts = [(e.get("epoch"), e.get("wall_s"), (e.get("valid") or {}).get("forces")) for e in rec.get("curve") or []]
        pts = [(ep, w, f) for ep, w, f in pts if _finite(ep) and _finite(w) and _finite(f) and f > 0]
        if pts:
            out.setdefault(r.get("dataset"), []).append(
                (r.get("label") or r.get("model"), [p[0] for p in pts], [p[1] / 60 for p in pts], [p[2] for p in pts]))
    return out


def curve_results(run) -> list[dict]:
    """The results whose curves the figure draws: the accuracy task's (one fit per data set and model), else
    every task's."""
    acc = [r for r in run.results.get("accuracy", []) if of(r)]
    return acc or [r for rs in run.results.values() for r in rs if of(r)]


def figure(results):
    """One row per data set, two panels: validation force error vs wall time and vs epoch (log y). None where no
    fit has a curve."""
    from mlffbench.report.figures import model_colours, plt

    data = curves(results)
    if not data:
        return None
    colours = model_colours(m for series in data.values() for m, *_ in series)
    marks = {(r.get("dataset"), r.get("label") or r.get("model")): mark(of(r)) for r in results}
    fig, axes = plt.subplots(len(data), 2, figsize=(9, 2.8 * len(data)), squeeze=False)
    for (dataset, series), (ax_t, ax_e) in zip(data.items(), axes):
        for model, epochs, wall, forces in series:
            label = model + marks.get((dataset, model), "")
            ax_t.plot(wall, forces, "-", marker=".", ms=3, color=colours[model], label=label)
            ax_e.plot(epochs, forces, "-", marker=".", ms=3, color=colours[model], label=label)
        for ax, xlabel in ((ax_t, "wall time (min)"), (ax_e, "epoch")):
            ax.set_yscale("log")
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("valid F MAE (meV/Å)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="both", alpha=0.3)
        ax_t.set_title(f"{dataset}: validation force error vs wall time", fontsize=9)
        ax_e.set_title(f"{dataset}: vs epoch", fontsize=9)
        ax_e.legend(fontsize=7)
    fig.tight_layout()
    return fig


def section(run, numbers: dict) -> str | None:
    """The report's training section: the table, the marks' reasons and the curves (an empty state where no fit
    has a curve). None where no result of the run has a training record (no epoch-trained family, older runs)."""
    from mlffbench.report import html as H
    from mlffbench.report.figures import png_base64

    results = [r for rs in run.results.values() for r in rs]
    found = trained(results)
    if not found:
        return None
    numbers["training"] = [{"task": r.get("task"), "dataset": r.get("dataset"), "model": r.get("label"),
                            **(brief(rec) or {}), "curve": rec.get("curve") or []} for r, rec in found]
    fig = figure(curve_results(run))
    body = (H.figure(png_base64(fig), "training-curves", "validation force error (meV/Å, log) of the held-out "
                     "validation frames vs wall time and vs epoch, one row per data set (accuracy fits)")
            if fig is not None else '<p class="note">No training curves: no fit recorded validation force errors '
                                    "per epoch.</p>")
    body += H.table(HEADER, [[x if x is not None else "-" for x in row(r, rec)] for r, rec in found])
    why = notes((r.get("dataset"), r.get("label"), rec) for r, rec in found).strip()
    body += ('<p class="note">Improvement: relative fall of the best validation value over the last 10 epochs. '
             + "".join(f"{H.esc(x)}<br>" for x in why.splitlines()) + "</p>")
    return body
