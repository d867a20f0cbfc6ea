"""Accuracy (TM23 Tables S7-S8): train on the TM23 full split, test on its held-out frames; overall and per
temperature. Percent = 100 MAE/MAV (TM23 Eq. 2)."""

from __future__ import annotations

from dataclasses import dataclass

from mlffbench.report_text import format_table

TITLE = "Accuracy: TM23 full split (MAE; % = 100 MAE/MAV, TM23 Eq. 2)"


def jobs(config, model) -> list[dict]:
    return [{"split": {"kind": "tm23_full"}, "point": {}}]


@dataclass
class AccuracyRow:
    element: str
    model: str
    n_train: int
    n_test: int
    force_mae: float  # eV/Å, component-wise
    force_percent: float
    energy_mae: float  # eV/atom
    energy_percent: float
    stress_mae: float  # eV/Å^3
    stress_percent: float
    by_temperature: dict  # label -> {force_percent, energy_percent, stress_percent}
    fit_s: float


def summarise(results: list[dict]) -> list[AccuracyRow]:
    rows = []
    for r in results:
        t = r["tests"]["test"]
        o = t["overall"]
        rows.append(AccuracyRow(
            r["element"], r["label"], r["n_train"], t["n_test"], o["forces.mae"], o["forces.percent"],
            o["energy_per_atom.mae"], o["energy_per_atom.percent"], o["stress.mae"], o["stress.percent"],
            {k: {"force_percent": v["forces.percent"], "energy_percent": v["energy_per_atom.percent"],
                 "stress_percent": v["stress.percent"]} for k, v in t["by_temperature"].items()},
            r["cost"]["fit_s"]))
    return rows


def table(rows: list[AccuracyRow]) -> str:
    temps = sorted({k for r in rows for k in r.by_temperature}, key=_temperature_order)
    header = ["metal", "model", "train", "test", "F MAE", "F %", "E MAE", "E %", "S MAE", "S %"] + \
        [f"F % {t}" for t in temps] + ["fit s"]
    units = ["", "", "frames", "frames", "meV/Å", "", "meV/atom", "", "meV/Å³", ""] + [""] * len(temps) + [""]
    body = [[r.element, r.model, r.n_train, r.n_test, f"{1e3 * r.force_mae:.2f}", f"{r.force_percent:.2f}",
             f"{1e3 * r.energy_mae:.3f}", f"{r.energy_percent:.3f}", f"{1e3 * r.stress_mae:.3f}",
             f"{r.stress_percent:.2f}"]
            + [f"{r.by_temperature[t]['force_percent']:.2f}" if t in r.by_temperature else "-" for t in temps]
            + [f"{r.fit_s:.1f}"] for r in rows]
    return format_table(header, units, body)


def _temperature_order(label: str):
    return ({"cold": 0, "warm": 1, "melt": 2}.get(label, 3), label)
