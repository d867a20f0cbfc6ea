"""Elastic constants by finite strain with relaxed ions, around each side's own relaxed cell.

For each of the six Voigt strains e_j and each magnitude in ``settings.elastic_strains`` the cell is deformed
(x' = (1 + eps) x, engineering shear: eps_yz = e_4 / 2), the ions are relaxed at fixed cell (BFGS) and the
stress is read; C_ij = d sigma_i / d e_j by a least-squares line through the strained points (ASE's stress
sign: tensile positive, so sigma = C e). Cubic (fcc, bcc): C11, C12, C44 as averages over the equivalent
entries; hexagonal (hcp, omega, simple hexagonal; c along z): C11, C12, C13, C33, C44.
Cauchy pressure C12 - C44 (TM23 S4); hexagonal cells also report C13 - C44.
"""

from __future__ import annotations

import numpy as np
from ase.optimize import BFGS
from ase.units import GPa

from mlffbench.observables.common import (
    CUBIC, ObservableFailure, error_pair, relaxed_primitive, run_observable,
)
from mlffbench.observables.settings import Settings

NAME = "elastic"


def voigt_strain(j: int, magnitude: float) -> np.ndarray:
    eps = np.zeros((3, 3))
    if j < 3:
        eps[j, j] = magnitude
    else:
        a, b = {3: (1, 2), 4: (0, 2), 5: (0, 1)}[j]
        eps[a, b] = eps[b, a] = magnitude / 2
    return eps


def stiffness(atoms, calc, settings: Settings) -> tuple[np.ndarray, bool]:
    """Full 6x6 stiffness matrix (GPa) of ``atoms`` and whether every ionic relaxation converged."""
    strains = np.array(settings.elastic_strains)
    c = np.zeros((6, 6))
    all_converged = True
    for j in range(6):
        stresses = []
        for e in strains:
            strained = atoms.copy()
            strained.set_cell(atoms.cell @ (np.eye(3) + voigt_strain(j, e)), scale_atoms=True)
            strained.calc = calc
            if len(strained) > 1:
                all_converged &= bool(BFGS(strained, logfile=None).run(fmax=settings.relax_fmax,
                                                                      steps=settings.relax_steps))
            stress = strained.get_stress(voigt=True)
            if not np.isfinite(stress).all():
                raise ObservableFailure(f"non-finite stress at Voigt strain {j + 1} = {e}")
            stresses.append(stress)
        slope = np.polyfit(strains, np.array(stresses), 1)[0]  # (6,) d sigma_i / d e_j
        c[:, j] = slope / GPa
    return 0.5 * (c + c.T), all_converged


def constants(c: np.ndarray, lattice: str) -> dict:
    if lattice in CUBIC:
        out = {
            "C11": np.mean([c[0, 0], c[1, 1], c[2, 2]]),
            "C12": np.mean([c[0, 1], c[0, 2], c[1, 2]]),
            "C44": np.mean([c[3, 3], c[4, 4], c[5, 5]]),
        }
    else:
        out = {
            "C11": np.mean([c[0, 0], c[1, 1]]),
            "C12": c[0, 1],
            "C13": np.mean([c[0, 2], c[1, 2]]),
            "C33": c[2, 2],
            "C44": np.mean([c[3, 3], c[4, 4]]),
        }
    return {k: float(v) for k, v in out.items()}


def compute(element: str, calc, settings: Settings) -> dict:
    atoms, ground = relaxed_primitive(element, calc, settings)
    c, converged = stiffness(atoms, calc, settings)
    consts = constants(c, ground["lattice"])
    out = {
        "symmetry": "cubic" if ground["lattice"] in CUBIC else "hexagonal",
        "constants_GPa": consts,
        "cauchy_GPa": consts["C12"] - consts["C44"],
        "bulk_voigt_GPa": float((c[0, 0] + c[1, 1] + c[2, 2] + 2 * (c[0, 1] + c[0, 2] + c[1, 2])) / 9),
        "stiffness_GPa": c.tolist(),
        "ions_relaxed_converged": converged,
        "ground_state": ground,
    }
    if "C13" in consts:
        out["cauchy_C13_C44_GPa"] = consts["C13"] - consts["C44"]
    return out


def score(model: dict, reference: dict) -> dict:
    out = {}
    for name, ref in reference["constants_GPa"].items():
        pair = error_pair(model["constants_GPa"][name], ref)
        out[name] = {"GPa": pair["diff"], "percent": pair["percent"]}
    pair = error_pair(model["cauchy_GPa"], reference["cauchy_GPa"])
    out["cauchy"] = {"GPa": pair["diff"], "percent": pair["percent"]}
    out["mae_GPa"] = float(np.mean([abs(v["GPa"]) for k, v in out.items() if k.startswith("C")]))
    return out


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    return run_observable(settings, lambda side: compute(element, calcs[side], settings), score)
