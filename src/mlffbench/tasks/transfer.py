"""Temperature transferability (TM23 Figs 4-5, Tables S9-S13): train on every frame of one temperature (cold =
0.25 T_melt), test on every frame of each other temperature."""

from __future__ import annotations

from dataclasses import dataclass

from mlffbench.report_text import format_table

TITLE = "Temperature transfer: trained on one temperature, tested on the others (TM23 Figs 4-5)"


def jobs(config, model) -> list[dict]:
    t = config.tasks.transfer
    return [{"split": {"kind": "transfer", "train": t.train, "test": list(t.test)}, "point": {"train": t.train}}]


@dataclass
class TransferRow:
    element: str
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


def summarise(results: list[dict]) -> list[TransferRow]:
    rows = []
    for r in results:
        for label, t in r["tests"].items():
            o = t["overall"]
            rows.append(TransferRow(r["element"], r["label"], r["point"]["train"], r["n_train"], label, t["n_test"],
                                    o["forces.mae"], o["forces.percent"], o["energy_per_atom.mae"],
                                    o["energy_per_atom.percent"], o["stress.percent"]))
    return rows


def table(rows: list[TransferRow]) -> str:
    header = ["metal", "model", "train", "test", "F MAE", "F %", "E MAE", "E %", "S %"]
    units = ["", "", "", "", "meV/Å", "", "meV/atom", "", ""]
    body = [[r.element, r.model, f"{r.train} ({r.n_train})", f"{r.test} ({r.n_test})", f"{1e3 * r.force_mae:.2f}",
             f"{r.force_percent:.2f}", f"{1e3 * r.energy_mae:.3f}", f"{r.energy_percent:.3f}",
             f"{r.stress_percent:.2f}"] for r in rows]
    return format_table(header, units, body)
