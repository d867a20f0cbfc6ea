"""Cost (TM23 Table I model sizes; MS25 inference speed): a report over the ``cost`` record of every finished
fit-and-score job, not a job-producing task. One row per task and model, aggregated over metals: training wall
time, prediction time per atom, descriptor dimension and parameter count, peak memory, and the hardware the jobs
ran on. Times are wall-clock on the worker that ran the job (single-threaded workers on the embedded Dask
cluster); peak memory is that worker process's high-water mark, so with several jobs per worker it is an upper
bound for any one of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlffbench.report_text import format_table

TITLE = ("Cost per task and model (median over data sets; peak RSS = worker high-water mark; µs/atom = prediction "
         "wall time per test atom, after one untimed warm-up call)")


@dataclass
class CostRow:
    task: str
    model: str
    jobs: int
    train_frames: int  # median
    fit_s_median: float
    fit_s_max: float
    predict_us_per_atom: float  # median
    descriptor_dim: tuple[int, int] | None  # (min, max) over jobs
    n_parameters: tuple[int, int] | None
    peak_rss_mb: float  # max
    hardware: list[str]  # distinct "node (cpus, machine)" the jobs ran on
    training: list[str] | None = None  # epoch-trained fits: distinct "device precision" they trained on


def summarise(results: list[dict]) -> list[CostRow]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("cost"):
            groups.setdefault((r["task"], r["label"]), []).append(r)
    rows = []
    for (task, label), rs in groups.items():
        costs = [r["cost"] for r in rs]

        def span(key):
            values = [c[key] for c in costs if c.get(key) is not None]
            return (int(min(values)), int(max(values))) if values else None

        hardware = sorted({_hardware(c.get("hardware")) for c in costs})
        fit = [c["fit_s"] for c in costs]
        rows.append(CostRow(task, label, len(rs), int(np.median([r["n_train"] for r in rs])), float(np.median(fit)),
                            float(max(fit)), float(np.median([c["predict_us_per_atom"] for c in costs])),
                            span("descriptor_dim"), span("n_parameters"),
                            float(max(c["peak_rss_mb"] for c in costs)), hardware, _training(rs)))
    return rows


def _training(results: list[dict]) -> list[str]:
    """Distinct "device precision" of the results' training records (none: not epoch-trained, older runs)."""
    out = []
    for r in results:
        rec = r.get("training")
        if isinstance(rec, dict):
            out.append(f"{rec.get('device') or '?'} {(rec.get('protocol') or {}).get('precision') or '?'}")
    return sorted(set(out))


def _hardware(hw: dict | None) -> str:
    if not hw:
        return "unknown"
    return f"{hw.get('node') or '?'} ({hw.get('cpus')} cpu {hw.get('machine') or '?'})"


def table(rows: list[CostRow]) -> str:
    def span(s):
        return "-" if s is None else (str(s[0]) if s[0] == s[1] else f"{s[0]}-{s[1]}")

    header = ["task", "model", "jobs", "train", "fit s", "fit s max", "predict", "descr. dim", "params",
              "peak RSS", "training device", "hardware"]
    units = ["", "", "", "frames", "median", "", "µs/atom", "", "", "MB", "precision", ""]
    body = [[r.task, r.model, r.jobs, r.train_frames, f"{r.fit_s_median:.2f}", f"{r.fit_s_max:.2f}",
             f"{r.predict_us_per_atom:.1f}", span(r.descriptor_dim), span(r.n_parameters), f"{r.peak_rss_mb:.0f}",
             "; ".join(r.training or []) or "-", "; ".join(r.hardware)] for r in rows]
    return format_table(header, units, body, text_columns=(0, 1, 10, 11))
