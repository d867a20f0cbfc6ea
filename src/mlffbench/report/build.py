"""One run -> one self-contained HTML report plus CSV and JSON of every number, regenerated from the store.

Nothing is retrained or predicted again: error numbers come from the stored job results; parity plots read the
predictions each fit job stored when it scored its test sets (run_dir/models/<job_id>/predictions.npz). Sections over the whole run
(``report.sections``: periodic-table heatmaps where the run has sets of elemental data sets), then one section per
other data set (``report.dataset_view``); an element filter hides the table rows of other elements."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import math
import os
from pathlib import Path

from mlffbench import statistics
from mlffbench.errors import MlffbenchError
from mlffbench.report import claims as claims_mod
from mlffbench.report import html as H
from mlffbench.report import sections as S
from mlffbench.report.collect import RunData, load_run, number_records
from mlffbench.report.dataset_view import dataset_sections

CSV_FIELDS = ("run", "task", "split", "dataset", "element", "model", "n_train", "n_test", "quantity", "stat", "value",
              "unit")


def _claims_html(found: list) -> str:
    def num(v):
        return "-" if v is None else f"{v:+.2f}"

    rows = "".join(f'<tr><td class="t">{H.esc(c.claim)}</td><td class="t"><span class="status '
                   f'{c.status.replace(" ", "-")}">{H.esc(c.status)}</span></td><td>{num(c.effect)}</td>'
                   f'<td class="t">{num(c.lo)} to {num(c.hi)}</td><td>{c.n}</td><td class="t">{H.esc(c.evidence)}'
                   f'</td><td class="t">{H.esc(claims_mod.rests_on_text(c))}</td></tr>' for c in found)
    return ('<table><thead><tr><th class="t">TM23 claim</th><th class="t">this run</th><th>effect</th>'
            '<th class="t">95% CI</th><th>n</th><th class="t">evidence (force errors; learned models only)</th>'
            '<th class="t">rests on (labels, data sets and labelers used)</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _meta_html(run: RunData) -> str:
    prov = run.provenance
    env = prov.get("environment") or {}
    counts = {s: sum(j.status == s for j in run.jobs) for s in ("done", "failed", "running", "pending")}
    items = [("run directory", str(run.run_dir)), ("config", (prov.get("config") or {}).get("name")),
             ("code version", prov.get("code_version")), ("jobs", ", ".join(f"{k} {v}" for k, v in counts.items())),
             ("data sets", ", ".join(run.datasets)), ("elements", ", ".join(run.elements)),
             ("models", ", ".join(run.models)),
             ("packages", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())),
             ("python / machine", f"{env.get('python')} / {(env.get('hardware') or {}).get('cpus')} cpus"),
             ("report generated", dt.datetime.now().isoformat(timespec="seconds"))]
    rows = "".join(f'<tr><th class="t">{H.esc(k)}</th><td>{H.esc(v)}</td></tr>' for k, v in items)
    return f'<table class="meta">{rows}</table>'


def build_report(run_dir: str | Path, out: str | Path | None = None, *, parity: bool = True,
                 extra_properties: dict | None = None, max_parity_frames: int = 200, log=None) -> dict[str, Path]:
    """Write the report of ``run_dir``; returns {"html", "csv", "json"} paths. ``out`` is the HTML file
    (default run_dir/report/report.html); the CSV and JSON go beside it with the same stem."""
    log = log or (lambda msg: None)
    run = load_run(run_dir)
    html_path = Path(out) if out else Path(run_dir) / "report" / "report.html"
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise MlffbenchError(f"{html_path}: the report file must end in .html")
    page = H.Page(f"mlffbench report: {run.name}")
    numbers: dict = {"run": run.name, "run_dir": str(run.run_dir), "provenance": run.provenance,
                     "datasets": run.datasets}
    found = claims_mod.check_claims(run)
    numbers["claims"] = [c.to_dict() for c in found]
    page.add("summary", "What this run shows", _claims_html(found) + '<p class="note">Effect: the claimed-larger '
             "minus the claimed-smaller force error, averaged over the run's comparisons (n), with its 95 % bootstrap "
             f"interval ({statistics.N_RESAMPLES} resamples of the test frames; of the metals too for the early/late "
             "claim). A claim is \"supported\" only when the interval lies above zero, \"contradicted\" when below, "
             "\"not enough data\" when it contains zero or the run has too few comparisons, \"not tested\" when the "
             "run lacks the data. Force % error = 100 MAE/MAV (TM23 Eq. 2).</p>")
    notes = run.provenance.get("protocol_notes") or []
    page.add("run", "Run and deviations from the paper protocols", _meta_html(run) + (
        "<ul>" + "".join(f"<li>{H.esc(n)}</li>" for n in notes) + "</ul>" if notes else ""))
    heatmaps = S.heatmap_figures(run)  # d block for TM23-only runs, the 43-metal table once others are in
    sections = [
        ("datasets", "Data sets", S.datasets_section(run)),
        ("accuracy", "Accuracy (each data set's split; TM23 full split for generated data)",
         S.accuracy_section(run, heatmaps, numbers)),
        ("training", "Training of the epoch-trained fits (validation curves, budget and convergence)",
         S.training_section(run, numbers)),
        ("transfer", "Transfer: group hold-out (TM23 Figs 4-5)", S.transfer_section(run, heatmaps, numbers)),
        ("learning", "Learning curves (TM23 Fig 6, MS25 Fig 3)", S.learning_section(run, numbers)),
        ("parity", "Parity plots (elemental data sets)",
         S.parity_section(run, Path(run_dir), max_parity_frames, log, numbers) if parity else None),
    ]
    for anchor, heading, body in sections:
        if body is not None:
            page.add(anchor, heading, body)
    for anchor, heading, body in dataset_sections(run, Path(run_dir), max_parity_frames, parity, log, numbers):
        page.add(anchor, heading, body)
    sections = [
        ("cost", "Cost vs accuracy", S.cost_section(run)),
        ("correlations", "Errors vs element properties (TM23 SI S2-S7)",
         S.correlations_section(run, extra_properties, numbers)),
        ("observables", "Observables and MD crash tests vs the reference", S.observables_section(run, numbers)),
        ("crash", "MD crash test from test frames (TEA 2023)", S.crash_section(run, numbers)),
        ("checks", "Verification checks of the potentials", S.checks_section(run, numbers)),
        ("calibration", "Uncertainty calibration", S.calibration_section(run, numbers)),
        ("electronic", "Electronic structure near the Fermi level (Metal-43 SI Figs 11-18)",
         S.electronic_section(run, numbers)),
        ("not-run", "Not run (n/a)", S.not_run_section(run)),
    ]
    for anchor, heading, body in sections:
        if body is not None:
            page.add(anchor, heading, body)
    if run.failed:
        page.add("failed", "Failed jobs", H.table(["job", "attempts", "reason"],
                                                  [[j.name, j.attempts, j.error or ""] for j in run.failed]))
    records = number_records(run) + numbers.get("across_elements", [])  # + the Metal-43 SI Fig 2 statistics
    page.add("files", "Numbers", f'<p>Every number of this report: <code>{H.esc(html_path.stem)}.csv</code> '
             f"({len(records)} rows: {', '.join(CSV_FIELDS)}) and <code>{H.esc(html_path.stem)}.json</code> "
             "beside this file. Units: meV/atom, meV/Å, GPa; % = 100 MAE/MAV.</p>")

    numbers["numbers"] = records
    paths = {"html": html_path, "csv": html_path.with_suffix(".csv"), "json": html_path.with_suffix(".json")}
    _write_all({paths["html"]: page.render(H.element_filter(run.elements) if len(run.elements) > 1 else ""),
                paths["json"]: json.dumps(_nan_to_none(numbers), default=str, allow_nan=False, separators=(",", ":")),
                paths["csv"]: _csv_text(records)})
    return paths


_SCALARS = (str, int, bool, type(None))


def _nan_to_none(x):
    """Strict JSON: NaN and infinities become null (the common exact types first: this walks every number)."""
    t = type(x)
    if t is float:
        return x if math.isfinite(x) else None
    if t in _SCALARS:
        return x
    if isinstance(x, dict):
        return {k: v if type(v) in _SCALARS else _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


#: errno values that mean "no room here" (ENOSPC, EDQUOT, EFBIG: a file-size limit or a file system's maximum)
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _write_all(files: dict[Path, str]) -> None:
    """Write the report's files together: each to ``NAME.tmp`` first, then all renamed into place, so that a failed
    write (a full disk) leaves no ``*.tmp`` and no new file beside an old one, i.e. the earlier report, if any, stays
    whole and consistent. A folder made for them is removed again. OSError becomes one line saying what to do."""
    folder = next(iter(files)).parent
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    tmps: list[Path] = []
    path = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            tmp = path.with_name(path.name + ".tmp")
            tmps.append(tmp)
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())  # a full disk can surface only here (delayed allocation, NFS)
    except OSError as exc:
        for tmp in tmps:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # a read-only file system refuses even this (EROFS, not ENOENT): nothing to remove
                pass
        for made_dir in made:  # deepest first; only folders this call made, and only while empty
            try:
                made_dir.rmdir()
            except OSError:
                break
        where = path  # the report file being written, or its folder (write() errors carry no file name)
        if exc.errno in _NO_ROOM:
            raise MlffbenchError(f"{where}: no space left to write the report ({exc.strerror}); free space or give "
                                 "--out a file on another disk and re-run (nothing was written)") from None
        hint = "; give --out a file in a writable place" if exc.errno in (errno.EROFS, errno.EACCES) else ""
        raise MlffbenchError(f"{where}: cannot write the report ({exc.strerror}; nothing was written){hint}") from None
    for tmp, path in zip(tmps, files):
        os.replace(tmp, path)


def _csv_text(records: list[dict]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()
