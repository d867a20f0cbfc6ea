"""Learning curves (TM23 Fig 6, MS25 "data training rate"): nested random subsets of the training set of the data
set's split (replicate r is one seeded permutation; its subsets are prefixes; MS25: 3 replicate sets) tested on
its whole test set. Sizes are frame counts or fractions of the training set. The error follows
eps = a N^b; b (the slope in log-log, MS25's data training rate) and R^2 come from least squares on log eps vs
log N over all replicates. A curve can be swept over one model parameter (TM23: l_max)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlffbench.errors import ConfigError
from mlffbench.tasks import common
from mlffbench.report_text import format_table, interval_text

TITLE = ("Learning curves: force MAE per training size; b = log-log slope, R² (TM23 Fig 6, "
         "MS25 data training rate)")


def curve_sizes(config, dataset) -> list[int]:
    """The curve's training sizes on this data set (fractions of its training set resolved to frame counts);
    ConfigError when one exceeds the training set or two coincide."""
    pool, _ = common.pool(dataset, seed=config.seed)
    out = [n if isinstance(n, int) else max(1, int(round(n * pool))) for n in config.tasks.learning_curve.sizes]
    too_big = [n for n in out if n > pool]
    if too_big:
        raise ConfigError(f"tasks.learning_curve.sizes: {too_big} exceed the {pool} training frames of data set "
                          f"'{dataset.name}'")
    if len(set(out)) != len(out):
        raise ConfigError(f"tasks.learning_curve.sizes: on data set '{dataset.name}' ({pool} training frames) the "
                          f"sizes {config.tasks.learning_curve.sizes} give {out}, not distinct")
    return out


def check(config, dataset) -> None:
    curve_sizes(config, dataset)


def jobs(config, dataset, model) -> list[dict]:
    lc = config.tasks.learning_curve
    sweeps = [{k: v} for k, values in lc.sweep.items() for v in values] or [{}]
    return [{"split": {"kind": "subset", "base": dataset.base_split, "size": n, "set_id": r},
             "point": {"size": n, "replicate": r, "sweep": sweep}, "params": sweep,
             "check": "tasks.learning_curve.sweep"}
            for sweep in sweeps for r in range(lc.replicates) for n in curve_sizes(config, dataset)]


@dataclass
class PowerLaw:
    a: float
    b: float  # exponent: the data training rate
    r2: float
    b_ci: tuple[float, float] = (float("nan"), float("nan"))  # 95 % interval of b (least squares, t, n - 2 dof)

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
        ci = (float("nan"), float("nan"))
        sxx = float(((x - x.mean()) ** 2).sum())
        if x.size > 2 and sxx > 0:
            from scipy.stats import t

            half = t.ppf(0.975, x.size - 2) * math.sqrt(float((resid**2).sum()) / (x.size - 2) / sxx)
            ci = (float(b - half), float(b + half))
        return cls(math.exp(log_a), float(b), r2, ci)


def _interval(values: np.ndarray, frames_ci: list) -> tuple[float, float]:
    """95 % interval of a size's mean error: Student t over the replicates when there are several, else the one
    job's bootstrap interval over its test frames."""
    ok = values[np.isfinite(values)]
    if ok.size >= 2:
        from scipy.stats import t

        half = t.ppf(0.975, ok.size - 1) * ok.std(ddof=1) / math.sqrt(ok.size)
        return (float(ok.mean() - half), float(ok.mean() + half))
    return tuple(frames_ci[0]) if frames_ci else (float("nan"), float("nan"))


def _mean(values: np.ndarray) -> float:
    """Mean over replicates of the finite errors (NaN when there is none: a quantity the data set lacks)."""
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else float("nan")


@dataclass
class CurveRow:
    dataset: str
    element: str | None
    model: str
    sweep: dict
    sizes: list[int]
    force_mae: list[float]  # eV/Å, mean over replicates per size
    force_ci: list  # 95 % interval per size: t over the replicates (>= 2), else the bootstrap over test frames
    energy_mae: list[float]  # eV/atom
    stress_mae: list[float]  # eV/Å^3
    force: PowerLaw | None
    energy: PowerLaw | None
    stress: PowerLaw | None
    training_marks: dict | None = None  # size -> "†"/"×": a fit of that size budget-limited or diverged


def _training_marks(rs: list[dict]) -> dict | None:
    from mlffbench.report import training

    out: dict[int, str] = {}
    for r in rs:
        m = training.mark(training.of(r))
        if m and m not in out.get(int(r["n_train"]), ""):
            out[int(r["n_train"])] = out.get(int(r["n_train"]), "") + m
    return out or None


def summarise(results: list[dict]) -> list[CurveRow]:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        key = (r["dataset"], r.get("element"), r["label"], tuple(sorted(r["point"]["sweep"].items())))
        groups.setdefault(key, []).append(r)
    rows = []
    for (dataset, element, label, sweep), rs in groups.items():
        n = np.array([r["n_train"] for r in rs], dtype=float)
        errs = {q: np.array([r["tests"]["test"]["overall"][f"{q}.mae"] for r in rs], dtype=float)
                for q in ("forces", "energy_per_atom", "stress")}
        sizes = sorted({int(v) for v in n})
        mean = {q: [_mean(e[n == s]) for s in sizes] for q, e in errs.items()}
        frames_ci = [(r["tests"]["test"]["overall"].get("forces.mae_lo", float("nan")),
                      r["tests"]["test"]["overall"].get("forces.mae_hi", float("nan"))) for r in rs]
        ci = [_interval(errs["forces"][n == s], [c for c, m in zip(frames_ci, n == s) if m]) for s in sizes]
        rows.append(CurveRow(dataset, element, label, dict(sweep), sizes, mean["forces"], ci, mean["energy_per_atom"],
                             mean["stress"], PowerLaw.fit(n, errs["forces"]), PowerLaw.fit(n, errs["energy_per_atom"]),
                             PowerLaw.fit(n, errs["stress"]), _training_marks(rs)))
    return rows


def table(rows: list[CurveRow]) -> str:
    def law(p):
        if not p:
            return "-"
        ci = f" [{p.b_ci[0]:+.2f}, {p.b_ci[1]:+.2f}]" if np.isfinite(p.b_ci[0]) else ""
        return f"{p.b:+.2f}{ci} ({p.r2:.2f})"

    header = ["data set", "model", "sweep", "frames", "F MAE", "F MAE 95% CI", "b_F [95% CI] (R²)", "b_E (R²)",
              "b_S (R²)"]
    units = ["", "", "", "", "meV/Å", "meV/Å", "", "", ""]
    body = [[r.dataset, r.model, ",".join(f"{k}={v}" for k, v in r.sweep.items()) or "-",
             "/".join(f"{s}{(r.training_marks or {}).get(s, '')}" for s in r.sizes),
             "/".join(f"{1e3 * v:.1f}" for v in r.force_mae),
             "/".join(interval_text(c, 1e3, 1) for c in r.force_ci), law(r.force), law(r.energy), law(r.stress)]
            for r in rows]
    return format_table(header, units, body) + ("\nF MAE 95% CI: Student t over the replicates (bootstrap over the "
                                                "test frames with one replicate); b: least-squares slope interval") + \
        ("\n† after a size: a fit of that size stopped by its training budget while still improving; × one "
         "diverged (the training table)" if any(r.training_marks for r in rows) else "")
