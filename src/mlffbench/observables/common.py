"""Shared pieces: the result envelope, relaxed ground-state cells, JSON cleaning and error helpers.

Every observable returns ``{"status", "error", "wall_s", "model", "reference", "errors", "settings"}``; a side
that fails keeps its reason in ``<side>.error`` and the envelope is ``failed`` (the other side is still kept).
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.neighborlist import neighbor_list
from ase.optimize import BFGS

from mlffbench import elements as elements_db
from mlffbench.data import build
from mlffbench.errors import MlffbenchError, one_line
from mlffbench.observables.settings import Settings

CUBIC = ("fcc", "bcc")
HEXAGONAL = ("hcp", "omega", "simple_hexagonal")


class ObservableFailure(MlffbenchError):
    """A physically failed computation (bad fit, non-finite energy...): recorded, never raised out."""


def clean(value: Any) -> Any:
    """JSON-able copy: numpy -> Python, non-finite floats -> None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def run_observable(
    settings: Settings,
    compute: Callable[[str], dict],
    score: Callable[[dict, dict], dict],
) -> dict:
    """Compute both sides (``compute("model")``, ``compute("reference")``), then score model vs reference.

    A side that raises is recorded as ``{"error": ...}``; scoring runs only when both sides succeeded.
    """
    start = time.perf_counter()
    sides, problems = {}, []
    for side in ("model", "reference"):
        try:
            sides[side] = compute(side)
        except Exception as exc:  # noqa: BLE001 - a failing potential is a result
            sides[side] = {"error": one_line(exc), "traceback": traceback.format_exc(limit=4)}
            problems.append(f"{side}: {one_line(exc)}")
    errors: dict = {}
    if not problems:
        try:
            errors = score(sides["model"], sides["reference"])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"scoring: {one_line(exc)}")
    return clean({
        "status": "failed" if problems else "ok",
        "error": "; ".join(problems) or None,
        "wall_s": time.perf_counter() - start,
        "model": sides["model"],
        "reference": sides["reference"],
        "errors": errors,
        "settings": settings.to_dict(),
    })


def error_pair(model: float, reference: float) -> dict:
    """Absolute (model - reference) and percent (100 |diff| / |reference|) error."""
    diff = model - reference
    percent = 100.0 * abs(diff) / abs(reference) if reference != 0 else (0.0 if diff == 0 else math.inf)
    return {"diff": diff, "abs": abs(diff), "percent": percent}


def lattice_of(element: str) -> str:
    lattice = elements_db.get(element).lattice
    if lattice not in build.BUILDABLE:
        raise ObservableFailure(f"{element}: lattice '{lattice}' is not buildable ({', '.join(build.BUILDABLE)})")
    return lattice


def primitive(element: str, lattice: str, a: float, c: float | None) -> Atoms:
    """Primitive cell with the cubic/hexagonal axes along x, y, z (Voigt axes of the elastic constants)."""
    if lattice in CUBIC:
        return bulk(element, lattice, a=a)
    return build.prototype(element, lattice, a, c)


def relaxed_primitive(element: str, calc, settings: Settings) -> tuple[Atoms, dict]:
    """Ground state relaxed with ``calc``: lattice parameters by ``build.relax_ground_state`` (energy minimum
    over a, c), then ions + cell polished with FrechetCellFilter + BFGS to ``settings.relax_fmax``.

    Returns the relaxed primitive cell (calculator detached) and a JSON-able summary.
    """
    lattice = lattice_of(element)
    ground = build.relax_ground_state(element, calc, lattice)
    atoms = primitive(element, lattice, ground.a, ground.c)
    atoms.calc = calc
    converged = BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=settings.relax_fmax,
                                                                  steps=settings.relax_steps)
    energy = atoms.get_potential_energy() / len(atoms)
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    if not (math.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
        raise ObservableFailure(f"{element}: non-finite energy/forces/stress at the relaxed ground state")
    lengths = atoms.cell.lengths()
    summary = {
        "lattice": lattice, "natoms": len(atoms), "energy_per_atom": energy,
        "volume_per_atom": atoms.get_volume() / len(atoms),
        "a": _lattice_a(atoms, lattice), "c": float(lengths[2]) if lattice in HEXAGONAL else None,
        "max_force": float(np.abs(forces).max()), "max_stress_GPa": float(np.abs(stress).max() / _gpa()),
        "relax_converged": bool(converged),
    }
    atoms.calc = None
    return atoms, summary


def _lattice_a(atoms: Atoms, lattice: str) -> float:
    """Conventional lattice constant a of a primitive cell built by ``primitive``."""
    volume = atoms.get_volume() / len(atoms)
    if lattice == "fcc":
        return (4 * volume) ** (1 / 3)
    if lattice == "bcc":
        return (2 * volume) ** (1 / 3)
    return float(atoms.cell.lengths()[0])


def conventional_a(volume_per_atom: float, lattice: str, c_over_a: float | None) -> float:
    """Lattice constant a (Å) at a volume per atom for a fixed cell shape (c/a for hexagonal cells)."""
    if lattice == "fcc":
        return (4 * volume_per_atom) ** (1 / 3)
    if lattice == "bcc":
        return (2 * volume_per_atom) ** (1 / 3)
    per_cell = {"hcp": 2, "omega": 3, "simple_hexagonal": 1}[lattice]
    return (per_cell * volume_per_atom / (math.sqrt(3) / 2 * c_over_a)) ** (1 / 3)


def ideal_nearest_neighbour(element: str) -> float:
    """Nearest-neighbour distance (Å) of the prototype at ASE's reference lattice parameters: a model-
    independent length scale for the crash test's minimum-distance criterion."""
    lattice = lattice_of(element)
    a, c = build.initial_guess(element, lattice)
    cell = build.prototype(element, lattice, a, c)
    return float(neighbor_list("d", cell, 1.2 * a).min())


def reference_md_cell(element: str, reference_calc, settings: Settings) -> tuple[Atoms, dict]:
    """The TM23 MD cell (Methods IV.A) on the reference's relaxed lattice: supercell with every vector
    >= ``md_min_length`` and one atom removed (seeded). Both sides run MD in this same cell and volume."""
    from mlffbench.data.sample import element_seed

    lattice = lattice_of(element)
    ground = build.relax_ground_state(element, reference_calc, lattice)
    rng = np.random.default_rng(element_seed(settings.seed, element, "vacancy"))
    cell, removed, repeats = build.tm23_cell(ground.atoms, settings.md_min_length, rng)
    return cell, {"a": ground.a, "c": ground.c, "repeats": list(repeats), "natoms": len(cell),
                  "removed_atom": removed}


def _gpa() -> float:
    from mlffbench.units import GPA

    return GPA
