"""Accuracy (TM23 Tables S7-S8): train on the data set's split (TM23 full split for generated data), test on its
held-out frames; overall, per group (TM23 temperature, config_type, ...) and per element (TEA). Percent = 100
MAE/MAV (TM23 Eq. 2)."""

from __future__ import annotations

from dataclasses import dataclass

from mlffbench import statistics
from mlffbench.report_text import format_table, interval_text
from mlffbench.units import GPA

TITLE = "Accuracy: each data set's split (MAE; % = 100 MAE/MAV, TM23 Eq. 2)"
CI_NOTE = (f"\n95% CI: bootstrap over the test frames ({statistics.N_RESAMPLES} seeded resamples; intervals of the % "
           "errors in the report's CSV); # ranks force MAE within a data set, '=' where intervals overlap (a tie)")


def jobs(config, dataset, model) -> list[dict]:
    return [{"split": dataset.base_split, "point": {}}]


@dataclass
class AccuracyRow:
    dataset: str
    element: str | None  # the element of an elemental data set (heatmaps), else None
    model: str
    n_train: int
    n_test: int
    force_mae: float  # eV/Å, component-wise
    force_percent: float
    energy_mae: float  # eV/atom
    energy_percent: float
    stress_mae: float  # eV/Å^3
    stress_percent: float
    by_group: dict  # group -> {force_mae, force_percent, energy_mae, energy_percent, stress_percent, n_test}
    by_element: dict  # element -> the same (multi-element data sets; per-element force rows, TEA)
    fit_s: float
    citation: str | None = None  # a published potential (no fit): whose it is
    paths: dict | None = None  # reaction-path group -> barrier of reference and model (eV), jobs.path_barriers
    intervals: dict | None = None  # "force_mae", "force_percent", ... -> 95 % bootstrap interval (internal units)
    rank: str = ""  # by force MAE within the data set; "2=" ties with a neighbour (overlapping intervals)
    failed_checks: list | None = None  # verification checks this potential fails (tasks.checks), marked with "!"
    family: str = ""  # registry name (mean_energy is the baseline of the sanity flags)
    b1: bool = False  # an acegp/FLARE model on the two-body B1 descriptor
    training: dict | None = None  # epoch-trained fits: the training record without its curve (report.training)


def summarise(results: list[dict]) -> list[AccuracyRow]:
    rows = []
    for r in results:
        t = r["tests"]["test"]
        o = t["overall"]
        rows.append(AccuracyRow(
            r["dataset"], r.get("element"), r["label"], r["n_train"], t["n_test"], o["forces.mae"],
            o["forces.percent"], o["energy_per_atom.mae"], o["energy_per_atom.percent"], o["stress.mae"],
            o["stress.percent"], {k: _brief(v) for k, v in t.get("by_group", {}).items()},
            {k: _brief(v) for k, v in t.get("by_element", {}).items()}, r["cost"]["fit_s"],
            (r.get("model_info") or {}).get("citation"), t.get("paths"), intervals(o), family=r["model"],
            b1=(r.get("params") or {}).get("descriptor") == "B1", training=_training().brief(_training().of(r))))
    rank(rows)
    return rows


def intervals(flat: dict) -> dict:
    """{"force_mae": (lo, hi), ...} of a flattened test score (NaN where it was not stored)."""
    return {f"{short}_{stat}": (flat.get(f"{q}.{stat}_lo", float("nan")), flat.get(f"{q}.{stat}_hi", float("nan")))
            for short, q in (("force", "forces"), ("energy", "energy_per_atom"), ("stress", "stress"))
            for stat in statistics.STATS}


def mark(rows: list[AccuracyRow], failing: dict) -> list[AccuracyRow]:
    """Attach the failing verification checks ({(data set, model): [check]}, ``tasks.checks.failing``)."""
    for r in rows:
        r.failed_checks = failing.get((r.dataset, r.model))
    return rows


def _training():
    from mlffbench.report import training

    return training


def marked_rank(r: AccuracyRow) -> str:
    """The rank with its marks: "!" fails verification checks, "†" budget-limited training, "×" diverged."""
    return r.rank + ("!" if r.failed_checks else "") + _training().mark(r.training)


