"""One run -> one self-contained HTML report plus CSV and JSON of every number, regenerated from the store.

Nothing is retrained: error numbers come from the stored job results; parity plots recompute predictions from the
saved potentials (run_dir/models/<job_id>/potential.json) on the run's own data files."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from mlffbench.errors import MlffbenchError, one_line
from mlffbench.report import claims as claims_mod
from mlffbench.report import correlations as corr
from mlffbench.report import html as H
from mlffbench.report import observables as obs
from mlffbench.report import periodic, plots
from mlffbench.report.collect import METRICS, RunData, load_run, number_records, split_names, values
from mlffbench.report.figures import png_base64

HEATMAP_METRICS = ("force_percent", "energy_percent", "stress_percent", "force_mae", "energy_mae", "stress_mae")
CSV_FIELDS = ("run", "task", "split", "element", "model", "n_train", "n_test", "quantity", "stat", "value", "unit")


def _learned(data: dict, run: RunData) -> dict:
    """Heatmaps and correlations show learned models only (baselines would stretch the shared colour scale)."""
    baseline_labels = {r["label"] for rs in run.results.values() for r in rs if r.get("model") in claims_mod.BASELINES}
    return {m: v for m, v in data.items() if m not in baseline_labels}


def heatmap_figures(run: RunData, layout: str = "dblock") -> list[tuple[str, str, object]]:
    """(id, caption, figure) for every metric on the full split and force % on every transfer/temperature split;
    transfer splits of one metric share one colour range."""
    out = []
    for name in HEATMAP_METRICS:
        data = _learned(values(run, name, "full"), run)
        if data:
            m = METRICS[name]
            out.append((f"heatmap-{name}-full", f"{m.title} ({m.unit}), TM23 full split",
                        periodic.heatmap(data, layout=layout, title=f"{m.title}, full split", unit=m.unit)))
    transfer = [s for s in split_names(run) if "->" in s]
    datas = {s: _learned(values(run, "force_percent", s), run) for s in transfer}
    if any(datas.values()):
        lo, hi = periodic.shared_range(*datas.values())
        for s, data in datas.items():
            if data:
                out.append((f"heatmap-force_percent-{s}", f"force % error, trained {s.replace('->', ', tested ')} "
                            "(one colour range for all transfer maps)",
                            periodic.heatmap(data, layout=layout, title=f"force % error, {s}", unit="%",
                                             vmin=lo, vmax=hi)))
    return out


def _claims_html(found: list) -> str:
    rows = "".join(f'<tr><td class="t">{H.esc(c.claim)}</td><td class="t"><span class="status '
                   f'{c.status.replace(" ", "-")}">{H.esc(c.status)}</span></td><td class="t">{H.esc(c.evidence)}'
                   f"</td></tr>" for c in found)
    return ('<table><thead><tr><th class="t">TM23 claim</th><th class="t">this run</th><th class="t">evidence '
            f"(force errors; learned models only)</th></tr></thead><tbody>{rows}</tbody></table>")


def _meta_html(run: RunData) -> str:
    prov = run.provenance
    env = prov.get("environment") or {}
    counts = {s: sum(j.status == s for j in run.jobs) for s in ("done", "failed", "running", "pending")}
    items = [("run directory", str(run.run_dir)), ("config", (prov.get("config") or {}).get("name")),
             ("code version", prov.get("code_version")), ("jobs", ", ".join(f"{k} {v}" for k, v in counts.items())),
             ("elements", ", ".join(run.elements)), ("models", ", ".join(run.models)),
             ("packages", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())),
             ("python / machine", f"{env.get('python')} / {(env.get('hardware') or {}).get('cpus')} cpus"),
             ("report generated", dt.datetime.now().isoformat(timespec="seconds"))]
    rows = "".join(f'<tr><th class="t">{H.esc(k)}</th><td>{H.esc(v)}</td></tr>' for k, v in items)
    return f'<table class="meta">{rows}</table>'


def build_report(run_dir: str | Path, out: str | Path | None = None, *, parity: bool = True,
                 extra_properties: dict | None = None, max_parity_frames: int = 60, log=None) -> dict[str, Path]:
    """Write the report of ``run_dir``; returns {"html", "csv", "json"} paths. ``out`` is the HTML file
    (default run_dir/report/report.html); the CSV and JSON go beside it with the same stem."""
    log = log or (lambda msg: None)
    run = load_run(run_dir)
    html_path = Path(out) if out else Path(run_dir) / "report" / "report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise MlffbenchError(f"{html_path}: the report file must end in .html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    page = H.Page(f"mlffbench report: {run.name}")
    numbers: dict = {"run": run.name, "run_dir": str(run.run_dir), "provenance": run.provenance}
    found = claims_mod.check_claims(run)
    numbers["claims"] = [c.to_dict() for c in found]
    page.add("summary", "What this run shows", _claims_html(found) + '<p class="note">A claim is "supported" when '
             "it holds in every comparison the run allows, \"mixed\" when in some, \"not tested\" when the run lacks "
             "the data. Force % error = 100 MAE/MAV (TM23 Eq. 2).</p>")
    notes = run.provenance.get("protocol_notes") or []
    page.add("run", "Run and deviations from the paper protocols", _meta_html(run) + (
        "<ul>" + "".join(f"<li>{H.esc(n)}</li>" for n in notes) + "</ul>" if notes else ""))

    heatmaps = heatmap_figures(run, "dblock")
    # accuracy ------------------------------------------------------------------------------------------
    if run.accuracy:
        body = "".join(H.figure(png_base64(fig), anchor, caption + "; d block as TM23 Figs 2-3, grey = not in run")
                       for anchor, caption, fig in heatmaps if anchor.endswith("-full"))
        data = _learned(values(run, "force_percent", "full"), run)
        if data:
            fig = periodic.heatmap(data, layout="full", title="force % error, full split", unit="%")
            body += H.figure(png_base64(fig), "heatmap-full-table-force_percent",
                             "force % error on the whole periodic table (Metal-43 SI Figs 1-2 layout)")
        temps = sorted({t for r in run.accuracy for t in r.by_temperature}, key=lambda t: ({"cold": 0, "warm": 1,
                                                                                            "melt": 2}.get(t, 3), t))
        rows = [[r.element, r.model, r.n_train, r.n_test, 1e3 * r.force_mae, r.force_percent, 1e3 * r.energy_mae,
                 r.energy_percent, r.stress_mae * METRICS["stress_mae"].factor, r.stress_percent]
                + [r.by_temperature.get(t, {}).get("force_percent") for t in temps] + [r.fit_s] for r in run.accuracy]
        body += H.table(["metal", "model", "train", "test", "F MAE meV/Å", "F %", "E MAE meV/atom", "E %",
                         "S MAE GPa", "S %"] + [f"F % {t}" for t in temps] + ["fit s"], rows)
        page.add("accuracy", "Accuracy (TM23 full split)", body)
        numbers["accuracy"] = [asdict(r) for r in run.accuracy]

    # transfer ------------------------------------------------------------------------------------------
    if run.transfer:
        body = "".join(H.figure(png_base64(fig), anchor, caption) for anchor, caption, fig in heatmaps
                       if "->" in anchor)
        rows = [[r.element, r.model, r.train, r.test, r.n_train, r.n_test, 1e3 * r.force_mae, r.force_percent,
                 1e3 * r.energy_mae, r.energy_percent, r.stress_percent] for r in run.transfer]
        body += H.table(["metal", "model", "train", "test", "n train", "n test", "F MAE meV/Å", "F %",
                         "E MAE meV/atom", "E %", "S %"], rows)
        page.add("transfer", "Temperature transfer (TM23 Figs 4-5)", body)
        numbers["transfer"] = [asdict(r) for r in run.transfer]

    # learning curves -----------------------------------------------------------------------------------
    if run.learning_curve:
        learned = [c for c in run.learning_curve if c.model in _learned({c.model: 1 for c in run.learning_curve}, run)]
        fig = plots.learning_curve_figure(learned or run.learning_curve, run.results.get("learning_curve"))
        body = H.figure(png_base64(fig), "learning-curves", "log-log; b = data training rate (MS25), R² of the fit "
                        "(learned models; baselines in the table)")
        rows = [[c.element, c.model, ",".join(f"{k}={v}" for k, v in c.sweep.items()) or "-",
                 "/".join(map(str, c.sizes)), "/".join(f"{1e3 * v:.1f}" for v in c.force_mae)]
                + [x for law in (c.force, c.energy, c.stress) for x in ((law.b, law.r2) if law else (None, None))]
                for c in run.learning_curve]
        body += H.table(["metal", "model", "sweep", "frames", "F MAE meV/Å", "b_F", "R²_F", "b_E", "R²_E", "b_S",
                         "R²_S"], rows)
        page.add("learning", "Learning curves (TM23 Fig 6, MS25 Fig 3)", body)
        numbers["learning_curve"] = [asdict(c) for c in run.learning_curve]

    # parity --------------------------------------------------------------------------------------------
    if parity and run.results.get("accuracy"):
        from mlffbench.report.predictions import parity as predict_parity

        parities, problems = [], []
        for r in run.results["accuracy"]:
            try:
                parities.append(predict_parity(Path(run_dir), r, max_parity_frames))
            except Exception as exc:  # noqa: BLE001 - a missing model file is reported, not fatal
                problems.append(f"{r['element']} {r['label']}: {one_line(exc)}")
            log(f"parity {r['element']} {r['label']}")
        body = ('<p class="note">Predictions recomputed at report time from the saved potentials '
                "(models/&lt;job&gt;/potential.json) on the run's data files; no retraining. "
                f"At most {max_parity_frames} evenly spaced test frames per metal.</p>")
        if parities:
            for q, title, unit in plots.PARITY_QUANTITIES:
                body += H.figure(png_base64(plots.parity_figure(parities, q)), f"parity-{q}", f"{title} ({unit})")
        if problems:
            body += "<p class=\"note\">Not plotted: " + H.esc("; ".join(problems)) + "</p>"
        page.add("parity", "Parity plots", body)

    # cost vs accuracy ----------------------------------------------------------------------------------
    if run.results.get("accuracy"):
        fig = plots.cost_accuracy_figure(run.results["accuracy"])
        page.add("cost", "Cost vs accuracy", H.figure(png_base64(fig), "cost-accuracy",
                                                       "prediction cost per atom (this machine) vs force % error"))

    # correlations --------------------------------------------------------------------------------------
    data = _learned(values(run, "force_percent", "full"), run)
    if data:
        table = corr.property_table(run.elements, run.observables, extra_properties)
        fits = corr.correlations(data, table)
        fig = corr.correlation_figure(data, table, "force % error")
        body = H.figure(png_base64(fig), "correlations", "force % error (full split) against element properties")
        body += H.table(["property", "model", "n metals", "slope", "intercept", "R² (structure: η²)"],
                        [[f.prop, f.model, f.n, f.slope, f.intercept, f.r2] for f in fits])
        if "cauchy_pressure_GPa" not in table:
            body += '<p class="note">Cauchy pressure: not available (no elastic observable in this run).</p>'
        if not any("d_band" in p for p in table):
            body += ('<p class="note">d-band centre: not provided (pass --properties FILE with '
                     '{"Cu": {"d_band_centre_eV": ...}}).</p>')
        page.add("correlations", "Errors vs element properties (TM23 SI S2-S7)", body)
        numbers["correlations"] = [f.to_dict() for f in fits]

    # observables ---------------------------------------------------------------------------------------
    if run.observables:
        body = ""
        for name, make in obs.OBSERVABLE_FIGURES.items():
            if obs.entries_with(run.observables, name):
                body += H.figure(png_base64(make(run.observables)), f"observable-{name}", name)
        rows = []
        for o in run.observables:
            for name, res in (o.get("observables") or {}).items():
                if isinstance(res, dict):
                    errs = res.get("errors") or {}
                    text = ", ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                     for k, v in errs.items() if not isinstance(v, (dict, list)))
                    rows.append([o.get("element"), o.get("label"), name, res.get("status"), res.get("wall_s"),
                                 text or res.get("error") or ""])
        body += H.table(["metal", "model", "observable", "status", "wall s", "errors / reason"], rows)
        page.add("observables", "Observables and MD crash tests", body)
        numbers["observables"] = run.observables

    # failures ------------------------------------------------------------------------------------------
    if run.failed:
        page.add("failed", "Failed jobs", H.table(["job", "attempts", "reason"],
                                                  [[j.name, j.attempts, j.error or ""] for j in run.failed]))
    records = number_records(run)
    page.add("files", "Numbers", f'<p>Every number of this report: <code>{H.esc(html_path.stem)}.csv</code> '
             f"({len(records)} rows: {', '.join(CSV_FIELDS)}) and <code>{H.esc(html_path.stem)}.json</code> "
             "beside this file. Units: meV/atom, meV/Å, GPa; % = 100 MAE/MAV.</p>")

    numbers["numbers"] = records
    paths = {"html": html_path, "csv": html_path.with_suffix(".csv"), "json": html_path.with_suffix(".json")}
    _write_atomic(paths["html"], page.render())
    _write_atomic(paths["json"], json.dumps(_nan_to_none(numbers), indent=1, default=str, allow_nan=False))
    _write_csv(paths["csv"], records)
    return paths


def _nan_to_none(x):
    """Strict JSON: NaN and infinities become null."""
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csv(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    os.replace(tmp, path)
