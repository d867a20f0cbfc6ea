"""Equation of state of a data set's own reference structures (MS25 Fig 5c: the lattice constant of a
high-entropy alloy over compositions): for each structure, energies over +-``eos_volume_range`` in volume (cell
shape kept, ions at their scaled positions: unrelaxed), a Birch-Murnaghan fit per side (``eos._fit``), and the
model's lattice-constant error against the reference calculator's. A structure carrying ``info['lattice']``
(fcc/bcc) reports the conventional lattice constant; otherwise the cube root of the volume per atom stands in
(its relative error is the same)."""

from __future__ import annotations

import numpy as np

from mlffbench.observables.common import error_pair, run_observable
from mlffbench.observables.eos import _fit, energy_volume
from mlffbench.observables.settings import Settings

NAME = "structure_eos"
ATOMS_PER_CELL = {"fcc": 4, "bcc": 2}


def curve(structure, calc, settings: Settings) -> dict:
    volumes, energies = energy_volume(structure, calc, settings)
    lattice = structure.info.get("lattice")
    fit = _fit(volumes, energies, "birchmurnaghan", "fcc", None)  # a0 below, from v0 and this structure's lattice
    fit["a0"] = float((ATOMS_PER_CELL.get(lattice, 1) * fit["v0"]) ** (1 / 3))
    return {"volumes": volumes, "energies": energies, **fit, "lattice": lattice or "volume per atom"}


def run(structures, model_calc, reference_calc, settings: Settings) -> dict:
    """One EOS per structure, both sides; the summary: mean and max |a0| error in %, and B error."""
    per = []
    for structure in structures:
        calcs = {"model": model_calc, "reference": reference_calc}
        result = run_observable(settings, lambda side: curve(structure, calcs[side], settings),
                                lambda m, r: {"a0_percent": error_pair(m["a0"], r["a0"])["percent"],
                                              "a0_A": m["a0"] - r["a0"],
                                              "B_percent": error_pair(m["B_GPa"], r["B_GPa"])["percent"]})
        result["structure"] = structure.info.get("composition") or structure.get_chemical_formula()
        per.append(result)
    ok = [r for r in per if r["status"] == "ok"]
    errors = {}
    if ok:
        a0 = np.array([r["errors"]["a0_percent"] for r in ok])
        errors = {"a0_percent": float(a0.mean()), "a0_percent_max": float(a0.max()),
                  "B_percent": float(np.mean([r["errors"]["B_percent"] for r in ok])), "structures": len(ok)}
    failed = [f"{r['structure']}: {r['error']}" for r in per if r["status"] != "ok"]
    return {"status": "ok" if ok else "failed", "error": "; ".join(failed) or None, "errors": errors,
            "structures": per, "model": {}, "reference": {}, "settings": settings.to_dict(),
            "wall_s": float(sum(r["wall_s"] for r in per))}