def check_notes(rows) -> str:
    """The footnote naming the potentials of a ranking that fail verification checks, then those whose training
    its budget stopped while still improving or that diverged (report.training)."""
    return "".join(f"\n! {r.dataset} {r.model} fails verification checks: {', '.join(r.failed_checks)}"
                   for r in rows if r.failed_checks) + \
        _training().notes((r.dataset, r.model, r.training) for r in rows)


BASELINE = "mean_energy"
SANITY = (("force_mae", "force MAE", 1e3, "meV/Å"), ("energy_mae", "energy MAE", 1e3, "meV/atom"),
          ("stress_mae", "stress MAE", 1 / GPA, "GPa"))
B1_NOTE = ("acegp/FLARE with B1: the normalised dot-product kernel sees only the direction of the descriptor, and "
           "a 2 % compression changes a B1 (two-body, radial) descriptor's length by ~6 % but its direction by "
           "1 - cos ~ 6e-4, so the model cannot follow the volume: the error is all pressure (quick Cu: 16.6 GPa "
           "pressure vs 0.06 GPa deviatoric); with the un-normalised term raw_dot_weight 10 the stress MAE drops "
           "from 8.3 to 0.06 GPa (benchmarks/b1_stress.py)")


B1_MARK = "[B1 stress: see the B1 note]"


def baseline_notes(flags: list[str]) -> list[str]:
    """The explanations the flag lines point to, each once (the B1 stress note where a line is marked)."""
    return [f"B1 note: {B1_NOTE}"] if any(B1_MARK in line for line in flags) else []


def baseline_flags(rows: list[AccuracyRow]) -> list[str]:
    """One line per (data set, model, quantity) where a model is worse than the data set's mean_energy baseline
    (per-element mean energy, zero forces and stress): the numbers, and for acegp B1 stress a mark pointing to the
    reason, which ``baseline_notes`` gives once."""
    out = []
    for r, base, (attr, name, factor, unit) in baseline_worse(rows):
        mine, theirs = getattr(r, attr), getattr(base, attr)
        ci = interval_text((r.intervals or {}).get(attr), factor)
        why = f" {B1_MARK}" if attr == "stress_mae" and r.family in ("acegp", "flare") and r.b1 else ""
        out.append(f"{r.dataset} {r.model}: {name} {factor * mine:.3g} {unit} (95% CI {ci}) is worse "
                   f"than {base.model}'s {factor * theirs:.3g} {unit}{why}")
    return out


def baseline_worse(rows: list[AccuracyRow]) -> list[tuple[AccuracyRow, AccuracyRow, tuple]]:
    """(row, its data set's baseline row, the SANITY entry) wherever a model is worse than mean_energy."""
    out = []
    for base in (r for r in rows if r.family == BASELINE):
        for r in rows:
            if r.dataset != base.dataset or r.family in (BASELINE, "labeler"):
                continue
            for entry in SANITY:
                mine, theirs = getattr(r, entry[0]), getattr(base, entry[0])
                if mine == mine and theirs == theirs and mine > theirs:
                    out.append((r, base, entry))
    return out


def rank(rows: list[AccuracyRow]) -> None:
    """Rank the models of each data set by force MAE; ties where the bootstrap intervals overlap."""
    for name in dict.fromkeys(r.dataset for r in rows):
        mine = [r for r in rows if r.dataset == name]
        for r, label in zip(mine, statistics.tie_ranks([r.force_mae for r in mine],
                                                       [r.intervals["force_mae"] for r in mine])):
            r.rank = label


def barriers(rows) -> str:
    """Lines with the reaction barriers along the data sets' paths, model vs reference."""
    return "".join(barrier_line(r.dataset, r.model, group, p) for r in rows for group, p in (r.paths or {}).items())


def barrier_line(dataset: str, model: str, group: str, p: dict) -> str:
    return (f"\nbarrier along {group} ({p['frames']} frames) {dataset} {model}: model {1e3 * p['barrier_model_eV']:.1f} "
            f"meV vs reference {1e3 * p['barrier_ref_eV']:.1f} meV (error {1e3 * p['barrier_error_eV']:+.1f} meV; "
            f"highest frame {p['highest_frame_model']} vs {p['highest_frame_ref']})")


