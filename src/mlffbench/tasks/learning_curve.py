"""Learning curves (TM23 Fig 6, MS25 "data training rate"): nested random subsets of the full-split training set
(replicate r is one seeded permutation; its subsets are prefixes) tested on the full test set. The error follows
eps = a N^b; b (the slope in log-log, MS25's data training rate) and R^2 come from least squares on log eps vs
log N over all replicates. A curve can be swept over one model parameter (TM23: l_max)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlffbench.data import splits
from mlffbench.errors import ConfigError
from mlffbench.report_text import format_table

TITLE = ("Learning curves: force MAE per training size; b = log-log slope, R² (TM23 Fig 6, "
         "MS25 data training rate)")


def check(config) -> None:
    """Every size must fit in the full split's training frames."""
    lc, data = config.tasks.learning_curve, config.data
    try:
        pool, n_test = splits.tm23_full_counts(config.split.test_last, data.frames_per_temperature,
                                               len(data.temperatures))
    except ValueError as exc:
        raise ConfigError(f"split.test_last: {exc}") from None
    too_big = [n for n in lc.sizes if n > pool]
    if too_big:
        per_trajectory = n_test // len(data.temperatures)
        raise ConfigError(f"tasks.learning_curve.sizes: {too_big} exceed the {pool} training frames "
                          f"({len(data.temperatures)} x ({data.frames_per_temperature} - {per_trajectory} test))")


def jobs(config, model) -> list[dict]:
    lc = config.tasks.learning_curve
    sweeps = [{k: v} for k, values in lc.sweep.items() for v in values] or [{}]
    return [{"split": {"kind": "learning_curve", "size": n, "set_id": r},
             "point": {"size": n, "replicate": r, "sweep": sweep}, "params": sweep,
             "check": "tasks.learning_curve.sweep"}
            for sweep in sweeps for r in range(lc.replicates) for n in lc.sizes]


@dataclass
class PowerLaw:
    a: float
    b: float  # exponent: the data training rate
    r2: float

    @classmethod
    def fit(cls, n: np.ndarray, err: np.ndarray) -> "PowerLaw | None":
        ok = (err > 0) & np.isfinite(err)
        if len(np.unique(n[ok])) < 2:
            return None
        x, y = np.log(n[ok]), np.log(err[ok])
        b, log_a = np.polyfit(x, y, 1)
        resid = y - (log_a + b * x)
        ss_tot = float(((y - y.mean()) ** 2).sum())
        r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
        return cls(math.exp(log_a), float(b), r2)


@dataclass
class CurveRow:
    element: str
    model: str
    sweep: dict
    sizes: list[int]
    force_mae: list[float]  # eV/Å, mean over replicates per size
    energy_mae: list[float]  # eV/atom
    stress_mae: list[float]  # eV/Å^3
    force: PowerLaw | None
    energy: PowerLaw | None
    stress: PowerLaw | None


def summarise(results: list[dict]) -> list[CurveRow]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        key = (r["element"], r["label"], tuple(sorted(r["point"]["sweep"].items())))
        groups.setdefault(key, []).append(r)
    rows = []
    for (element, label, sweep), rs in groups.items():
        n = np.array([r["n_train"] for r in rs], dtype=float)
        errs = {q: np.array([r["tests"]["test"]["overall"][f"{q}.mae"] for r in rs], dtype=float)
                for q in ("forces", "energy_per_atom", "stress")}
        sizes = sorted({int(v) for v in n})
        mean = {q: [float(np.nanmean(e[n == s])) for s in sizes] for q, e in errs.items()}
        rows.append(CurveRow(element, label, dict(sweep), sizes, mean["forces"], mean["energy_per_atom"],
                             mean["stress"], PowerLaw.fit(n, errs["forces"]), PowerLaw.fit(n, errs["energy_per_atom"]),
                             PowerLaw.fit(n, errs["stress"])))
    return rows


def table(rows: list[CurveRow]) -> str:
    def law(p):
        return f"{p.b:+.2f} ({p.r2:.2f})" if p else "-"

    header = ["metal", "model", "sweep", "frames", "F MAE", "b_F (R²)", "b_E (R²)", "b_S (R²)"]
    units = ["", "", "", "", "meV/Å", "", "", ""]
    body = [[r.element, r.model, ",".join(f"{k}={v}" for k, v in r.sweep.items()) or "-",
             "/".join(map(str, r.sizes)), "/".join(f"{1e3 * v:.1f}" for v in r.force_mae),
             law(r.force), law(r.energy), law(r.stress)] for r in rows]
    return format_table(header, units, body)
