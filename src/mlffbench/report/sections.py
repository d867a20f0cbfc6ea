"""The report's sections over the whole run: data sets, accuracy, transfer, learning curves, parity of elemental
collections, cost, correlations, observables, crash tests. Each returns its HTML body (or None when the run has
nothing for it) and adds its numbers to ``numbers``. Per-data-set sections live in ``report.dataset_view``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from mlffbench.datasets import describe_split
from mlffbench.report import claims as claims_mod
from mlffbench.report import correlations as corr
from mlffbench.report import html as H
from mlffbench.report import observables as obs
from mlffbench.report import histograms, periodic, plots
from mlffbench.report.collect import METRICS, RunData, split_names, values
from mlffbench.report.figures import png_base64
from mlffbench.report_text import interval_text
from mlffbench.tasks.accuracy import CI_NOTE, baseline_flags, baseline_notes, check_notes, marked_rank

HEATMAP_METRICS = ("force_percent", "energy_percent", "stress_percent", "force_mae", "energy_mae", "stress_mae")


def learned(data: dict, run: RunData) -> dict:
    """Heatmaps and correlations show learned models only (baselines would stretch the shared colour scale)."""
    baseline_labels = {r["label"] for rs in run.results.values() for r in rs if r.get("model") in claims_mod.BASELINES}
    return {m: v for m, v in data.items() if m not in baseline_labels}


def _elements_of(run: RunData, dataset: str) -> list[str]:
    return list((run.datasets.get(dataset) or {}).get("elements") or [])


def label_sources(run: RunData, names) -> dict[str, tuple]:
    """{element: (reference labeler spec, labeler provenance string)} of the elemental data sets ``names``; the
    provenance string names the MD labeler, so it is dropped where a relabeler made the labels."""
    out = {}
    for n in names:
        d = run.datasets.get(n) or {}
        relabelled = ((d.get("data_inputs") or {}).get("data") or {}).get("relabel")
        out[(d.get("elements") or ["?"])[0]] = (d.get("reference"), None if relabelled else d.get("labeled_by"))
    return out


def surrogate_note(run: RunData, datasets) -> str:
    """HTML note for a table: which of ``datasets`` carry labels from a universal potential (a surrogate for DFT,
    not DFT), with ``universal.describe``'s sentence; "" when none does."""
    from mlffbench.data.labelers.universal import describe

    by_sentence: dict[str, list[str]] = {}
    for n in dict.fromkeys(datasets):
        spec = periodic.universal_spec((run.datasets.get(n) or {}).get("reference"))
        if spec:
            by_sentence.setdefault(describe(spec), []).append(n)
    return "".join(f'<p class="note">Reference labels of {H.esc(" ".join(ns))}: {H.esc(s)}.</p>'
                   for s, ns in by_sentence.items())


def flagged(run: RunData) -> dict[str, dict]:
    """{data set: label-check record} of the data sets whose labeler fails a label check the config accepted:
    marked (``checks.MARK``) in the report's tables and heatmap cells, left out of claims."""
    from mlffbench.data.labelers import checks as label_checks

    return label_checks.marked(label_records(run))


def label_records(run: RunData) -> dict[str, dict]:
    from mlffbench.engine.runner import labeler_checks_of

    return labeler_checks_of(run.jobs, run.provenance.get("labeler_checks"))


def _marked_name(run: RunData, name: str, marks: dict | None = None) -> str:
    from mlffbench.data.labelers.checks import MARK

    return name + MARK if name in (flagged(run) if marks is None else marks) else name


def _label_note(run: RunData) -> str:
    from mlffbench.data.labelers import checks as label_checks

    note = label_checks.mark_note(flagged(run))
    return f'<p class="note">{H.esc(note)}</p>' if note else ""


def heatmap_layout(run: RunData) -> str:
    """The periodic-table layout of the run's heatmaps: the TM23 d block while every elemental data set is a TM23
    metal, the 43-metal table as soon as another metal is in (``periodic.choose_layout``)."""
    return periodic.choose_layout({e for names in run.elemental_collections().values() for n in names
                                   for e in _elements_of(run, n)})


