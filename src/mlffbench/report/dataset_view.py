"""One report section per data set outside the elemental collections (a user's files, a multi-element alloy, a
molecule): what it is, every model's errors overall, per group and per element (tables and bars), parity per
group, its learning curves, hold-outs and crash tests."""

from __future__ import annotations

from pathlib import Path

from mlffbench.datasets import describe_split
from mlffbench.report import html as H
from mlffbench.report import plots, training
from mlffbench.report.collect import METRICS, RunData
from mlffbench.report.figures import png_base64
from mlffbench.report.sections import cited, surrogate_note


def _describe(d: dict) -> str:
    prov = d.get("provenance") or {}
    files = prov.get("files") or []
    items = [("source", d.get("source")), ("elements", "-".join(d.get("elements") or [])),
             ("frames", d.get("n_frames")), ("groups", ", ".join(f"{g} ({n})" for g, n in
                                                                   (d.get("groups") or {}).items())),
             ("cell", "periodic" if d.get("periodic") else "non-periodic (no stress)"),
             ("split", describe_split(d.get("base_split"))), ("reference calculator", (d.get("reference") or {}).get("name") or "none"),
             ("level of theory", prov.get("level_of_theory") or "not stated"), ("fingerprint", d.get("fingerprint")),
             ("files", "; ".join(f"{Path(f['path']).name} ({f['subset']}, {f['frames']} frames)" for f in files))]
    declared = {k: v for k, v in (prov.get("units_declared") or {}).items() if v is not None}
    items += [(k, prov[k]) for k in ("citation", "licence") if prov.get(k)]
    items += [("declared", ", ".join(f"{k} {v}" for k, v in declared.items()))] if declared else []
    return '<table class="meta">' + "".join(f'<tr><th class="t">{H.esc(k)}</th><td>{H.esc(v)}</td></tr>'
                                            for k, v in items if v not in (None, "")) + "</table>"


def _bars(rows, attr: str, what: str, name: str) -> str:
    data = {r.model: {k: 1e3 * v["force_mae"] for k, v in getattr(r, attr).items()} for r in rows}
    if not any(len(v) > 1 for v in data.values()):
        return ""
    fig = plots.breakdown_figure(data, "force MAE (meV/Å, log)", f"{name}: force MAE per {what}")
    return H.figure(png_base64(fig), f"bars-{name}-{what}", f"force MAE per {what} and model")


def _parity(run: RunData, run_dir: Path, name: str, max_frames: int, periodic: bool, log,
            numbers: dict | None = None) -> str:
    """Parity per group of one data set, from the predictions its accuracy jobs stored (no model is loaded)."""
    from mlffbench.report.predictions import (missing_note, not_plotted, parity_by_group, record,
                                              stored_test_set, warn_missing)

    parities, problems = [], []
    for r in (r for r in run.results.get("accuracy", []) if r["dataset"] == name):
        try:
            mine = parity_by_group(stored_test_set(run_dir, r), name, r["label"], max_frames)
            parities += mine
            if numbers is not None:
                numbers.setdefault("parity", []).extend(record(r, p, run_dir) for p in mine)
        except Exception as exc:  # noqa: BLE001 - no stored predictions (older run) or a changed file: a note
            problems.append(not_plotted(f"{name} {r['label']}", exc))
        log(f"parity {name} {r['label']}")
    body = ""
    for q, title, unit in plots.PARITY_QUANTITIES:
        if parities and (q != "stress" or periodic):
            body += H.figure(png_base64(plots.parity_figure(parities, q, panel="group"), tight=False), f"parity-{name}-{q}",
                             f"{title} ({unit}), one panel per group; stored predictions, at most {max_frames} "
                             "test frames per model drawn (MAE: full test set)")
    if problems:
        warn_missing(problems)
        body += "<p class=\"note\">" + H.esc(missing_note(problems)) + "</p>"
    return body


