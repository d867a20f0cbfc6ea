"""Read a run's store into plain report data: its data sets, typed task rows, observables, crash tests, failures
and a long table of every number (one record per model x data set x split x quantity x statistic, in report
units).

Nothing is recomputed here; the store is opened read-only in spirit (no writes)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlffbench.engine.store import Job, open_existing
from mlffbench.metrics import REPORT_UNITS
from mlffbench.tasks import TASK_MODULES

#: stats carrying the quantity's unit (the others are dimensionless: percent, *_over_std, n)
_DIMENSIONED = ("mae", "rmse", "max", "mav")


@dataclass(frozen=True)
class Metric:
    """One error number the figures can show: ``overall[key] * factor`` in ``unit``."""

    name: str
    key: str  # key in a fit_score test's flattened "overall" dict
    factor: float
    unit: str
    title: str


def _metrics() -> dict[str, Metric]:
    out = {}
    for short, quantity, title in (("force", "forces", "force"), ("energy", "energy_per_atom", "energy"),
                                   ("stress", "stress", "stress")):
        factor, unit = REPORT_UNITS[quantity]
        unit = {"meV_atom": "meV/atom", "meV_A": "meV/Å"}.get(unit, unit)
        out[f"{short}_percent"] = Metric(f"{short}_percent", f"{quantity}.percent", 1.0, "%", f"{title} % error")
        out[f"{short}_mae"] = Metric(f"{short}_mae", f"{quantity}.mae", factor, unit, f"{title} MAE")
        out[f"{short}_rmse"] = Metric(f"{short}_rmse", f"{quantity}.rmse", factor, unit, f"{title} RMSE")
    return out


METRICS: dict[str, Metric] = _metrics()


def metric(name: str) -> Metric:
    from mlffbench.errors import MlffbenchError

    try:
        return METRICS[name]
    except KeyError:
        raise MlffbenchError(f"unknown metric {name!r} (known: {', '.join(METRICS)})") from None


@dataclass
class RunData:
    """Everything a report needs from one run directory."""

    run_dir: Path
    name: str
    provenance: dict
    jobs: list[Job]
    results: dict[str, list[dict]]  # task -> finished fit_score results (each with "_job_key" added)
    datasets: dict[str, dict] = field(default_factory=dict)  # name -> description (+ "fingerprint" of its frames)
    accuracy: list = field(default_factory=list)  # tasks.accuracy.AccuracyRow
    transfer: list = field(default_factory=list)  # tasks.transfer.TransferRow
    learning_curve: list = field(default_factory=list)  # tasks.learning_curve.CurveRow
    observables: list[dict] = field(default_factory=list)  # {"dataset", "element", "model", "label", "observables"}
    crash_tests: list[dict] = field(default_factory=list)  # crash_test results
    checks: list = field(default_factory=list)  # tasks.checks.ChecksRow
    electronic: list[dict] = field(default_factory=list)  # electronic task results (report.electronic)
    failed: list[Job] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        seen = [r["label"] for rs in self.results.values() for r in rs] + [o["label"] for o in self.observables]
        return list(dict.fromkeys(seen))

    @property
    def elements(self) -> list[str]:
        """Every element of the run's data sets, in order of first appearance."""
        seen = [e for d in self.datasets.values() for e in d.get("elements", [])]
        seen += [e for rs in self.results.values() for r in rs for e in r.get("elements") or [r.get("element")] if e]
        return list(dict.fromkeys(seen))

    @property
    def not_run(self) -> list[dict]:
        return self.provenance.get("not_run") or []

    def elemental_collections(self) -> dict[str, list[str]]:
        """Collections (config entries) with two or more elemental data sets, one per element: the periodic-table
        heatmaps, correlations and TM23 claims are drawn over these. {collection: [data-set names]}."""
        out: dict[str, list[str]] = {}
        for name, d in self.datasets.items():
            if len(d.get("elements", [])) == 1:
                out.setdefault(d.get("collection", ""), []).append(name)
        return {c: names for c, names in out.items()
                if len(names) >= 2 and len({self.datasets[n]["elements"][0] for n in names}) == len(names)}

    def primary_collection(self) -> list[str]:
        """The data sets of the largest elemental collection (empty when there is none)."""
        collections = sorted(self.elemental_collections().values(), key=len, reverse=True)
        return collections[0] if collections else []