def heatmap_figures(run: RunData, layout: str | None = None) -> list[tuple[str, str, object]]:
    """(id, caption, figure) for every metric on the full split and force % on every transfer split, for each
    elemental collection (sets of single-element data sets); transfer maps of one metric share a colour range.
    With two or more learned models and MIN_ELEMENTS elements, also the per-element mean over models of the energy
    and force MAE (Metal-43 SI Fig 2 a-b). ``layout``: default ``heatmap_layout(run)``. Captions name the layout
    and, where it matters, the labeler of each element (surrogate labels say so)."""
    layout = layout or heatmap_layout(run)
    out = []
    marks = flagged(run)
    for collection, names in run.elemental_collections().items():
        labels = periodic.labels_caption(label_sources(run, names))
        labels = f". {labels}" if labels else ""
        marked = {run.datasets[n]["elements"][0] for n in names if n in marks}
        if marked:  # accepted label-check failures: the cell says so (and the claims leave them out)
            from mlffbench.data.labelers.checks import MARK

            labels += (f". {MARK} (outlined) = labels from a labeler that fails a label check, accepted by the "
                       f"config: {' '.join(sorted(marked))}")
        notes = f"; {periodic.LAYOUT_NOTES[layout]}, grey = not in run{labels}"
        for name in HEATMAP_METRICS:
            data = learned(values(run, name, "full", by="element", datasets=names), run)
            m = METRICS[name]
            if data:
                out.append((f"heatmap-{collection}-{name}-full",
                            f"{m.title} ({m.unit}), {collection}, full split{notes}",
                            periodic.heatmap(data, layout=layout, title=f"{m.title}, full split", unit=m.unit, marked=marked)))
            if name in ("energy_mae", "force_mae") and len(data) >= 2 and len(names) >= histograms.MIN_ELEMENTS:
                mean = periodic.mean_over_models(data)
                out.append((f"heatmap-{collection}-mean-{name}-full",
                            f"{m.title} ({m.unit}) per element, mean over the {len(data)} learned models "
                            f"(Metal-43 SI Fig 2 a-b), {collection}, full split; {periodic.LAYOUT_NOTES[layout]}, "
                            f"grey = not in run or missing for some model{labels}",
                            periodic.heatmap({f"mean of {len(data)} models": mean}, layout=layout,
                                             title=f"{m.title}, mean over models", unit=m.unit, marked=marked)))
        transfer = [s for s in split_names(run) if "->" in s]
        datas = {s: learned(values(run, "force_percent", s, by="element", datasets=names), run) for s in transfer}
        if any(datas.values()):
            lo, hi = periodic.shared_range(*datas.values())
            for s, data in datas.items():
                if data:
                    out.append((f"heatmap-{collection}-force_percent-{s}",
                                f"force % error, {collection}, trained {s.replace('->', ', tested ')} "
                                f"(one colour range for all transfer maps){notes}",
                                periodic.heatmap(data, layout=layout, title=f"force % error, {s}", unit="%",
                                                 vmin=lo, vmax=hi, marked=marked)))
    return out


def cited(rows) -> str:
    """A note naming every published potential of the rows: scored on the same test sets, never trained here."""
    items = dict.fromkeys((r.model, r.citation) for r in rows if getattr(r, "citation", None))
    if not items:
        return ""
    return ('<p class="note">Published potentials (scored, not trained here): '
            + "; ".join(f"<b>{H.esc(m)}</b>: {H.esc(c)}" for m, c in items) + ".</p>")


