"""Vacancy formation energy and migration barrier (MS25 scores NEB barriers; TM23 cells hold one vacancy).

Each side uses its own relaxed lattice: the conventional cell repeated until every vector is >=
``vacancy_min_length`` Å. Formation energy at constant volume with relaxed ions:
E_f = E(N-1, relaxed) - (N-1)/N E(N, perfect). Migration: the vacancy at site 0 swaps with its nearest
neighbour (one atom hops into the empty site); both end points are relaxed, ``neb_images`` linearly
interpolated images, climbing-image NEB (``ase.mep.NEB``, climb=True) optimised with FIRE; barrier =
max(E_image) - E_initial. A NEB that stops before ``neb_fmax`` is recorded with ``neb_converged: false``
(MS25 marks these) and its barrier is still reported.
"""

from __future__ import annotations

import numpy as np
from ase.mep import NEB
from ase.neighborlist import neighbor_list
from ase.optimize import BFGS, FIRE

from mlffbench.data import build
from mlffbench.observables.common import ObservableFailure, error_pair, relaxed_primitive, run_observable
from mlffbench.observables.settings import Settings

NAME = "vacancy"


def _relax(atoms, calc, settings: Settings) -> tuple[float, bool]:
    atoms.calc = calc
    converged = BFGS(atoms, logfile=None).run(fmax=settings.vacancy_fmax, steps=settings.relax_steps)
    energy = atoms.get_potential_energy()
    if not np.isfinite(energy):
        raise ObservableFailure("non-finite energy while relaxing the vacancy cell")
    return float(energy), bool(converged)


def compute(element: str, calc, settings: Settings) -> dict:
    _, ground = relaxed_primitive(element, calc, settings)
    conventional = build.prototype(element, ground["lattice"], ground["a"], ground["c"])
    perfect = conventional.repeat(build.supercell_repeats(conventional.cell, settings.vacancy_min_length))
    n = len(perfect)
    perfect.calc = calc
    e_perfect = perfect.get_potential_energy()
    perfect.calc = None

    # nearest neighbour of site 0 (lowest index among the nearest, so the choice is deterministic)
    i, j, d = neighbor_list("ijd", perfect, 1.2 * ground["a"])
    mask = i == 0
    order = np.lexsort((j[mask], np.round(d[mask], 6)))
    hop, hop_distance = int(j[mask][order[0]]), float(d[mask][order[0]])
    target = perfect.positions[0].copy()

    initial = perfect.copy()
    del initial[0]
    e_initial, relax_ok_i = _relax(initial, calc, settings)
    formation = e_initial - (n - 1) / n * e_perfect

    final = perfect.copy()
    final.positions[hop] = target
    del final[0]
    _, relax_ok_f = _relax(final, calc, settings)

    images = [initial] + [initial.copy() for _ in range(settings.neb_images)] + [final]
    neb = NEB(images, climb=True, method="improvedtangent", allow_shared_calculator=True)
    neb.interpolate()
    for image in images:
        image.calc = calc
    converged = bool(FIRE(neb, logfile=None).run(fmax=settings.neb_fmax, steps=settings.neb_steps))
    energies = np.array([image.get_potential_energy() for image in images])
    if not np.isfinite(energies).all():
        raise ObservableFailure("non-finite energy along the NEB path")
    return {
        "formation_eV": float(formation),
        "migration_eV": float(energies.max() - energies[0]),
        "neb_converged": converged,
        "neb_energies": (energies - energies[0]).tolist(),
        "neb_max_force": float(np.sqrt((neb.get_forces() ** 2).sum(axis=1)).max()),
        "natoms_perfect": n, "hop_distance_A": hop_distance,
        "endpoints_relaxed": relax_ok_i and relax_ok_f, "ground_state": ground,
    }


def score(model: dict, reference: dict) -> dict:
    out = {}
    for key in ("formation_eV", "migration_eV"):
        pair = error_pair(model[key], reference[key])
        out[key] = {"eV": pair["diff"], "percent": pair["percent"]}
    out["both_neb_converged"] = bool(model["neb_converged"] and reference["neb_converged"])
    return out


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    return run_observable(settings, lambda side: compute(element, calcs[side], settings), score)
