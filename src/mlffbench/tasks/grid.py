"""Grid search (TM23 Methods IV.C.1 and SI S7, Tables S14-S17): every combination of the declared model params is
trained on a small subset (TM23: 200 frames) and tested on another (TM23: 100 frames); the best point per metal
and model is retrained on the full split and scored like the accuracy task.

Selection (TM23: "selected using a combination of maximum likelihood and minimum force MAE. If ... force MAE was
minimized with different parameters when compared to maximum likelihood, the parameters were taken from the
minimum force MAE calculation"): ``force_mae`` takes the minimum force MAE; the paper states no tie rule for
equal MAEs, here the larger log marginal likelihood wins, then the earlier grid point. ``likelihood`` takes the
maximum log marginal likelihood (ties: smaller force MAE). The table shows both choices and whether they agree.

The retrain job depends on every grid job of its metal and model; the coordinator resolves its params from their
results right before submission (``resolve``), so its key (a hash of the base params and the grid job keys) is
known at planning and a resumed run skips it like any other job.

``data: large`` is TM23's finite-size test (Fig 8, SI S7.C: a coarse B2 grid up to r_cut 10 Å on 640-atom Os
cells at 1.25 T_melt): the grid points and the retrain read a larger-cell data set of their own, planned as the
data variant ``grid-large`` (files under ``data-grid-large/``), so long cutoffs see real neighbours, not images.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

from mlffbench.errors import ConfigError
from mlffbench.report_text import format_table
from mlffbench.tasks import common

TITLE = ("Grid search: best params per metal (TM23 Tables S14-S17; grid F MAE on the grid test subset, "
         "log L = log marginal likelihood on the grid training subset; retrained on the full split)")

#: model families whose fit reports ``model_info.log_marginal_likelihood`` (GP models)
LIKELIHOOD_MODELS = ("acegp",)


#: TM23 SI S7 grid bounds for FLARE ACE (B1: Tables S14-S15, B2: Tables S16-S17)
TM23_ACE_GRID = {
    "B1": {"cutoff": [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], "n_max": list(range(1, 30, 2)), "l_max": [0]},
    "B2": {"cutoff": [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], "n_max": list(range(1, 20, 2)), "l_max": list(range(7))},
}

#: TM23 Fig 8 coarse grid on the 640-atom Os cell (B2, power 2); blank (out-of-memory) cells there are failed here
TM23_FIG8_GRID = {"cutoff": [4.0, 6.0, 8.0, 10.0], "n_max": list(range(1, 50, 4)), "l_max": [0, 2, 4, 6, 8]}

#: the data variant of ``data: large`` (its own name: its cells and temperatures differ from size_extensivity's)
LARGE = "grid-large"


def large_temperatures(config, entry) -> list[str]:
    g = config.tasks.grid
    return list(g.large_temperatures) if g.large_temperatures is not None else list(entry.temperatures)


def refuse(config, dataset) -> str | None:
    return common.generated_only(dataset, "the finite-size grid (data: large)") if config.tasks.grid.data == "large" \
        else None


def data_variants(config, dataset) -> dict[str, dict]:
    """The larger-cell data set of ``data: large`` (overrides of the generated data set's protocol), else none."""
    g, data = config.tasks.grid, dataset.entry
    if g.data != "large":
        return {}
    return {LARGE: {"min_length": g.large_min_length,
                    "frames_per_temperature": g.large_frames_per_temperature or data.frames_per_temperature,
                    "temperatures": {label: data.temperatures[label] for label in large_temperatures(config, data)}}}


def protocol_notes(config, planned) -> list[str]:
    g = config.tasks.grid
    rule = ("by minimum force MAE as TM23 (its tie rule for equal MAEs is unstated: larger likelihood wins)"
            if g.select == "force_mae" else
            "by maximum log marginal likelihood (TM23: force MAE decides when the two disagree)")
    large = g.data == "large"
    notes = [f"grid search: {g.train_frames} training / {g.test_frames} test frames per point "
             f"(TM23: {'200 / 50' if large else '200 / 100'}), "
             "both drawn at random (seeded, disjoint) from the training frames of the data set's split so its test set "
             "is not used for selection ("
             + ("TM23 Fig 8 took sequential frames" if large else "TM23 does not say which frames it used")
             + f"); selection {rule}; failed grid "
             "points are skipped (TM23 Fig 8 leaves out-of-memory points blank)"]
    generated = [ds for ds in planned if ds.source == "generate"]
    if large and generated:
        variant = data_variants(config, generated[0])[LARGE]
        notes.append(f"grid search finite-size test (TM23 Fig 8, SI S7.C): the grid runs on its own larger-cell data "
                     f"set, cells >= {g.large_min_length:g} Å, {variant['frames_per_temperature']} frames per "
                     f"temperature at {', '.join(variant['temperatures'])}, same MD protocol and labeler as the main "
                     "data (TM23: one 640-atom Os cell at 1.25 T_melt from AIMD, 200 train / 50 test sequential frames, "
                     "B2 power 2)" + ("; the best point is retrained on the large set's full split (TM23 Fig 8 "
                                      "retrains nothing)" if g.retrain else ""))
    for model in config.models:
        label = model.label or model.name
        if model.name != "acegp" or (model.tasks is not None and "grid" not in model.tasks):
            continue
        axes = g.axes(label)
        if large:
            tm23, bounds = TM23_FIG8_GRID, "TM23 Fig 8 (B2, power 2): cutoff 4-10 Å step 2, n_max 1-49 step 4, l_max 0-8 step 2"
        else:
            tm23 = TM23_ACE_GRID["B1" if model.params.get("descriptor") == "B1" else "B2"]
            bounds = "TM23 SI S7: cutoff 3-9 Å step 1, n_max 1-29 (B1) / 1-19 (B2) step 2, l_max 0 (B1) / 0-6 (B2)"
        if set(axes) != set(tm23) or any(sorted(map(_sortable, axes[k])) != sorted(map(_sortable, tm23[k]))
                                         for k in tm23):
            notes.append(f"grid search {label}: " + ", ".join(f"{k} {v}" for k, v in axes.items()) + f" ({bounds})")
    return notes


def _sortable(value) -> tuple:
    """Numbers compare by value (3 == 3.0), anything else by its text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def check(config, dataset) -> None:
    """The grid subsets must fit in the training frames of the split they are drawn from; ``data: large`` needs
    cells larger than the main ones and temperatures of the generated data."""
    g = config.tasks.grid
    source, of = dataset, f"of data set '{dataset.name}'"
    if g.data == "large":
        entry = dataset.entry
        if not g.large_min_length > entry.min_length:
            raise ConfigError(f"tasks.grid.large_min_length: must exceed data.min_length {entry.min_length:g}, "
                              f"got {g.large_min_length:g}")
        for i, label in enumerate(large_temperatures(config, entry)):
            if label not in entry.temperatures:
                raise ConfigError(f"tasks.grid.large_temperatures[{i}]: '{label}' is not a data temperature "
                                  f"({', '.join(entry.temperatures)})")
        from mlffbench.datasets import generate

        source = generate.variant(dataset, LARGE, data_variants(config, dataset)[LARGE])
        source.base_split = dataset.base_split
        of = f"of the large cells of '{dataset.name}'"
    pool, _ = common.pool(source, seed=config.seed)
    if g.train_frames + g.test_frames > pool:
        raise ConfigError(f"tasks.grid: train_frames {g.train_frames} + test_frames {g.test_frames} exceed the "
                          f"{pool} training frames {of} they are drawn from")


def jobs(config, dataset, model) -> list[dict]:
    g = config.tasks.grid
    label = model.label or model.name
    if g.select == "likelihood" and model.name not in LIKELIHOOD_MODELS:
        raise ConfigError(f"tasks.grid.select: 'likelihood' needs a model that reports a log marginal likelihood "
                          f"({', '.join(LIKELIHOOD_MODELS)}); model '{label}' does not (limit its tasks)")
    axes = g.axes(label)
    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    split = {"kind": "grid", "base": dataset.base_split, "train_frames": g.train_frames,
             "test_frames": g.test_frames}
    full = dict(dataset.base_split)
    extra = {}
    if g.data == "large":  # the split names its data set (jobs.training_and_tests loads it); the job waits for it
        split, full, extra = {**split, "data": LARGE}, {**full, "data": LARGE}, {"data": [LARGE]}
    specs = [{"split": split, "point": {"grid": p}, "params": p, "check": "tasks.grid.params", **extra}
             for p in points]
    if g.retrain:
        specs.append({"split": full, "point": {"best": g.select}, "after": list(range(len(points))), **extra})
    return specs


@dataclass
class Choice:
    rule: str
    params: dict  # the chosen grid point
    force_mae: float  # eV/Å on the grid test subset
    force_percent: float
    log_likelihood: float | None
    likelihood_params: dict | None  # the maximum-likelihood point (None: no point reported a likelihood)
    agree: bool | None  # min force MAE and max likelihood chose the same point
    n_points: int  # finished grid points the choice was made from
    n_failed: int


def _mae(r: dict) -> float:
    return r["tests"]["test"]["overall"]["forces.mae"]


def _lml(r: dict) -> float | None:
    value = (r.get("model_info") or {}).get("log_marginal_likelihood")
    return value if value is not None and math.isfinite(value) else None


def choose(results: list[dict | None], rule: str) -> Choice:
    """The best grid point of one metal and model; ``None`` entries are failed points. Raises if none finished."""
    ok = [r for r in results if r is not None and math.isfinite(_mae(r))]
    if not ok:
        raise RuntimeError(f"grid search: none of the {len(results)} grid points finished with a finite force MAE")
    # min()/max() return the first of equal keys: grid order is the last tie-breaker
    by_mae = min(ok, key=lambda r: (_mae(r), -(_lml(r) if _lml(r) is not None else -math.inf)))
    with_lml = [r for r in ok if _lml(r) is not None]
    by_lml = max(with_lml, key=lambda r: (_lml(r), -_mae(r))) if with_lml else None
    if rule == "likelihood":
        if by_lml is None:
            raise RuntimeError("grid search: select 'likelihood', but no grid point reported a log marginal likelihood")
        best = by_lml
    elif rule == "force_mae":
        best = by_mae
    else:
        raise ValueError(f"unknown grid selection rule {rule!r}")
    return Choice(rule, dict(best["point"]["grid"]), _mae(best), best["tests"]["test"]["overall"]["forces.percent"],
                  _lml(best), dict(by_lml["point"]["grid"]) if by_lml else None,
                  None if by_lml is None else by_lml is by_mae, len(ok), len(results) - len(ok))


def resolve(inputs: dict, after: list[dict | None]) -> dict:
    """The retrain job's inputs with the chosen point's params (called by the coordinator before submission)."""
    choice = choose(after, inputs["point"]["best"])
    return {**inputs, "params": {**inputs["params"], **choice.params}, "selection": asdict(choice)}


@dataclass
class GridRow:
    dataset: str
    element: str | None
    model: str
    choice: Choice
    n_train: int  # grid training subset
    n_test: int  # grid test subset
    retrained: dict | None  # full-split scores of the retrained best point (accuracy metrics) or None


def summarise(results: list[dict]) -> list[GridRow]:
    groups: dict[tuple, dict] = {}
    for r in results:
        group = groups.setdefault((r["dataset"], r.get("element"), r["label"]), {"points": [], "best": None})
        if "grid" in r["point"]:
            group["points"].append(r)
        else:
            group["best"] = r
    rows = []
    for (dataset, element, label), group in groups.items():
        best = group["best"]
        if best is not None:  # the choice the retrain job was given (it saw failed points too)
            choice = Choice(**best["selection"])
        elif group["points"]:  # no retrain: TM23's rule over the finished points
            choice = choose(group["points"], "force_mae")
        else:
            continue
        retrained = None
        if best is not None:
            o = best["tests"]["test"]["overall"]
            retrained = {"n_train": best["n_train"], "n_test": best["tests"]["test"]["n_test"],
                         "force_mae": o["forces.mae"], "force_percent": o["forces.percent"],
                         "energy_mae": o["energy_per_atom.mae"], "energy_percent": o["energy_per_atom.percent"],
                         "stress_percent": o["stress.percent"]}
        point = group["points"][0] if group["points"] else None
        rows.append(GridRow(dataset, element, label, choice, point["n_train"] if point else 0,
                            point["tests"]["test"]["n_test"] if point else 0, retrained))
    return rows


def table(rows: list[GridRow]) -> str:
    axes = list(dict.fromkeys(k for r in rows for k in r.choice.params))
    header = ["data set", "model"] + axes + ["points", "grid F MAE", "F %", "log L", "max-L point", "full F MAE",
                                          "F %", "E MAE", "S %"]
    units = ["", ""] + [""] * len(axes) + ["done/failed", "meV/Å", "", "", "", "meV/Å", "", "meV/atom", ""]
    body = []
    for r in rows:
        c, full = r.choice, r.retrained
        if c.agree is None:
            max_l = "-"
        elif c.agree:
            max_l = "same"
        else:
            max_l = " ".join(f"{k}={v}" for k, v in c.likelihood_params.items())
        body.append([r.dataset, r.model] + [c.params.get(k, "-") for k in axes]
                    + [f"{c.n_points}/{c.n_failed}", f"{1e3 * c.force_mae:.2f}", f"{c.force_percent:.2f}",
                       "-" if c.log_likelihood is None else f"{c.log_likelihood:.1f}", max_l]
                    + ([f"{1e3 * full['force_mae']:.2f}", f"{full['force_percent']:.2f}",
                        f"{1e3 * full['energy_mae']:.3f}", f"{full['stress_percent']:.2f}"] if full else ["-"] * 4))
    rules = sorted({r.choice.rule for r in rows})
    note = (f"\nselected by {', '.join(rules)} (force_mae: minimum force MAE, TM23's rule when the two disagree; "
            "ties -> larger likelihood)")
    return format_table(header, units, body) + note
