"""Equation of state (MS25): energies over +-10 % volume around each side's own relaxed cell (fixed cell
shape, ions on their symmetry sites), Birch-Murnaghan and Murnaghan fits with ``ase.eos.EquationOfState``.

A fit is a failure when it raises, gives a non-finite or non-positive bulk modulus, or puts the minimum
outside the sampled volumes (an extrapolated minimum is not a fitted one)."""

from __future__ import annotations

import numpy as np
from ase.eos import EquationOfState
from ase.units import GPa

from mlffbench.observables.common import (
    HEXAGONAL, ObservableFailure, conventional_a, error_pair, relaxed_primitive, run_observable,
)
from mlffbench.observables.settings import Settings

NAME = "eos"


def curve(element: str, calc, settings: Settings) -> dict:
    atoms, ground = relaxed_primitive(element, calc, settings)
    lattice = ground["lattice"]
    c_over_a = ground["c"] / ground["a"] if lattice in HEXAGONAL else None
    volumes, energies = energy_volume(atoms, calc, settings)
    out = {"volumes": volumes, "energies": energies, "ground_state": ground}
    out.update(_fit(volumes, energies, "birchmurnaghan", lattice, c_over_a))
    out["murnaghan"] = _fit(volumes, energies, "murnaghan", lattice, c_over_a)
    return out


def energy_volume(atoms, calc, settings: Settings) -> tuple[list[float], list[float]]:
    """Volumes and energies per atom over +-eos_volume_range in volume (cell shape kept, scaled positions)."""
    n = len(atoms)
    volumes, energies = [], []
    for s in np.linspace(1 - settings.eos_volume_range, 1 + settings.eos_volume_range, settings.eos_points):
        strained = atoms.copy()
        strained.set_cell(atoms.cell * s ** (1 / 3), scale_atoms=True)
        strained.calc = calc
        volumes.append(strained.get_volume() / n)
        energies.append(strained.get_potential_energy() / n)
    if not np.all(np.isfinite(energies)):
        raise ObservableFailure("non-finite energy on the EOS curve")
    return volumes, energies


def _fit(volumes, energies, kind: str, lattice: str, c_over_a) -> dict:
    try:
        v0, e0, b = EquationOfState(np.asarray(volumes), np.asarray(energies), eos=kind).fit()
    except Exception as exc:  # noqa: BLE001 - ASE raises several types on a bad fit
        raise ObservableFailure(f"{kind} fit failed: {exc}") from None
    b_gpa = b / GPa
    if not (np.isfinite(v0) and np.isfinite(b_gpa) and b_gpa > 0):
        raise ObservableFailure(f"{kind} fit failed: V0={v0}, B={b_gpa} GPa")
    if not min(volumes) <= v0 <= max(volumes):
        raise ObservableFailure(f"{kind} fit failed: minimum V0={v0:.3f} Å³/atom outside the sampled volumes "
                                f"[{min(volumes):.3f}, {max(volumes):.3f}]")
    return {"v0": float(v0), "e0": float(e0), "B_GPa": float(b_gpa),
            "a0": conventional_a(float(v0), lattice, c_over_a), "fit": kind}


def score(model: dict, reference: dict) -> dict:
    out = {
        "a0_percent": error_pair(model["a0"], reference["a0"])["percent"],
        "v0_percent": error_pair(model["v0"], reference["v0"])["percent"],
        "B_percent": error_pair(model["B_GPa"], reference["B_GPa"])["percent"],
        "a0_A": model["a0"] - reference["a0"],
        "B_GPa": model["B_GPa"] - reference["B_GPa"],
        "e0_eV_atom": model["e0"] - reference["e0"],
    }
    out["murnaghan"] = {
        "a0_percent": error_pair(model["murnaghan"]["a0"], reference["murnaghan"]["a0"])["percent"],
        "B_percent": error_pair(model["murnaghan"]["B_GPa"], reference["murnaghan"]["B_GPa"])["percent"],
    }
    return out


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    return run_observable(settings, lambda side: curve(element, calcs[side], settings), score)