def datasets_section(run: RunData) -> str | None:
    if not run.datasets:
        return None
    rows, elements = [], []
    records = label_records(run)
    for name, d in run.datasets.items():
        prov = d.get("provenance") or {}
        reference = d.get("reference")
        rows.append([name, d.get("source"), d.get("collection"), "-".join(d.get("elements") or []),
                     d.get("n_frames"), ", ".join(f"{g} {n}" for g, n in (d.get("groups") or {}).items()),
                     "periodic" if d.get("periodic") else "non-periodic",
                     (periodic.labeler_kind(reference) + " (not DFT)" if periodic.universal_spec(reference)
                      else (reference or {}).get("name") if reference else "none"),
                     describe_split(d.get("base_split")), prov.get("level_of_theory") or "",
                     d.get("fingerprint") or "", _label_check_cell(records.get(name))])
        rows[-1][0] = _marked_name(run, name)
        elements.append(d.get("elements") or [])
    from mlffbench.data.labelers import checks as label_checks

    mild = label_checks.mild_note(records)
    return H.table(["data set", "source", "collection", "elements", "frames", "groups (frames)", "cell",
                    "reference calculator", "split", "level of theory", "fingerprint", "label check"], rows,
                   elements=elements) + surrogate_note(run, run.datasets) + _label_note(run) + (
        f'<p class="note">{H.esc(mild)}</p>' if mild else "")


def _label_check_cell(rec: dict | None) -> str:
    from mlffbench.data.labelers import checks as label_checks

    return "-" if rec is None else label_checks.cell_text(rec)


def accuracy_section(run: RunData, heatmaps: list, numbers: dict) -> str | None:
    if not run.accuracy:
        return None
    body = "".join(H.figure(png_base64(fig, tight=False), anchor, caption)  # laid out to their content
                   for anchor, caption, fig in heatmaps if anchor.endswith("-full"))
    for collection, names in run.elemental_collections().items():
        data = learned(values(run, "force_percent", "full", by="element", datasets=names), run)
        if data and heatmap_layout(run) == "dblock":  # d-block maps above: place them among all 43 metals too
            fig = periodic.heatmap(data, layout="metal43", title=f"force % error, {collection}", unit="%")
            body += H.figure(png_base64(fig, tight=False), f"heatmap-full-table-{collection}",
                             f"force % error among the 43 metals, {collection} (Metal-43 SI Figs 1-2 layout)")
    body += _distribution_html(run, numbers)
    ci = [r.intervals or {} for r in run.accuracy]
    gpa = METRICS["stress_mae"].factor
    rows = [[_marked_name(run, r.dataset), r.model, marked_rank(r), r.n_train, r.n_test, 1e3 * r.force_mae,
             interval_text(c.get("force_mae"), 1e3), r.force_percent, interval_text(c.get("force_percent")),
             1e3 * r.energy_mae, interval_text(c.get("energy_mae"), 1e3, 3), r.energy_percent,
             r.stress_mae * gpa, interval_text(c.get("stress_mae"), gpa, 3), r.stress_percent, r.fit_s]
            for r, c in zip(run.accuracy, ci)]
    body += H.table(["data set", "model", "rank", "train", "test", "F MAE meV/Å", "95% CI", "F %", "95% CI",
                     "E MAE meV/atom", "95% CI", "E %", "S MAE GPa", "95% CI", "S %", "fit s"], rows,
                    elements=[_elements_of(run, r.dataset) for r in run.accuracy])
    body += f'<p class="note">{H.esc(CI_NOTE.strip())}.{H.esc(check_notes(run.accuracy))}</p>' + cited(run.accuracy)
    body += surrogate_note(run, [r.dataset for r in run.accuracy]) + _label_note(run)
    flags = baseline_flags(run.accuracy)
    numbers["baseline_flags"] = flags
    if flags:
        body += ('<h3>Worse than the baseline</h3><p class="note">Models worse than mean_energy (per-element mean '
                 "energy, zero forces and stress) on a quantity:</p><ul>"
                 + "".join(f"<li>{H.esc(x)}</li>" for x in flags) + "</ul>"
                 + "".join(f'<p class="note">{H.esc(n)}</p>' for n in baseline_notes(flags)))
    # per group of the elemental collections (TM23's temperatures); other data sets show theirs in their own section
    in_collections = {n for ns in run.elemental_collections().values() for n in ns}
    groups = [[r.dataset, r.model, g, v["n_test"], 1e3 * v["force_mae"], v["force_percent"], 1e3 * v["energy_mae"],
               v["energy_percent"], v["stress_percent"]]
              for r in run.accuracy if r.dataset in in_collections and len(r.by_group) > 1
              for g, v in r.by_group.items()]
    if groups:
        body += "<h3>Per group</h3>" + H.table(
            ["data set", "model", "group", "test", "F MAE meV/Å", "F %", "E MAE meV/atom", "E %", "S %"], groups,
            elements=[_elements_of(run, g[0]) for g in groups])
    others = [n for n in run.datasets if n not in in_collections]
    if others:
        body += ('<p class="note">Per group and per element (TEA): in the section of each data set ('
                 + ", ".join(f'<a href="#dataset-{H.esc(n)}">{H.esc(n)}</a>' for n in others) + ").</p>")
    numbers["accuracy"] = [asdict(r) for r in run.accuracy]
    return body