def citations(rows) -> str:
    """The footnote naming every published potential of a table (they are scored, not trained)."""
    cited = dict.fromkeys((r.model, r.citation) for r in rows if r.citation)
    return "".join(f"\n[published, not trained here] {model}: {citation}" for model, citation in cited)


def _brief(flat: dict) -> dict:
    return {"force_mae": flat["forces.mae"], "force_percent": flat["forces.percent"],
            "energy_mae": flat["energy_per_atom.mae"], "energy_percent": flat["energy_per_atom.percent"],
            "stress_percent": flat["stress.percent"], "n_test": int(flat["energy_per_atom.n"]),
            "force_mae_ci": intervals(flat)["force_mae"]}


def table(rows: list[AccuracyRow]) -> str:
    """One table over every data set. Force % per TM23 temperature as columns; any other groups (a user's
    config_type, a molecule's test sets, some without forces) get rows of their own below, with their energy MAE,
    next to the per-element rows of multi-element data sets."""
    groups = sorted({g for r in rows if len(r.by_group) > 1 for g in r.by_group}, key=group_order)
    inline = groups if set(groups) <= {"cold", "warm", "melt"} else []
    header = ["data set", "model", "#", "train", "test", "F MAE", "95% CI", "F %", "E MAE", "95% CI", "E %",
              "S MAE", "95% CI", "S %"] + [f"F % {g}" for g in inline] + ["fit s"]
    units = ["", "", "rank", "frames", "frames", "meV/Å", "", "", "meV/atom", "", "", "meV/Å³", "", ""] + \
        [""] * len(inline) + [""]
    body = [[r.dataset, r.model, marked_rank(r), r.n_train, r.n_test, f"{1e3 * r.force_mae:.2f}",
             interval_text((r.intervals or {}).get("force_mae"), 1e3), f"{r.force_percent:.2f}",
             f"{1e3 * r.energy_mae:.3f}", interval_text((r.intervals or {}).get("energy_mae"), 1e3, 3),
             f"{r.energy_percent:.3f}", f"{1e3 * r.stress_mae:.3f}",
             interval_text((r.intervals or {}).get("stress_mae"), 1e3, 3), f"{r.stress_percent:.2f}"]
            + [f"{r.by_group[g]['force_percent']:.2f}" if g in r.by_group else "-" for g in inline]
            + [f"{r.fit_s:.1f}"] for r in rows]
    flagged = baseline_flags(rows)
    flags = "".join(f"\nWORSE THAN THE BASELINE: {line}" for line in flagged)
    flags += "".join(f"\n{note}" for note in baseline_notes(flagged))
    out = format_table(header, units, body) + CI_NOTE + check_notes(rows) + flags + citations(rows) + barriers(rows)
    parts = [("group", "by_group")] * (not inline) + [("element", "by_element")]
    breakdown = [[r.dataset, r.model, f"{kind} {name}", v["n_test"], f"{1e3 * v['force_mae']:.2f}",
                  interval_text(v.get("force_mae_ci"), 1e3), f"{v['force_percent']:.2f}",
                  f"{1e3 * v['energy_mae']:.3f}", f"{v['stress_percent']:.2f}"]
                 for r in rows for kind, attr in parts if len(getattr(r, attr)) > 1
                 for name, v in sorted(getattr(r, attr).items(), key=lambda kv: group_order(kv[0]))]
    if breakdown:
        out += ("\n\nper group / per element (element: forces of that element's atoms, energy and stress of the "
                "frames that contain it)\n" + format_table(
            ["data set", "model", "subset", "test", "F MAE", "95% CI", "F %", "E MAE", "S %"],
            ["", "", "", "frames", "meV/Å", "", "", "meV/atom", ""], breakdown))
    return out


def group_order(label: str):
    """TM23's temperatures in their order, then any other group by name."""
    return ({"cold": 0, "warm": 1, "melt": 2}.get(label, 3), label)