def load_run(run_dir: str | Path) -> RunData:
    """Read ``run_dir/run.sqlite``; raises MlffbenchError when it is not a run directory."""
    from mlffbench.engine.sources import current

    store = open_existing(run_dir)
    try:
        jobs = list(store.jobs())
        provenance = store.provenance()
    finally:
        store.close()
    jobs, _ = current(jobs, provenance)  # results of a data set's superseded frames (a source changed) are not shown
    results: dict[str, list[dict]] = {}
    observables, crash_tests, checks = [], [], []
    electronic: list[dict] = []
    described = {k: dict(v) for k, v in (provenance.get("datasets") or {}).items()}
    for job in jobs:
        if job.status != "done" or not isinstance(job.result, dict):
            continue
        if job.kind == "data" and job.result.get("dataset") in described:
            described[job.result["dataset"]]["fingerprint"] = job.result.get("fingerprint")
            cell = job.result.get("cell")  # generated data: the provenance string of the labeler that made them
            if isinstance(cell, dict) and cell.get("labeler"):
                described[job.result["dataset"]]["labeled_by"] = cell["labeler"]
            continue
        task = job.result.get("task")
        if task == "observables":
            observables.append({**job.result, "label": job.result.get("label") or job.result.get("model"),
                                "_job_key": job.key})
        elif task == "crash_test":
            crash_tests.append({**job.result, "_job_key": job.key})
        elif task == "checks":
            checks.append(job.result)
        elif task == "electronic":
            electronic.append(job.result)
        elif task in TASK_MODULES and "tests" in job.result:
            results.setdefault(task, []).append({**job.result, "_job_key": job.key, "_inputs": job.inputs})
    run = RunData(Path(run_dir), (provenance.get("config") or {}).get("name") or Path(run_dir).name, provenance,
                  jobs, results, described, observables=observables, crash_tests=crash_tests,
                  failed=[j for j in jobs if j.status == "failed"])
    run.checks = TASK_MODULES["checks"].summarise(checks)
    run.electronic = electronic
    run.accuracy = TASK_MODULES["accuracy"].mark(TASK_MODULES["accuracy"].summarise(results.get("accuracy", [])),
                                                 TASK_MODULES["checks"].failing(run.checks))
    run.transfer = TASK_MODULES["transfer"].summarise(results.get("transfer", []))
    run.learning_curve = TASK_MODULES["learning_curve"].summarise(results.get("learning_curve", []))
    return run


# -------------------------------------------------------------------------------------------- split values


def split_names(run: RunData) -> list[str]:
    """Every split a heatmap can show: "full" (each data set's own test set), "full:<group>", "<train>-><test>"."""
    names = []
    for r in run.results.get("accuracy", []):
        names.append("full")
        names += [f"full:{t}" for t in r["tests"]["test"].get("by_group", {})]
    order = {"cold": 0, "warm": 1, "melt": 2}
    for r in run.results.get("transfer", []):
        names += [f"{r['point'].get('train', '?')}->{t}" for t in sorted(r["tests"], key=lambda t: (order.get(t, 3), t))]
    return list(dict.fromkeys(names))


def _overall(result: dict, split: str) -> dict | None:
    """The flattened metrics of one split of one fit_score result, or None when it does not have that split."""
    tests = result.get("tests", {})
    if result.get("task") == "accuracy":
        test = tests.get("test")
        if test is None:
            return None
        if split == "full":
            return test.get("overall")
        if split.startswith("full:"):
            return test.get("by_group", {}).get(split[5:])
        return None
    if result.get("task") == "transfer" and "->" in split:
        train, test = split.split("->", 1)
        if result.get("point", {}).get("train") == train and test in tests:
            return tests[test].get("overall")
    return None


def values(run: RunData, metric_name: str, split: str = "full", by: str = "dataset",
           datasets: list[str] | None = None) -> dict[str, dict[str, float]]:
    """{model label: {data set: value}} of one metric on one split (report units; NaN/inf dropped). With
    ``by="element"``: {model: {element: value}} over the elemental data sets of ``datasets`` (default: the primary
    elemental collection, ``RunData.primary_collection``), for periodic tables and element-property fits."""
    m = metric(metric_name)
    task = "accuracy" if split == "full" or split.startswith("full:") else "transfer"
    if by == "element" and datasets is None:
        datasets = run.primary_collection()
    out: dict[str, dict[str, float]] = {}
    for r in run.results.get(task, []):
        if datasets is not None and r["dataset"] not in datasets:
            continue
        overall = _overall(r, split)
        v = None if overall is None else overall.get(m.key)
        if v is not None and math.isfinite(v):
            key = r.get("element") if by == "element" else r["dataset"]
            if key is not None:
                out.setdefault(r["label"], {})[key] = v * m.factor
    return out