def _distribution_html(run: RunData, numbers: dict) -> str:
    """Metal-43 SI Fig 2 c-d for each elemental collection of MIN_ELEMENTS or more data sets: the histogram of the
    per-element energy and force MAE per learned model, and its numbers (also the per-element means over models of
    Fig 2 a-b) in ``numbers["across_elements"]``, CSV-shaped records that build.py adds to the CSV."""
    body = ""
    for collection, names in run.elemental_collections().items():
        if len(names) < histograms.MIN_ELEMENTS:
            continue
        data = {q[0]: learned(values(run, q[0], "full", by="element", datasets=names), run)
                for q in histograms.QUANTITIES}
        if not any(data.values()):
            continue
        labels = periodic.labels_caption(label_sources(run, names))
        body += f"<h3>Errors across the elements of {H.esc(collection)} (Metal-43 SI Fig 2 c-d)</h3>"
        body += H.figure(png_base64(histograms.histogram_figure(data)), f"histogram-{collection}",
                         f"per-element energy MAE (meV/atom) and force MAE (meV/Å) across the elements of "
                         f"{collection}, full split, per learned model; legend: mean ± sample std across elements "
                         "(dotted line: mean)" + (f". {labels}" if labels else ""))
        rows = [[collection, model, q[1], s["n"], s["mean"], s["std"], s["median"], s["min"], s["max"]]
                for q in histograms.QUANTITIES
                for model, s in histograms.distributions({q[0]: data[q[0]]})[q[0]].items()]
        body += H.table(["collection", "model", "quantity", "elements", "mean", "std", "median", "min", "max"],
                        rows)
        means = {k: periodic.mean_over_models(v) for k, v in data.items() if len(v) >= 2}
        numbers.setdefault("across_elements", []).extend(histograms.records(data, run.name, collection, means))
    return body


def transfer_section(run: RunData, heatmaps: list, numbers: dict) -> str | None:
    if not run.transfer:
        return None
    body = "".join(H.figure(png_base64(fig, tight=False), anchor, caption) for anchor, caption, fig in heatmaps
                   if "->" in anchor)
    rows = [[r.dataset, r.model, r.train, r.test, r.n_train, r.n_test, 1e3 * r.force_mae, r.force_percent,
             1e3 * r.energy_mae, r.energy_percent, r.stress_percent] for r in run.transfer]
    body += H.table(["data set", "model", "train", "test", "n train", "n test", "F MAE meV/Å", "F %",
                     "E MAE meV/atom", "E %", "S %"], rows, elements=[_elements_of(run, r.dataset) for r in run.transfer])
    body += surrogate_note(run, [r.dataset for r in run.transfer])
    numbers["transfer"] = [asdict(r) for r in run.transfer]
    return body


def training_section(run: RunData, numbers: dict) -> str | None:
    """The training of the epoch-trained fits: table, marks and curves (report.training)."""
    from mlffbench.report import training

    return training.section(run, numbers)


