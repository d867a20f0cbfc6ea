"""What a person reads at the end of a run: a summary that fits a screen, and every full table again on demand.

``short_summary``: per data set the accuracy ranking (each model's force and energy MAE with the 95 % interval and
its flags), the TM23 claims with their status, the counts of failed verification checks, budget-limited fits and
rows worse than the baseline (with the names), and where the rest is. ``full_text``: every table as the run
printed them before (``runs/<name>/summary.txt``). ``show``: one task's or one data set's full tables again from
the store (``mlffbench show RUN [--task T] [--dataset D]``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mlffbench.report_text import format_table, interval_text

SUMMARY_FILE = "summary.txt"
WIDTH = 118
#: most model columns in the ranking (a run with more models: its best ones by mean rank; all in summary.txt)
MAX_MODELS = 4
#: most names listed on one count line before "and N more"
MAX_NAMES = 8

FLAGS = (("!", "fails a verification check"), ("<", "worse than mean_energy on a quantity"),
         ("~", "budget-limited hyperparameter optimisation"),
         ("†", "training stopped by its budget while still improving (x % per 10 epochs: the training table)"),
         ("×", "training diverged (the last good epoch scored)"), ("‡", "labeler fails a label check (accepted)"))
ORDER = "!<~†×‡"
#: most rows of the training table in the end-of-run summary (all in summary.txt)
MAX_TRAINING_ROWS = 12


def budget_limited(result: dict) -> str | None:
    """Why a fit stopped on a budget rather than converging, else None.

    An epoch-trained fit whose training record (``result["training"]``) has status "budget": its budget stopped it
    while still improving (marked †). Otherwise ``model_info["budget_limited"]`` (a one-line reason) or a
    hyperparameter optimisation that ended before converging (acegp, FLARE: ``optimisation.converged`` false),
    marked ~."""
    from mlffbench.report import training

    rec = training.of(result)
    if rec is not None and rec.get("status") == "budget":
        return training.reason(rec)
    info = result.get("model_info") or {}
    if info.get("budget_limited"):
        return str(info["budget_limited"])
    opt = info.get("optimisation") or {}
    if isinstance(opt, dict) and opt.get("performed", True) and opt.get("converged") is False:
        return f"hyperparameter optimisation stopped after {opt.get('iterations', '?')} iterations, not converged"
    return None


def _names(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    more = len(items) - MAX_NAMES
    return ", ".join(items[:MAX_NAMES]) + (f" and {more} more" if more > 0 else "")


def _accuracy_rows(jobs):
    from mlffbench.tasks import TASK_MODULES

    results: dict[str, list[dict]] = {}
    for job in jobs:
        if job.kind in ("fit_score", "evaluate") and job.status == "done" and isinstance(job.result, dict):
            results.setdefault(job.result.get("task"), []).append(job.result)
    checks = TASK_MODULES["checks"]
    check_rows = checks.summarise(results.get("checks", []))
    accuracy = TASK_MODULES["accuracy"]
    rows = accuracy.mark(accuracy.summarise(results.get("accuracy", [])), checks.failing(check_rows))
    return results, rows, check_rows


def _mae(value: float, ci, digits: int) -> str:
    if value != value:
        return "-"
    ci_text = interval_text(ci, 1.0, digits)
    return f"{value:.{digits}f}" if ci_text == "-" else f"{value:.{digits}f} ({ci_text})"


def _digits(values) -> int:
    finite = [abs(v) for v in values if v == v]
    top = max(finite) if finite else 1.0
    return 0 if top >= 100 else 1 if top >= 10 else 2 if top >= 0.1 else 3


def ranking_table(rows, flags: dict) -> str:
    """Per data set one line: each model's rank with its flags, force MAE (meV/Å) and energy MAE (meV/atom) with their 95 %
    intervals (the mean_energy baseline and the labeler: values only, they are the scale and the reference, not
    contenders), and its flags."""
    from mlffbench.tasks.accuracy import BASELINE

    datasets = list(dict.fromkeys(r.dataset for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    if len(models) > MAX_MODELS:  # the best by mean rank; the others are in summary.txt
        mean_rank = {m: sum(int(r.rank.rstrip("=") or 99) for r in rows if r.model == m) /
                     max(1, sum(r.model == m for r in rows)) for m in models}
        models = sorted(models, key=mean_rank.get)[:MAX_MODELS]
    baseline = {r.model for r in rows if r.family in (BASELINE, "labeler")}  # the scale and the reference itself
    by = {(r.dataset, r.model): r for r in rows}
    f_digits = {m: _digits([1e3 * r.force_mae for r in rows if r.model == m]) for m in models}
    e_digits = {m: _digits([1e3 * r.energy_mae for r in rows if r.model == m]) for m in models}
    header, units, text = ["data set"], [""], [0]
    for m in models:  # rank with its flags, force MAE, energy MAE
        header += ["#", f"{m} F MAE", "E MAE"]
        units += ["", "meV/Å" + ("" if m in baseline else " (95% CI)"), "meV/atom" + ("" if m in baseline else
                                                                                      " (95% CI)")]
        text.append(len(header) - 3)
    body = []
    for d in datasets:
        line = [d]
        for m in models:
            r = by.get((d, m))
            if r is None:
                line += ["-", "-", "-"]
                continue
            ci = {} if m in baseline else (r.intervals or {})
            line += [r.rank + "".join(sorted(set(flags.get((d, m), "")), key=ORDER.index)),
                     _mae(1e3 * r.force_mae, _scaled(ci.get("force_mae")), f_digits[m]),
                     _mae(1e3 * r.energy_mae, _scaled(ci.get("energy_mae")), e_digits[m])]
        body.append(line)
    out = format_table(header, units, body, text_columns=tuple(text))
    dropped = len({r.model for r in rows}) - len(models)
    if dropped > 0:
        out += f"\n({dropped} more model(s): see the accuracy table in summary.txt)"
    return out


def _scaled(ci):
    return None if not ci else (1e3 * ci[0], 1e3 * ci[1])


def claims_rests_on(claim) -> str:
    from mlffbench.report.claims import rests_on_text

    return rests_on_text(claim)


def _rests_short(claim) -> str:
    """What a claim rests on, short enough for the summary: its labels when not DFT, how many data sets and which
    kinds of labeler, what was left out (each data set's labeler: the report and ``claims_rests_on``)."""
    parts = [claim.labels] if getattr(claim, "labels", "") else []
    limited = getattr(claim, "training", None) or {}
    if limited:
        parts.append(f"budget-limited or diverged fits: {_names(list(limited))} (the training table)")
    labelers = getattr(claim, "labelers", None) or {}
    if labelers:
        kinds = sorted({str(t).split(":")[0].split("(")[0].strip() for t in labelers.values()})
        parts.append(f"{len(labelers)} data sets labelled by {', '.join(kinds)} (each data set's labeler: the "
                     "report)")
    excluded = getattr(claim, "excluded", None) or {}
    if excluded:
        parts.append(f"left out: {_names(list(excluded))} (labeler fails a label check)")
    return "; ".join(parts)


def _label_records(jobs, run_dir) -> dict:
    """{data set: label-check record} of the run (``data.labelers.checks``), {} when the store cannot say."""
    try:
        from mlffbench.engine.runner import labeler_checks_of
        from mlffbench.engine.store import open_existing

        store = open_existing(run_dir)
        try:
            planned = store.provenance().get("labeler_checks")
        finally:
            store.close()
        return labeler_checks_of(jobs, planned)
    except Exception:  # noqa: BLE001 - the summary never fails a finished run
        return {}


def _label_check_lines(records: dict) -> list[str]:
    """One line on the reference labelers' label checks: counts, the mild ones and the accepted failures (marked
    in every table, left out of claims) by name."""
    if not records:
        return []
    status = {n: r.get("status") for n, r in records.items()}
    line = (f"Reference labelers checked before labelling: {sum(s == 'pass' for s in status.values())} pass, "
            f"{sum(s == 'mild' for s in status.values())} mild")
    mild = [n for n, s in status.items() if s == "mild"]
    if mild:
        line += f" ({_names(mild)}: within the label tolerance)"
    accepted = [n for n, s in status.items() if s == "accepted failure"]
    if accepted:
        line += f", {len(accepted)} accepted failures ({_names(accepted)}: marked ‡, left out of claims)"
    unchecked = [n for n, s in status.items() if s == "not checked"]
    if unchecked:
        line += f", {len(unchecked)} not checked ({_names(unchecked)})"
    return [""] + textwrap.wrap(line + "; details under the data-set table in summary.txt", WIDTH,
                                subsequent_indent="  ")


def _claim_lines(run_dir) -> list[str]:
    try:
        from mlffbench.report.claims import check_claims
        from mlffbench.report.collect import load_run

        found = check_claims(load_run(run_dir))
    except Exception as exc:  # noqa: BLE001 - the summary never fails a finished run
        from mlffbench.errors import one_line

        return [f"  (claims not evaluated: {one_line(exc)})"]
    import re

    out, untested = [], []
    tested = [c for c in found if c.status != "not tested"]
    texts = {_rests_short(c) for c in tested}
    shared = len(tested) > 1 and len(texts) == 1 and "" not in texts  # said once below, not once per claim
    for c in found:
        if c.status == "not tested":
            untested.append(c.claim)
            continue
        unit = re.match(r"mean effect \S+ (.*?) 95% CI", c.evidence or "")
        effect = "" if c.effect is None else f": effect {c.effect:+.2f}{' ' + unit.group(1) if unit else ''}" + (
            f", 95% CI {c.lo:+.2f} to {c.hi:+.2f}" if c.lo is not None else "") + f", n={c.n}"
        out += textwrap.wrap(f"{c.status:<15} {c.claim}{effect}", WIDTH, initial_indent="  ",
                             subsequent_indent=" " * 18)
        rests = _rests_short(c)
        if rests and not shared:  # what the claim rests on: labels when not DFT, data sets, labelers, left out
            out += textwrap.wrap(f"rests on: {rests}", WIDTH, initial_indent=" " * 18, subsequent_indent=" " * 18)
    if shared:
        out += textwrap.wrap(f"{'':<15} every claim above rests on: {texts.pop()}", WIDTH, initial_indent="  ",
                             subsequent_indent=" " * 18)
    if untested:
        out += textwrap.wrap(f"{'not tested':<15} (the run lacks the data; the report says what each needs): "
                             + "; ".join(untested), WIDTH, initial_indent="  ", subsequent_indent=" " * 18)
    return out


def _training_lines(results: list[dict]) -> list[str]:
    """The training table of the epoch-trained fits (accuracy fits first; at most MAX_TRAINING_ROWS rows, all of
    them in summary.txt); nothing where no fit has a training record."""
    from mlffbench.report import training

    found = training.trained(results)
    if not found:
        return []
    found.sort(key=lambda x: x[0].get("task") != "accuracy")
    shown = [r for r, _ in found[:MAX_TRAINING_ROWS]]
    out = ["", training.TITLE + ":", training.table(shown)]
    if len(found) > len(shown):
        out.append(f"({len(found) - len(shown)} more fits: the training table in summary.txt)")
    return out


def short_summary(jobs, run_dir: str | Path, *, not_run: list | None = None, n_notes: int = 0,
                  report: str | Path | None = None, report_error: str | None = None,
                  full_error: str | None = None) -> str:
    """The end-of-run summary (a screen): ranking, claims, counts with names, where the full tables are."""
    from mlffbench.tasks import accuracy

    run_dir = Path(run_dir)
    results, rows, check_rows = _accuracy_rows(jobs)
    flags: dict[tuple, str] = {}
    for r in rows:
        if r.failed_checks:
            flags[(r.dataset, r.model)] = flags.get((r.dataset, r.model), "") + "!"
    worse = accuracy.baseline_worse(rows)
    for r, _, _ in worse:
        if "<" not in flags.get((r.dataset, r.model), ""):
            flags[(r.dataset, r.model)] = flags.get((r.dataset, r.model), "") + "<"
    budget = [(res, why) for rs in results.values() for res in rs if "tests" in res
              for why in [budget_limited(res)] if why]
    from mlffbench.report import training

    for res, _ in budget:
        if res.get("task") == "accuracy":
            key = (res["dataset"], res["label"])
            flags[key] = flags.get(key, "") + (training.mark(training.of(res)) or "~")
    diverged = [res for rs in results.values() for res in rs if "tests" in res
                and (training.of(res) or {}).get("status") == "diverged"]
    for res in diverged:
        if res.get("task") == "accuracy":
            key = (res["dataset"], res["label"])
            flags[key] = flags.get(key, "") + training.DIVERGED_MARK
    records = _label_records(jobs, run_dir)
    for r in rows:  # labels from a labeler whose failed label check the config accepted
        if (records.get(r.dataset) or {}).get("accepted"):
            flags[(r.dataset, r.model)] = flags.get((r.dataset, r.model), "") + "‡"
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    out = [f"Summary of {run_dir} (jobs: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"]
    if rows:
        out += [""] + textwrap.wrap("Accuracy ranking per data set (# by force MAE, '=' where the 95% intervals "
                                    "overlap; then the flags: " + ", ".join(f"{k} {v}" for k, v in FLAGS) + ")",
                                    WIDTH)
        out.append(ranking_table(rows, flags))
    out += _training_lines([res for rs in results.values() for res in rs])
    claims = _claim_lines(run_dir) if rows else []
    if claims:
        out += ["", "TM23 claims (force errors of the learned models):"] + claims
    out += _label_check_lines(records)
    out.append("")
    failing = [(r.model, name, r.dataset) for r in check_rows for name in r.failed]
    by_check: dict[tuple, list[str]] = {}
    for model, name, dataset in failing:
        by_check.setdefault((model, name), []).append(dataset)
    line = f"Failed verification checks: {len(failing)} (potential x check) on " \
           f"{len({(d, m) for m, _, d in failing})} of {len(check_rows)} potentials"
    if by_check:
        line += ": " + "; ".join(f"{m} {c} on {len(ds)} ({_names(ds)})" for (m, c), ds in by_check.items())
    out += textwrap.wrap(line, WIDTH, subsequent_indent="  ")
    line = f"Budget-limited fits: {len(budget)}"
    if budget:
        by_why: dict[str, list[str]] = {}
        for res, why in budget:
            key = "training stopped by its budget while still improving" if training.of(res) else \
                why.split(" after ")[0]
            by_why.setdefault(key, []).append(f"{res['task']} {res['dataset']} {res['label']}")
        line += ": " + "; ".join(f"{why}: {_names(v)}" for why, v in by_why.items())
    out += textwrap.wrap(line, WIDTH, subsequent_indent="  ")
    if diverged:
        out += textwrap.wrap(f"Diverged fits ({training.DIVERGED_MARK}, last good epoch scored): {len(diverged)}: "
                             + _names([f"{r['task']} {r['dataset']} {r['label']}" for r in diverged]), WIDTH,
                             subsequent_indent="  ")
    by_quantity: dict[tuple, list[str]] = {}
    for r, base, (attr, name, _, _) in worse:
        by_quantity.setdefault((r.model, name), []).append(r.dataset)
    line = f"Worse than the baseline (mean_energy): {len(worse)} (model x data set x quantity)"
    if by_quantity:
        line += ": " + "; ".join(f"{m} {q} on {len(ds)} ({_names(ds)})" for (m, q), ds in by_quantity.items())
    out += textwrap.wrap(line, WIDTH, subsequent_indent="  ")
    notes = accuracy.baseline_notes(accuracy.baseline_flags(rows))
    if notes:
        out.append("  why B1 stress: the B1 note in summary.txt (once; tasks/accuracy.py B1_NOTE)")
    failed = [j.name for j in jobs if j.status == "failed"]
    if failed:
        out += textwrap.wrap(f"Failed jobs: {len(failed)}: {_names(failed)} (reasons: mlffbench status {run_dir})",
                             WIDTH, subsequent_indent="  ")
    if not_run:
        out.append(f"Not run (refused at planning): {len(not_run)} (task x data set x model; in summary.txt)")
    if n_notes:
        out.append(f"Deviations from the papers' protocols: {n_notes} (in summary.txt and the report)")
    out += ["", f"Full tables: {run_dir / SUMMARY_FILE}" + (f" not written ({full_error})" if full_error else ""),
            f"  again from the store: mlffbench show {run_dir} [--task T] [--dataset D]"]
    if report is not None:
        out.append(f"Report: {report}")
    elif report_error:
        out.append(f"Report: not written ({report_error}); mlffbench report {run_dir}")
    out.append(f"Store: {run_dir / 'run.sqlite'}")
    return "\n".join(out)


def full_text(jobs, *, not_run: list | None = None, notes: list[str] | None = None,
              run_dir: str | Path | None = None, labeler_checks: dict | None = None) -> str:
    """Every table of a run, as ``mlffbench run`` printed them (the content of summary.txt)."""
    from mlffbench.engine.runner import data_table, not_run_table, results_table, summary_counts

    parts = ["Data sets:\n" + data_table(jobs, labeler_checks), results_table(jobs, labeler_checks)]
    if not_run:
        parts.append("Not run (refused at planning):\n" + not_run_table(not_run))
    if notes:
        parts.append("Deviations from the papers' protocols:\n" + "\n".join(f"- {n}" for n in notes))
    counts = summary_counts(jobs)
    tail = f"jobs: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}"
    if run_dir is not None:
        tail += f"; store: {Path(run_dir) / 'run.sqlite'}; report: mlffbench report {run_dir}"
    parts.append(tail)
    return "\n\n".join(parts) + "\n"


def write_full(run_dir: str | Path, text: str) -> Path:
    """Write ``run_dir/summary.txt`` atomically."""
    import os

    path = Path(run_dir) / SUMMARY_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


#: ``show --task`` names besides the task modules'
EXTRA_TABLES = ("data", "cost", "training", "not_run", "deviations")


def show(run_dir: str | Path, task: str | None = None, dataset: str | None = None) -> str:
    """One run's full tables again from its store (read only): all of them, or one task's, or one data set's."""
    from mlffbench.engine.runner import data_table, not_run_table
    from mlffbench.engine.store import open_existing
    from mlffbench.errors import MlffbenchError
    from mlffbench.tasks import TASK_MODULES, cost

    store = open_existing(run_dir)
    try:
        jobs, provenance = list(store.jobs()), store.provenance()
    finally:
        store.close()
    known = (*TASK_MODULES, *EXTRA_TABLES)
    if task is not None and task not in known:
        raise MlffbenchError(f"--task {task}: no such table (known: {', '.join(known)})")

    def of_dataset(job) -> bool:
        if dataset is None:
            return True
        if job.kind == "data":
            return job.name.split(":", 1)[1] == dataset
        return isinstance(job.result, dict) and job.result.get("dataset") == dataset or \
            job.name.split(":")[1:2] == [dataset]

    mine = [j for j in jobs if of_dataset(j)]
    if dataset is not None and not mine:
        names = sorted({j.name.split(":", 1)[1] for j in jobs if j.kind == "data"})
        raise MlffbenchError(f"--dataset {dataset}: not in this run (data sets: {', '.join(names)})")
    not_run = [x for x in provenance.get("not_run") or [] if dataset in (None, x["dataset"])]
    if task is None:
        return full_text(mine, not_run=not_run, notes=provenance.get("protocol_notes") or [], run_dir=run_dir,
                         labeler_checks=provenance.get("labeler_checks"))
    if task == "data":
        return "Data sets:\n" + data_table(mine, provenance.get("labeler_checks")) + "\n"
    if task == "not_run":
        return ("Not run (refused at planning):\n" + not_run_table(not_run) if not_run else "nothing refused") + "\n"
    if task == "deviations":
        notes = provenance.get("protocol_notes") or []
        return "Deviations from the papers' protocols:\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    results: dict[str, list[dict]] = {}
    for job in mine:
        if job.kind in ("fit_score", "evaluate") and job.status == "done" and isinstance(job.result, dict):
            results.setdefault(job.result.get("task"), []).append(job.result)
    if task == "cost":
        return f"{cost.TITLE}\n{cost.table(cost.summarise([r for rs in results.values() for r in rs]))}\n"
    if task == "training":
        from mlffbench.report.training import text_section

        return (text_section([r for rs in results.values() for r in rs]) or "no epoch-trained fits" +
                (f" on {dataset}" if dataset else "")) + "\n"
    module = TASK_MODULES[task]
    if task not in results:
        return f"{module.TITLE}\n(no finished {task} results" + (f" on {dataset}" if dataset else "") + ")\n"
    rows = module.summarise(results[task])
    if task == "accuracy":  # the verification marks, as in the run's own table
        checks = TASK_MODULES["checks"]
        rows = module.mark(rows, checks.failing(checks.summarise(results.get("checks", []))))
    text = f"{module.TITLE}\n{module.table(rows)}\n"
    unfinished = [f"  ({j.status}) {j.name}: {j.error or ''}" for j in mine
                  if j.kind in ("fit_score", "evaluate") and j.status != "done" and j.name.split(":")[0] == task]
    return text + ("Not finished:\n" + "\n".join(unfinished) + "\n" if unfinished else "")
