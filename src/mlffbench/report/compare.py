"""Leaderboard across runs and models: mean errors per (run, model), ranked by force % error.

Two numbers compare only when they come from the same data set and split: the same frames (the data set's content
fingerprint, a hash of its files) and the same train/test indices (the split id). The board ranks on the mean over
the data sets (fingerprint + split) common to every row; when the rows share none it ranks nothing and says so
(each row's own mean is still shown)."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlffbench import statistics
from mlffbench.errors import MlffbenchError
from mlffbench.report import html as H
from mlffbench.report.collect import RunData, load_run, values
from mlffbench.report.claims import SEED
from mlffbench.report_text import format_table, interval_text


@dataclass
class BoardRow:
    rank: str  # "2=" ties with a neighbour (overlapping intervals); "!" fails a verification check
    run: str
    model: str
    n_datasets: int
    force_percent: float  # mean over the row's data sets, full split
    force_percent_common: float | None  # mean over the data sets (same frames and split) common to every row
    energy_percent: float | None
    stress_percent: float | None
    force_mae_meV_A: float | None
    cold_to_warm_force_percent: float | None
    cold_to_melt_force_percent: float | None
    fit_s: float | None  # median training time per data set
    predict_us_per_atom: float | None  # median
    common_ci: tuple | None = None  # 95 % bootstrap interval of force_percent_common
    failed_checks: list | None = None  # verification checks failed on any data set of the row
    training: list | None = None  # "<mark> data set: reason" of the row's budget-limited or diverged fits


def _mean(d: dict | None, only=None) -> float | None:
    vals = [v for e, v in (d or {}).items() if only is None or e in only]
    return float(np.mean(vals)) if vals else None


def benchmark_keys(run: RunData) -> dict[str, str]:
    """{data set: "<fingerprint>/<split id>"} of every data set with a finished accuracy job."""
    out = {}
    for r in run.results.get("accuracy", []):
        fingerprint = (run.datasets.get(r["dataset"]) or {}).get("fingerprint")
        split = (r.get("split") or {}).get("id")
        if fingerprint and split:
            out[r["dataset"]] = f"{fingerprint}/{split}"
    return out


def _samples(run: RunData, model: str, datasets: set[str]) -> np.ndarray | None:
    """Bootstrap samples of the mean force % error over ``datasets`` (each data set's test frames resampled
    independently; None when a result has no per-frame errors stored)."""
    per = []
    for r in run.results.get("accuracy", []):
        if r["label"] == model and r["dataset"] in datasets:
            record = r["tests"]["test"].get("frames")
            if record is None:
                return None
            per.append(statistics.samples(record, "forces", "percent", SEED))
    return np.mean(per, axis=0) if per else None


def _marked_training(run: RunData, model: str) -> list[str] | None:
    """The budget-limited or diverged fits of ``model`` in the accuracy task, one "<mark> data set: reason" each."""
    from mlffbench.report import training

    out = [f"{training.mark(rec)} {r['dataset']}: {training.reason(rec)}"
           for r, rec in training.marked_results(run.results.get("accuracy", [])) if r["label"] == model]
    return out or None


def _marks(r: BoardRow) -> str:
    return "".join(sorted({x.split(" ", 1)[0] for x in r.training or []}))


def leaderboard(runs: list[RunData]) -> tuple[list[BoardRow], str]:
    """The board and a one-line note on what it was ranked on."""
    raw = []
    for run in runs:
        keys = benchmark_keys(run)
        force = values(run, "force_percent", "full")
        other = {k: values(run, k, "full") for k in ("energy_percent", "stress_percent", "force_mae")}
        warm, melt = values(run, "force_percent", "cold->warm"), values(run, "force_percent", "cold->melt")
        for model, per in force.items():
            costs = [r.get("cost") or {} for r in run.results.get("accuracy", []) if r["label"] == model]
            med = {k: (float(np.median(v)) if (v := [c[k] for c in costs if c.get(k)]) else None)
                   for k in ("fit_s", "predict_us_per_atom")}
            keyed = {keys[d]: v for d, v in per.items() if d in keys}
            raw.append((run.name, model, per, keyed, other, warm.get(model), melt.get(model), med))
    if not raw:
        raise MlffbenchError("no finished accuracy results in the given run(s): nothing to compare")
    common = set.intersection(*(set(r[3]) for r in raw))
    rows = [BoardRow("", name, model, len(per), _mean(per), _mean(keyed, common) if common else None,
                     _mean(other["energy_percent"].get(model)), _mean(other["stress_percent"].get(model)),
                     _mean(other["force_mae"].get(model)), _mean(warm), _mean(melt), med["fit_s"],
                     med["predict_us_per_atom"]) for name, model, per, keyed, other, warm, melt, med in raw]
    by_name = {run.name: run for run in runs}
    for r in rows:
        run = by_name[r.run]
        failing = sorted({c for row in run.checks if row.model == r.model for c in row.failed})
        r.failed_checks = failing or None
        r.training = _marked_training(run, r.model)
        if common:
            keys = benchmark_keys(run)
            draws = _samples(run, r.model, {d for d, k in keys.items() if k in common})
            r.common_ci = statistics.interval(draws) if draws is not None else (float("nan"), float("nan"))
    if common:
        rows.sort(key=lambda r: r.force_percent_common)
        for r, label in zip(rows, statistics.tie_ranks([r.force_percent_common for r in rows],
                                                       [r.common_ci for r in rows])):
            r.rank = label + ("!" if r.failed_checks else "") + _marks(r)
        note = (f"ranked by the mean force % error over the {len(common)} data set(s) every row has "
                f"(same frames and split); '=' marks ties (overlapping 95 % bootstrap intervals, "
                f"{statistics.N_RESAMPLES} resamples of the test frames), '!' a potential failing verification "
                "checks")
        if any(r.training for r in rows):
            note += ("; '†' a model whose training its budget stopped while still improving on some of its data "
                     "sets, '×' one that diverged (column training)")
    else:
        for r in rows:
            r.rank = _marks(r)
        note = ("not ranked: these rows share no data set with the same frames and split, so their errors are not "
                "comparable (each row's mean is over its own data sets)")
    return rows, note


HEADER = ["run", "model", "#", "data sets", "F %", "F % common", "95% CI", "E %", "S %", "F MAE", "cold->warm F %",
          "cold->melt F %", "fit s", "µs/atom", "failed checks", "training"]


def _cells(r: BoardRow) -> list:
    return [r.run, r.model, r.rank or "-", r.n_datasets, r.force_percent, r.force_percent_common,
            interval_text(r.common_ci), r.energy_percent, r.stress_percent, r.force_mae_meV_A,
            r.cold_to_warm_force_percent, r.cold_to_melt_force_percent, r.fit_s, r.predict_us_per_atom,
            ", ".join(r.failed_checks or []) or "-", "; ".join(r.training or []) or "-"]


def text_table(rows: list[BoardRow]) -> str:
    def f(v):
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else \
            (f"{v:.3g}" if isinstance(v, float) else str(v))

    units = ["", "", "rank", "", "", "", "", "", "", "meV/Å", "", "", "median", "median", "", ""]
    return format_table(HEADER, units, [[f(v) for v in _cells(r)] for r in rows], text_columns=(0, 1, 14, 15))


def write_compare(run_dirs: list[str | Path], out: str | Path | None = None) -> tuple[str, dict[str, Path]]:
    """Leaderboard of ``run_dirs``: returns the text table and the written {"html", "csv"} paths (``out`` is the
    HTML file; default ./compare.html)."""
    runs = [load_run(d) for d in run_dirs]
    names = [r.name for r in runs]
    for r in runs:  # two runs of the same config would share a name: use the directory to tell them apart
        if names.count(r.name) > 1:
            r.name = str(r.run_dir)
    rows, note = leaderboard(runs)
    html_path = Path(out or "compare.html")
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise MlffbenchError(f"{html_path}: the comparison file must end in .html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    page = H.Page("mlffbench leaderboard")
    intro = ("<p>Mean errors over each row's data sets on their own test sets (% = 100 MAE/MAV, TM23 Eq. 2); "
             "<b>F % common</b> averages only the data sets every row has with the same frames and split. "
             + H.esc(note[0].upper() + note[1:]) + ". Runs: "
             + ", ".join(H.esc(f"{r.name} ({r.run_dir})") for r in runs) + ".</p>")
    page.add("board", "Leaderboard", H.table(HEADER, [_cells(r) for r in rows]))
    html_path.write_text(page.render(intro), encoding="utf-8")
    csv_path = html_path.with_suffix(".csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return text_table(rows) + f"\n{note}", {"html": html_path, "csv": csv_path}
