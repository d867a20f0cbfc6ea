"""Group hold-out transfer (TM23 Figs 4-5, Tables S9-S13: cold -> warm, melt; MS25: CHA -> MFI; a molecule:
300 K -> 600 K): train on every frame of the training group(s), test on every frame of each other group."""

from __future__ import annotations

from dataclasses import dataclass

from mlffbench.report_text import format_table

TITLE = "Transfer (group hold-out): trained on some groups, tested on others (TM23 Figs 4-5)"
#: a hold-out that no data set of the run can make is a config error (a mistyped group), not a silent n/a
MUST_APPLY = True


def refuse(config, dataset) -> str | None:
    return missing_groups(config.tasks.transfer, dataset, "tasks.transfer")


def missing_groups(hold_out, dataset, where: str) -> str | None:
    """Why a group hold-out (``TransferConfig``: train/test groups) cannot run on ``dataset``, else None."""
    for key, groups in (("train", hold_out.train_groups()), ("test", list(hold_out.test))):
        missing = [g for g in groups if g not in dataset.groups]
        if missing:
            return (f"{where}.{key}: group(s) {missing} not in data set '{dataset.name}' "
                    f"(groups: {', '.join(dataset.groups)})")
    return None


def jobs(config, dataset, model) -> list[dict]:
    t = config.tasks.transfer
    train = t.train_groups()
    return [{"split": {"kind": "holdout", "train": train, "test": list(t.test)}, "point": {"train": "+".join(train)}}]


@dataclass
class TransferRow:
    dataset: str
    element: str | None
    model: str
    train: str
    n_train: int
    test: str
    n_test: int
    force_mae: float  # eV/Å
    force_percent: float
    energy_mae: float  # eV/atom
    energy_percent: float
    stress_percent: float
    paths: dict | None = None  # reaction-path group -> barriers (jobs.path_barriers)


def summarise(results: list[dict]) -> list[TransferRow]:
    rows = []
    for r in results:
        for label, t in r["tests"].items():
            o = t["overall"]
            rows.append(TransferRow(r["dataset"], r.get("element"), r["label"], r["point"]["train"], r["n_train"],
                                    label, t["n_test"], o["forces.mae"], o["forces.percent"],
                                    o["energy_per_atom.mae"], o["energy_per_atom.percent"], o["stress.percent"],
                                    t.get("paths")))
    return rows


def table(rows: list[TransferRow]) -> str:
    header = ["data set", "model", "train", "test", "F MAE", "F %", "E MAE", "E %", "S %"]
    units = ["", "", "", "", "meV/Å", "", "meV/atom", "", ""]
    body = [[r.dataset, r.model, f"{r.train} ({r.n_train})", f"{r.test} ({r.n_test})", f"{1e3 * r.force_mae:.2f}",
             f"{r.force_percent:.2f}", f"{1e3 * r.energy_mae:.3f}", f"{r.energy_percent:.3f}",
             f"{r.stress_percent:.2f}"] for r in rows]
    from mlffbench.tasks.accuracy import barrier_line

    return format_table(header, units, body) + "".join(
        barrier_line(r.dataset, r.model, group, p) for r in rows for group, p in (r.paths or {}).items())