def learning_section(run: RunData, numbers: dict) -> str | None:
    if not run.learning_curve:
        return None
    # the figure: data sets of the elemental collections (the others draw theirs in their own section)
    in_collections = {n for ns in run.elemental_collections().values() for n in ns}
    kept = [c for c in run.learning_curve if c.dataset in in_collections
            and c.model in learned({c.model: 1 for c in run.learning_curve}, run)]
    body = H.figure(png_base64(plots.learning_curve_figure(kept, run.results.get("learning_curve"))), "learning-curves",
                    "log-log; b = data training rate (MS25), R² of the fit (learned models; baselines in the table)"
                    ) if kept else ""
    rows = [[c.dataset, c.model, ",".join(f"{k}={v}" for k, v in c.sweep.items()) or "-",
             "/".join(f"{n}{(getattr(c, 'training_marks', None) or {}).get(n, '')}" for n in c.sizes), "/".join(f"{1e3 * v:.1f}" for v in c.force_mae),
             "/".join(interval_text(ci, 1e3, 1) for ci in c.force_ci),
             interval_text(c.force.b_ci) if c.force else "-"]
            + [x for law in (c.force, c.energy, c.stress) for x in ((law.b, law.r2) if law else (None, None))]
            for c in run.learning_curve]
    body += H.table(["data set", "model", "sweep", "frames", "F MAE meV/Å", "95% CI", "b_F 95% CI", "b_F", "R²_F",
                     "b_E", "R²_E", "b_S", "R²_S"], rows,
                    elements=[_elements_of(run, c.dataset) for c in run.learning_curve])
    body += surrogate_note(run, [c.dataset for c in run.learning_curve])
    numbers["learning_curve"] = [asdict(c) for c in run.learning_curve]
    return body


def parity_section(run: RunData, run_dir: Path, max_frames: int, log, numbers: dict | None = None) -> str | None:
    """Parity of the elemental collections: one panel per data set (the others get theirs in their own section),
    from the predictions each accuracy job stored (no model is loaded)."""
    from mlffbench.report.predictions import missing_note, not_plotted, parity as stored_parity, record, warn_missing

    names = {n for ns in run.elemental_collections().values() for n in ns}
    results = [r for r in run.results.get("accuracy", []) if r["dataset"] in names]
    if not results:
        return None
    parities, problems = [], []
    for r in results:
        try:
            parities.append(stored_parity(run_dir, r, max_frames))
            if numbers is not None:
                numbers.setdefault("parity", []).append(record(r, parities[-1], run_dir))
        except Exception as exc:  # noqa: BLE001 - no stored predictions (older run) or a changed file: a note
            problems.append(not_plotted(f"{r['dataset']} {r['label']}", exc))
        log(f"parity {r['dataset']} {r['label']}")
    from mlffbench.report.predictions import MAX_FORCE_POINTS

    body = ('<p class="note">Predictions stored by each accuracy job when it scored its test set '
            "(models/&lt;job&gt;/predictions.npz); no model is loaded. Drawn: at most "
            f"{max_frames} evenly spaced test frames and {MAX_FORCE_POINTS} evenly strided force components per "
            "model and panel; the MAE in each legend is that of the full test set, whose arrays stay in the .npz "
            "files (listed in the report's JSON).</p>")
    if parities:
        for q, title, unit in plots.PARITY_QUANTITIES:
            body += H.figure(png_base64(plots.parity_figure(parities, q), tight=False), f"parity-{q}", f"{title} ({unit})")
    if problems:
        warn_missing(problems)
        body += '<p class="note">' + H.esc(missing_note(problems)) + "</p>"
    return body


def cost_section(run: RunData) -> str | None:
    if not run.results.get("accuracy"):
        return None
    fig = plots.cost_accuracy_figure(run.results["accuracy"])
    return H.figure(png_base64(fig), "cost-accuracy", "prediction cost per atom (this machine) vs force % error")