# -------------------------------------------------------------------------------------------- every number


def number_records(run: RunData) -> list[dict[str, Any]]:
    """One record per stored error number, in report units: run, task, split, element, model, n_train, n_test,
    quantity, stat, value, unit. Plus learning-curve fits (stat "b"/"r2"/"a") and cost numbers."""
    records: list[dict[str, Any]] = []
    base_of = {}
    for task in ("accuracy", "transfer", "learning_curve"):
        for r in run.results.get(task, []):
            base = {"run": run.name, "task": task, "dataset": r["dataset"], "element": r.get("element") or "",
                    "model": r["label"], "n_train": r["n_train"]}
            base_of[r["_job_key"]] = base
            point = r.get("point", {})
            for test_name, test in r["tests"].items():
                if task == "accuracy":
                    splits = {"full": test.get("overall", {})}
                    splits.update({f"full:{t}": v for t, v in test.get("by_group", {}).items()})
                    splits.update({f"full:element={e}": v for e, v in test.get("by_element", {}).items()})
                elif task == "transfer":
                    splits = {f"{point.get('train')}->{test_name}": test.get("overall", {})}
                else:
                    sweep = ",".join(f"{k}={v}" for k, v in point.get("sweep", {}).items())
                    splits = {f"lc:size={point.get('size')}:rep={point.get('replicate')}"
                              + (f":{sweep}" if sweep else ""): test.get("overall", {})}
                for split, flat in splits.items():
                    for key, value in flat.items():
                        quantity, _, stat = key.rpartition(".")
                        factor, unit = REPORT_UNITS.get(quantity, (1.0, ""))
                        dimensioned = stat in _DIMENSIONED
                        records.append({**base, "split": split, "n_test": test.get("n_test"), "quantity": quantity,
                                        "stat": stat, "value": _num(value * factor if dimensioned else value),
                                        "unit": unit if dimensioned else ("%" if stat == "percent" else "")})
            for key, value in (r.get("cost") or {}).items():
                if isinstance(value, (int, float)) and value is not None:
                    records.append({**base, "split": "", "n_test": None, "quantity": "cost", "stat": key,
                                    "value": _num(value), "unit": _COST_UNITS.get(key, "")})
    for c in run.learning_curve:
        sweep = ",".join(f"{k}={v}" for k, v in c.sweep.items())
        for quantity, law in (("forces", c.force), ("energy_per_atom", c.energy), ("stress", c.stress)):
            if law is None:
                continue
            for stat in ("a", "b", "r2"):
                records.append({"run": run.name, "task": "learning_curve", "dataset": c.dataset,
                                "element": c.element or "", "model": c.model,
                                "n_train": None, "split": "fit" + (f":{sweep}" if sweep else ""), "n_test": None,
                                "quantity": quantity, "stat": f"power_law_{stat}", "value": _num(getattr(law, stat)),
                                "unit": "internal (eV, Å)" if stat == "a" else ""})
    for o in run.observables:
        for name, res in (o.get("observables") or {}).items():
            if not isinstance(res, dict):
                continue
            for key, value in _flat_numbers(res.get("errors") or {}).items():
                records.append({"run": run.name, "task": "observables", "dataset": o.get("dataset"),
                                "element": o.get("element"),
                                "model": o.get("label"), "n_train": None, "split": name, "n_test": None,
                                "quantity": name, "stat": key, "value": _num(value), "unit": ""})
            records.append({"run": run.name, "task": "observables", "dataset": o.get("dataset"),
                            "element": o.get("element"),
                            "model": o.get("label"), "n_train": None, "split": name, "n_test": None,
                            "quantity": name, "stat": "ok", "value": 1.0 if res.get("status") == "ok" else 0.0,
                            "unit": ""})
    from mlffbench.report.electronic import records as electronic_records  # late: it imports report.figures

    records += electronic_records(run)
    return records


_COST_UNITS = {"fit_s": "s", "predict_us_per_atom": "µs/atom", "peak_rss_mb": "MB"}


def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _flat_numbers(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat_numbers(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out
