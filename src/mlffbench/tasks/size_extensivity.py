"""Size extensivity (MS25 "System Size Cross Validation", Fig 4): a second data set per metal made by the same
TM23 protocol in larger supercells (every lattice vector >= ``large_min_length`` instead of ``data.min_length``).
One model is trained on each cell size (the same number of frames, drawn seeded from each set's full-split
training frames) and both are tested on the held-out frames of both sizes. A local model is size-extensive when
the cross-size error equals the error of the model trained at the test size: ratio = error(trained on the other
size) / error(trained on the test size), per-atom energy and force components."""

from __future__ import annotations

from dataclasses import dataclass

from mlffbench.errors import ConfigError
from mlffbench.report_text import format_table
from mlffbench.tasks import common

TITLE = ("Size extensivity: trained on small or large cells, tested on both (MS25 Fig 4; ratio = error / error of "
         "the model trained at the test size)")

CELLS = ("small", "large")


def protocol_notes(config, planned) -> list[str]:
    se = config.tasks.size_extensivity
    small = sorted({ds.entry.min_length for ds in planned if ds.source == "generate"})
    return [f"size extensivity: TM23-protocol bulk cells >= {'/'.join(f'{x:g}' for x in small) or '?'} Å vs >= "
            f"{se.large_min_length:g} Å, {se.frames_per_temperature} frames per temperature in the large cells, both "
            "models trained on the same number of frames (MS25: MgO(100) slabs 2x2 vs 4x4 and water 64 vs 192 "
            "molecules, 1000 training images each)"]


def refuse(config, dataset) -> str | None:
    return common.generated_only(dataset, "size extensivity")


def data_variants(config, dataset) -> dict[str, dict]:
    """Data sets this task needs besides the main one: name -> overrides of the generation protocol."""
    se = config.tasks.size_extensivity
    return {"large": {"min_length": se.large_min_length, "frames_per_temperature": se.frames_per_temperature}}


def train_frames(config, dataset) -> int:
    from mlffbench.datasets import generate

    se = config.tasks.size_extensivity
    if not se.large_min_length > dataset.entry.min_length:
        raise ConfigError(f"tasks.size_extensivity.large_min_length: must exceed data.min_length "
                          f"{dataset.entry.min_length:g}, got {se.large_min_length:g}")
    large = generate.variant(dataset, "large", data_variants(config, dataset)["large"])
    large.base_split = dataset.base_split
    pools = {"small": common.pool(dataset, seed=config.seed)[0],
             "large": common.pool(large, seed=config.seed, key="tasks.size_extensivity.frames_per_temperature "
                                                                "(large cells)")[0]}
    n = se.train_frames or pools["large"]
    if n > min(pools.values()):
        raise ConfigError(f"tasks.size_extensivity.train_frames: {n} exceeds the training frames of the small "
                          f"({pools['small']}) or large ({pools['large']}) cells of '{dataset.name}'")
    return n


def check(config, dataset) -> None:
    train_frames(config, dataset)


def jobs(config, dataset, model) -> list[dict]:
    n = train_frames(config, dataset)
    return [{"split": {"kind": "size", "base": dataset.base_split, "train": cell, "train_frames": n},
             "point": {"train": cell}, "data": ["large"]} for cell in CELLS]


@dataclass
class SizeRow:
    dataset: str
    element: str | None
    model: str
    train: str  # cell size trained on
    test: str  # cell size tested on
    train_atoms: int  # atoms per training cell
    test_atoms: int  # atoms per test cell
    n_train: int
    n_test: int
    energy_mae: float  # eV/atom
    energy_percent: float
    force_mae: float  # eV/Å
    force_percent: float
    stress_percent: float
    energy_ratio: float | None  # cross-size rows: MAE / MAE of the model trained at the test size
    force_ratio: float | None


def summarise(results: list[dict]) -> list[SizeRow]:
    rows = []
    for r in results:
        for test, t in r["tests"].items():
            o = t["overall"]
            rows.append(SizeRow(r["dataset"], r.get("element"), r["label"], r["point"]["train"], test,
                                round(r["n_train_atoms"] / max(r["n_train"], 1)), round(t["n_atoms"] / t["n_test"]),
                                r["n_train"], t["n_test"], o["energy_per_atom.mae"], o["energy_per_atom.percent"],
                                o["forces.mae"], o["forces.percent"], o["stress.percent"], None, None))
    same = {(r.dataset, r.model, r.test): r for r in rows if r.train == r.test}
    for r in rows:
        ref = same.get((r.dataset, r.model, r.test))
        if r.train != r.test and ref is not None:
            r.energy_ratio = r.energy_mae / ref.energy_mae if ref.energy_mae > 0 else None
            r.force_ratio = r.force_mae / ref.force_mae if ref.force_mae > 0 else None
    rows.sort(key=lambda r: (r.dataset, r.model, CELLS.index(r.train), r.train != r.test))
    return rows


def table(rows: list[SizeRow]) -> str:
    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    header = ["data set", "model", "train -> test", "atoms", "frames", "E MAE", "E %", "F MAE", "F %", "S %",
              "E ratio", "F ratio"]
    units = ["", "", "", "train/test", "train/test", "meV/atom", "", "meV/Å", "", "", "", ""]
    body = [[r.dataset, r.model, f"{r.train} -> {r.test}", f"{r.train_atoms}/{r.test_atoms}", f"{r.n_train}/{r.n_test}",
             f"{1e3 * r.energy_mae:.3f}", f"{r.energy_percent:.3f}", f"{1e3 * r.force_mae:.2f}",
             f"{r.force_percent:.2f}", f"{r.stress_percent:.2f}", ratio(r.energy_ratio), ratio(r.force_ratio)]
            for r in rows]
    return format_table(header, units, body)