def correlations_section(run: RunData, extra_properties: dict | None, numbers: dict) -> str | None:
    data = learned(values(run, "force_percent", "full", by="element"), run)
    if not data:
        return None
    elements = sorted({e for per in data.values() for e in per})
    table = corr.property_table(elements, run.observables, extra_properties)
    fits = corr.correlations(data, table)
    fig = corr.correlation_figure(data, table, "force % error")
    labels = periodic.labels_caption(label_sources(run, run.primary_collection()))
    body = H.figure(png_base64(fig), "correlations", "force % error (full split) against element properties; "
                    "95 % intervals: bootstrap over the elements" + (f". {labels}" if labels else ""))
    body += H.table(["property", "model", "n metals", "slope", "intercept", "Pearson r", "r 95% CI",
                     "R² (structure, block: η²)", "R² 95% CI"],
                    [[f.prop, f.model, f.n, f.slope, f.intercept, f.r, corr.ci_text(f.r_lo, f.r_hi), f.r2,
                      corr.ci_text(f.r2_lo, f.r2_hi)] for f in fits])
    body += (f'<p class="note">Intervals: the metals resampled with replacement ({corr.statistics.N_RESAMPLES} '
             f"draws, seed {corr.SEED}), 2.5-97.5 percentiles; \"-\" where too few metals or a constant property."
             "</p>")
    if "cauchy_pressure_GPa" not in table:
        body += '<p class="note">Cauchy pressure: not available (no elastic observable in this run).</p>'
    if not any("d_band" in p for p in table):
        body += ('<p class="note">d-band centre: not provided (pass --properties FILE with '
                 '{"Cu": {"d_band_centre_eV": ...}}).</p>')
    numbers["correlations"] = [f.to_dict() for f in fits]
    return body


def observables_section(run: RunData, numbers: dict) -> str | None:
    na = [x for x in run.not_run if x["task"] == "observables"]
    if not run.observables and not na:
        return None
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
                rows.append([o.get("dataset"), o.get("label"), name, res.get("status"), res.get("wall_s"),
                             text or res.get("error") or ""])
    rows += [[x["dataset"], x["model"], "all", "n/a", None, x["reason"]] for x in na]
    body += H.table(["data set", "model", "observable", "status", "wall s", "errors / reason"], rows,
                    elements=[_elements_of(run, row[0]) for row in rows])
    numbers["observables"] = run.observables
    return body


def crash_section(run: RunData, numbers: dict) -> str | None:
    if not run.crash_tests:
        return None
    rows = [[c["dataset"], c["label"], x["start"], x["temperature_K"], "yes" if x["survived"] else "no",
             x["simulated_ps"], x["time_to_failure_ps"], x["reason"] or "", x["last_good_frame"]]
            for c in run.crash_tests for x in c["runs"]]
    numbers["crash_tests"] = run.crash_tests
    return ('<p class="note">Langevin NVT of each trained model from test frames of its data set (no reference '
            "calculator needed); time to failure and the last frame that passed every check.</p>"
            + H.table(["data set", "model", "start frame", "T K", "survived", "simulated ps", "failure at ps",
                       "reason", "last good frame"], rows, elements=[_elements_of(run, row[0]) for row in rows]))


