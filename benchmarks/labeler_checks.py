"""Verification checks of the shipped reference labelers, judged with the label tolerances
(``mlffbench.data.labelers.checks``): every TM23 default potential and the alternatives for its element on the
TM23 starting cell (relaxed ground state, supercell, vacancy), the ms25 recipes' potentials on their first cell,
and with ``--frames`` the given potentials on MD frames at 0.25 / 0.75 / 1.25 x T_melt (2 ps NVT each).

    .venv/bin/python benchmarks/labeler_checks.py [--frames Mo_snap Nb_uf3] [--only ID ...]
"""

from __future__ import annotations

import argparse
import time

from mlffbench import elements
from mlffbench.config import DataConfig
from mlffbench.data.labelers import checks as lc
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.labelers.lammps import LammpsLabeler
from mlffbench.data.labelers.base import NVTSpec
from mlffbench.data.sample import prepare_cell

CANDIDATES = {"Mo": ["Mo_meam_baskes", "Mo_snap", "MoCoNiVFeAlCr_2nn"], "Nb": ["Nb_meam_baskes", "Nb_uf3"],
              "Ir": ["Ir_meam_baskes"], "Rh": ["Rh_meam_baskes"], "Cr": ["Cr_meam_baskes"], "V": ["V_meam_baskes"],
              "W": ["W_meam_baskes", "W_snap_wood2017"], "Ta": ["Ta_meam_baskes"], "Ni": ["Ni_u3", "MoCoNiVFeAlCr_2nn"],
              "Cu": ["Cu_u3", "Cu_snap"], "Fe": ["MoCoNiVFeAlCr_2nn"], "Co": ["MoCoNiVFeAlCr_2nn"]}


def line(label: str, rec: dict, seconds: float) -> str:
    cells = []
    for c in rec["checks"]:
        m = c.get("measures") or {}
        value = (f"kink {m.get('force_kink', m.get('pressure_kink_GPa', 0)):.2g} jump {m.get('energy_jump', 0):.2g}"
                 if m else ("n/a" if c["value"] is None else f"{c['value']:.1e}"))
        cells.append(f"{c['name']}={c['status']}({value})")
    return f"{label:<34} {rec['status']:<16} {seconds:5.1f}s  " + " ".join(cells)


def check(el: str, pot_id: str, seed: int = 0, frames: bool = False) -> None:
    spec = {"name": "lammps", "potentials": {el: pot_id}}
    labeler = LammpsLabeler({el: pot_id})
    t0 = time.perf_counter()
    cell, _ = prepare_cell(el, DataConfig(), labeler, seed)
    prov, found = lc.measure(spec, cell, seed)
    print(line(f"{el} {pot_id} (TM23 cell)", lc.record(el, spec, prov, "", found), time.perf_counter() - t0),
          flush=True)
    if not frames:
        return
    t_melt = elements.get(el).t_melt
    for label, fraction in (("cold", 0.25), ("warm", 0.75), ("melt", 1.25)):
        t0 = time.perf_counter()
        md = labeler.run_nvt(cell, NVTSpec(fraction * t_melt, 2, equilibration_fs=2000.0, seed=seed + 1))
        prov, found = lc.measure(spec, md[-1], seed)
        print(line(f"{el} {pot_id} {label} {fraction * t_melt:.0f} K frame", lc.record(el, spec, prov, "", found),
                   time.perf_counter() - t0), flush=True)


def recipes() -> None:
    from mlffbench.data.recipes import hea, silica

    for recipe in (hea, silica):
        inputs = {"params": recipe.PARAMS, "seed": 0}
        atoms, where = recipe.check_structure(inputs)
        t0 = time.perf_counter()
        prov, found = lc.measure(recipe.reference(), atoms, 0)
        print(line(f"{recipe.__name__.split('.')[-1]} {recipe.POTENTIAL}", lc.record("", {}, prov, "", found),
                   time.perf_counter() - t0), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", nargs="*", default=[], help="potential ids to check on MD frames too")
    ap.add_argument("--only", nargs="*", help="only these potential ids")
    ap.add_argument("--no-recipes", action="store_true")
    args = ap.parse_args()
    todo = [(el, pid) for el, pid in pots.DEFAULT_POTENTIAL.items()]
    todo += [(el, pid) for el, ids in CANDIDATES.items() for pid in ids if (el, pid) not in todo]
    for el, pid in todo:
        if args.only is None or pid in args.only:
            check(el, pid, frames=pid in args.frames)
    if not args.no_recipes and args.only is None:
        recipes()


if __name__ == "__main__":
    main()
