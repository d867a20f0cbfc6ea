"""Electronic structure near the Fermi level (Metal-43 SI Figs 11-18): the sum of the eigenvalues below a shifted
Fermi level per smearing method, with GPAW on the element's primitive ground-state cell
(:mod:`mlffbench.experiments.electronic`). Applies to elemental periodic data sets; needs no model and no data.

One ``evaluate`` job per data set, not per model: the engine plans jobs per (data set, model); this task's job
carries no model in its inputs, so every model plans the same job and the planner keeps one (its name carries the
first model's label, nothing else of it). The report correlates the sensitivity with every model's force % error
of the same run.
A metal GPAW cannot do (not installed, no PAW setup: Tc; a ground state with no small cell: alpha-Mn, Ga Cmce) is
n/a with the reason at planning."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlffbench.report_text import format_table

TITLE = ("Electronic structure near the Fermi level (Metal-43 SI Figs 11-18): sum of eigenvalues below E_F + Δ, "
         "GPAW, no spin polarisation")


def refuse(config, dataset) -> str | None:
    from mlffbench.experiments import electronic as ex

    if dataset.element is None:
        return (f"the electronic-structure experiment needs an elemental data set; '{dataset.name}' has "
                f"{'-'.join(dataset.elements)}")
    if not dataset.periodic:
        return f"the electronic-structure experiment needs a periodic (bulk metal) data set; '{dataset.name}' is not"
    from mlffbench import elements as elements_db
    from mlffbench.errors import DataError

    try:
        elements_db.get(dataset.element)
    except DataError:
        return f"{dataset.element} is not one of the 43 metals (no ground-state prototype known)"
    return ex.refuse(dataset.element)


def jobs(config, dataset, model) -> list[dict]:
    """The data set's one job. Its inputs replace the model's (``model``, ``label``, ``params``: None/{}), so every
    model plans the same job key and the planner keeps one (named after the first model that runs the task); a
    model whose family has its own environment, or cannot be built, does not touch it."""
    return [{"kind": "evaluate", "split": {"kind": "none"}, "point": {},
             "inputs": {"model": None, "label": None, "params": {}, "element": dataset.element,
                        "settings": asdict(config.tasks.electronic)}}]


def protocol_notes(config, planned) -> list[str]:
    s = config.tasks.electronic
    return [f"electronic (Metal-43 SI Figs 11-18): GPAW {s.ecut:g} eV plane waves, PBE, k-spacing {s.kspacing:g} "
            f"1/Å, {', '.join(s.methods)} at {s.width_eV:g} eV, primitive cell at the "
            f"{'ASE reference-state' if s.lattice == 'ase' else 'GPAW-relaxed'} lattice constant, Fermi level "
            "shifted rigidly on the frozen eigenvalues; no spin polarisation (Metal-43 does not state it; Fe, Co, "
            "Ni are run non-magnetic); one job per data set, whatever the models"]


def run(inputs: dict, run_dir) -> dict:
    from mlffbench.experiments import electronic as ex

    result = ex.run_element(inputs["element"], inputs["settings"])
    return {"task": "electronic", "dataset": inputs["dataset"]["name"], "element": inputs["element"],
            "model": None, "label": None, **{k: v for k, v in result.items() if k != "element"}}


@dataclass
class ElectronicRow:
    dataset: str
    element: str
    method: str
    status: str  # ok | failed: reason
    fermi_level: float | None  # eV, GPAW's energy zero
    dos_ef: float | None  # states/eV/atom
    sensitivity: float | None  # |S(+0.2) - S(-0.2)| / 0.4, eV/atom per eV
    slope_0: float | None  # dS/dΔ at 0
    curvature: float | None  # of the E_F-referenced sum, states/eV/atom
    n_atoms: int
    kpts: str
    seconds: float | None
    lattice_source: str


def summarise(results: list[dict]) -> list[ElectronicRow]:
    rows = []
    for r in results:
        for method, m in r["methods"].items():
            ok = m["status"] == "ok"
            rows.append(ElectronicRow(
                r["dataset"], r["element"], method, "ok" if ok else f"failed: {m['reason']}",
                *(m[k] if ok else None for k in ("fermi_level", "dos_ef", "sensitivity", "slope_0", "curvature")),
                r["n_atoms"], "x".join(map(str, r["kpts"])), m.get("seconds"), r["lattice_source"]))
    return rows


def table(rows: list[ElectronicRow]) -> str:
    def num(v, spec):
        return "-" if v is None else format(v, spec)

    body = [[r.dataset, r.method, num(r.fermi_level, ".2f"), num(r.dos_ef, ".3f"), num(r.sensitivity, ".3f"),
             num(r.slope_0, ".3f"), num(r.curvature, ".3f"), r.n_atoms, r.kpts, num(r.seconds, ".1f"),
             "ok" if r.status == "ok" else r.status] for r in rows]
    return (format_table(["data set", "method", "E_F", "DOS(E_F)", "sensitivity", "dS/dΔ(0)", "curvature", "atoms",
                          "k-points", "SCF", "status"],
                         ["", "", "eV", "1/eV/atom", "eV/atom/eV", "eV/atom/eV", "1/eV/atom", "", "", "s", ""], body)
            + "\nsensitivity = |S(+0.2) - S(-0.2)| / 0.4 eV, S = smeared sum of eigenvalues below E_F + Δ per atom "
            "(absolute eigenvalues: ≈ E_F·DOS, GPAW's energy zero); curvature: the same sum from E_F, "
            "≈ DOS within ±0.2 eV")