def calibration_section(run: RunData, numbers: dict) -> str | None:
    from mlffbench import calibration
    from mlffbench.report.figures import plt
    from mlffbench.tasks.calibration import summarise

    rows = summarise(run.results.get("calibration", []))
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="calibrated")
    if len(rows) <= 10:
        for r in rows:
            ax.plot(r.curve["expected"], r.curve["observed"], marker="o", ms=3,
                    label=f"{r.dataset} {r.model}: {r.train}->{r.test}")
    else:  # many data sets: one colour (and one NaN-separated line) per model and split; each row in the table
        from mlffbench.report.figures import model_colours

        kinds = list(dict.fromkeys(f"{r.model}: {r.train}->{r.test}" for r in rows))
        colours = model_colours(kinds)
        for kind in kinds:
            mine = [r for r in rows if f"{r.model}: {r.train}->{r.test}" == kind]
            xs = [v for r in mine for v in [*r.curve["expected"], float("nan")]]
            ys = [v for r in mine for v in [*r.curve["observed"], float("nan")]]
            ax.plot(xs, ys, marker="o", ms=2, lw=0.6, alpha=0.6, color=colours[kind],
                    label=f"{kind} ({len(mine)} data sets)")
    ax.set_xlabel("expected fraction inside the σ interval")
    ax.set_ylabel("observed fraction (per-atom energy)")
    ax.legend(fontsize=6)
    table = [[r.dataset, r.model, r.train, r.test, r.n_test, 1e3 * r.force_mae, 1e3 * r.energy_rmse,
              1e3 * r.energy_mean_sigma, r.miscalibration_area, r.direction, r.nll, r.energy_spearman,
              r.atom_spearman, r.ood_auc] for r in rows]
    numbers["calibration"] = [asdict(r) for r in rows]
    return (f'<p class="note">{H.esc(calibration.__doc__.split(chr(10) + chr(10))[1])}</p>'
            + H.figure(png_base64(fig), "calibration-curves", "calibration curves (below the diagonal: "
                       "overconfident)")
            + H.table(["data set", "model", "train", "test", "frames", "F MAE meV/Å", "E RMSE meV/atom",
                       "mean σ_E meV/atom", "miscalibration area", "confidence", "NLL", "ρ(σ_E, |ΔE|)",
                       "ρ(σ_i, |ΔF_i|)",
                       "OOD AUC"], table, elements=[_elements_of(run, row[0]) for row in table]))


def checks_section(run: RunData, numbers: dict) -> str | None:
    if not run.checks:
        return None
    from mlffbench.tasks.checks import cell
    from mlffbench.verification import CHECKS, TOLERANCES, __doc__ as explained

    overview = [[r.dataset, r.model, "yes" if r.ok else "NO: " + ", ".join(r.failed)]
                + [cell(r.checks.get(name)) for name in CHECKS] for r in run.checks]
    detail = [[r.dataset, r.model, name, c["status"], c["value"], c["tolerance"], c["unit"], c["detail"]]
              for r in run.checks for name, c in r.checks.items() if c["status"] != "pass"]
    numbers["checks"] = [{"dataset": r.dataset, "model": r.model, "failed": r.failed, "checks": r.checks}
                         for r in run.checks]
    what = explained.split("\n\n")[1] if explained else ""
    return ('<p class="note">Each trained or published potential on a test frame of its data set: pass/fail with '
            "the measured number (forces_fd eV/Å, stress_fd GPa, invariances and extensivity eV/atom, smoothness "
            "eV). A potential that fails any check is marked ! in every ranking.</p>"
            + H.table(["data set", "model", "all pass"] + list(CHECKS), overview,
                      elements=[_elements_of(run, row[0]) for row in overview])
            + ("<h3>Failed and n/a checks</h3>" + H.table(["data set", "model", "check", "status", "value",
                                                           "tolerance", "unit", "measured"], detail,
                                                          elements=[_elements_of(run, row[0]) for row in detail])
               if detail else "")
            + f'<details><summary>What each check measures</summary><pre>{H.esc(what)}</pre>'
            f"<p>Tolerances: {H.esc(', '.join(f'{k} {v:g}' for k, v in TOLERANCES.items()))}</p></details>")


def electronic_section(run: RunData, numbers: dict) -> str | None:
    """Metal-43 SI Figs 11-18 (``report.electronic``): curves, sensitivity and DOS(E_F) per element, and their
    correlation with the learned models' force % error of the same data sets."""
    from mlffbench.report import electronic

    return electronic.section(run, numbers, learned(values(run, "force_percent", "full", by="dataset"), run))


def not_run_section(run: RunData) -> str | None:
    if not run.not_run:
        return None
    rows = [[x["dataset"], x["model"], x["task"], x["reason"]] for x in run.not_run]
    return ('<p class="note">Refused at planning (a task or model that cannot run on a data set), never dropped '
            "silently.</p>" + H.table(["data set", "model", "task", "why (n/a)"], rows,
                                      elements=[_elements_of(run, row[0]) for row in rows]))


__all__ = ["HEATMAP_METRICS", "heatmap_figures", "learned", "split_names"]