def dataset_sections(run: RunData, run_dir: Path, max_frames: int, parity: bool, log,
                     numbers: dict | None = None) -> list[tuple[str, str, str]]:
    """(anchor, heading, html) of every data set outside the elemental collections."""
    in_collections = {n for ns in run.elemental_collections().values() for n in ns}
    out = []
    for name, d in run.datasets.items():
        if name in in_collections:
            continue
        body = _describe(d) + surrogate_note(run, [name])  # "" unless a universal potential made the labels
        rows = [r for r in run.accuracy if r.dataset == name]
        if rows:
            s = METRICS["stress_mae"].factor
            body += "<h3>Accuracy</h3>" + H.table(
                ["model", "train", "test", "F MAE meV/Å", "F %", "E MAE meV/atom", "E %", "S MAE GPa", "S %",
                 "fit s"], [[r.model + training.mark(r.training), r.n_train, r.n_test, 1e3 * r.force_mae, r.force_percent, 1e3 * r.energy_mae,
                             r.energy_percent, r.stress_mae * s, r.stress_percent, r.fit_s] for r in rows])
            body += cited(rows)
            why = training.notes((r.dataset, r.model, r.training) for r in rows).strip()
            if why:
                body += '<p class="note">' + "<br>".join(H.esc(x) for x in why.splitlines()) + "</p>"
            paths = [[r.model, "accuracy", g, p["frames"], 1e3 * p["barrier_ref_eV"], 1e3 * p["barrier_model_eV"],
                      1e3 * p["barrier_error_eV"]] for r in rows for g, p in (r.paths or {}).items()]
            paths += [[r.model, f"hold-out from {r.train}", g, p["frames"], 1e3 * p["barrier_ref_eV"],
                       1e3 * p["barrier_model_eV"], 1e3 * p["barrier_error_eV"]]
                      for r in run.transfer if r.dataset == name for g, p in (r.paths or {}).items()]
            if paths:
                body += ("<h3>Reaction barriers along the given paths</h3><p class=\"note\">Barrier = highest energy "
                         "minus the first frame's, along the frames in file order.</p>" + H.table(
                             ["model", "trained", "path (group)", "frames", "reference meV", "model meV",
                              "error meV"], paths))
            for attr, what in (("by_group", "group"), ("by_element", "element")):
                table_rows = [[r.model, k, v["n_test"], 1e3 * v["force_mae"], v["force_percent"], 1e3 * v["energy_mae"],
                               v["energy_percent"]] for r in rows for k, v in getattr(r, attr).items()]
                if len({row[1] for row in table_rows}) > 1:
                    body += f"<h3>Per {what}</h3>" + _bars(rows, attr, what, name) + H.table(
                        ["model", what, "test frames", "F MAE meV/Å", "F %", "E MAE meV/atom", "E %"], table_rows,
                        elements=[[row[1]] if what == "element" else d.get("elements") or [] for row in table_rows])
            if parity:
                body += "<h3>Parity</h3>" + _parity(run, run_dir, name, max_frames, bool(d.get("periodic")), log, numbers)
        curves = [c for c in run.learning_curve if c.dataset == name]
        if curves:
            raw = [r for r in run.results.get("learning_curve", []) if r["dataset"] == name]
            body += "<h3>Learning curves</h3>" + H.figure(png_base64(plots.learning_curve_figure(curves, raw)),
                                                          f"learning-{name}", "log-log; b = data training rate")
        transfer = [r for r in run.transfer if r.dataset == name]
        if transfer:
            body += "<h3>Group hold-out</h3>" + H.table(
                ["model", "train", "test", "n train", "n test", "F MAE meV/Å", "F %", "E MAE meV/atom", "E %"],
                [[r.model, r.train, r.test, r.n_train, r.n_test, 1e3 * r.force_mae, r.force_percent,
                  1e3 * r.energy_mae, r.energy_percent] for r in transfer])
        na = [x for x in run.not_run if x["dataset"] == name]
        if na:
            body += "<h3>Not run</h3>" + H.table(["model", "task", "why (n/a)"],
                                                 [[x["model"], x["task"], x["reason"]] for x in na])
        out.append((f"dataset-{name}", f"Data set: {name}", body))
    return out
