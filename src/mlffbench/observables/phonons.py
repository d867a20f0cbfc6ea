"""Phonons (TM23 Fig. 7): phonopy finite displacements on each side's own relaxed primitive cell.

Supercell: the primitive cell repeated until every lattice vector is >= ``phonon_min_length`` Å. The standard
path is ASE's ``cell.bandpath`` (Setyawan-Curtarolo special points) built once on the prototype at ASE's
reference lattice parameters, so both sides are evaluated at the same fractional q-points (errors compare
like with like even when the two lattice constants differ); each side's path distances use its own
reciprocal cell. Frequencies in THz (phonopy's default units for eV, Å, amu). DOS on a Gamma-centred mesh
with Gaussian smearing; overlap = integral of min(g_model, g_ref) over normalised DOS (1 = identical).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.dft.kpoints import BandPath

from mlffbench.data import build
from mlffbench.observables.common import (
    ObservableFailure, lattice_of, primitive, relaxed_primitive, run_observable,
)
from mlffbench.observables.settings import Settings

NAME = "phonons"


def standard_path(element: str, settings: Settings) -> BandPath:
    lattice = lattice_of(element)
    a, c = build.initial_guess(element, lattice)
    return primitive(element, lattice, a, c).cell.bandpath(npoints=settings.phonon_path_points)


def force_constants(atoms: Atoms, calc, settings: Settings):
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.array(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions())
    repeats = build.supercell_repeats(atoms.cell, settings.phonon_min_length)
    phonon = Phonopy(unit, supercell_matrix=np.diag(repeats))
    phonon.generate_displacements(distance=settings.phonon_displacement)
    forces = []
    for sc in phonon.supercells_with_displacements:
        displaced = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        displaced.calc = calc
        f = displaced.get_forces()
        if not np.isfinite(f).all():
            raise ObservableFailure("non-finite forces in a displaced supercell")
        forces.append(f)
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    return phonon, repeats


def compute(element: str, calc, settings: Settings) -> dict:
    atoms, ground = relaxed_primitive(element, calc, settings)
    phonon, repeats = force_constants(atoms, calc, settings)
    path = standard_path(element, settings)
    own_path = BandPath(atoms.cell, kpts=path.kpts, special_points=path.special_points, path=path.path)
    distances, label_distances, labels = own_path.get_linear_kpoint_axis()
    phonon.run_qpoints(path.kpts)
    freqs = phonon.qpoints.frequencies  # (n_q, n_branches), THz; imaginary -> negative
    n = settings.phonon_mesh
    phonon.run_mesh([n, n, n], is_gamma_center=True)
    phonon.run_total_dos(sigma=settings.phonon_dos_sigma)
    dos = phonon.total_dos
    min_freq = float(freqs.min())
    return {
        "distances": distances, "frequencies_THz": freqs, "labels": labels,
        "label_distances": label_distances, "qpoints": path.kpts,
        "dos_THz": dos.frequency_points, "dos": dos.dos,
        "imaginary": bool(min_freq < -settings.phonon_imaginary_tol), "min_frequency_THz": min_freq,
        "supercell_repeats": list(repeats), "n_displacements": len(phonon.supercells_with_displacements),
        "ground_state": ground,
    }


def dos_overlap(f_a, g_a, f_b, g_b) -> float:
    """Overlap of two DOS curves on a common grid after normalising each to unit area (1 = identical)."""
    grid = np.union1d(np.asarray(f_a), np.asarray(f_b))
    a = np.interp(grid, f_a, g_a, left=0.0, right=0.0)
    b = np.interp(grid, f_b, g_b, left=0.0, right=0.0)
    a /= np.trapezoid(a, grid)
    b /= np.trapezoid(b, grid)
    return float(np.trapezoid(np.minimum(a, b), grid))


def score(model: dict, reference: dict) -> dict:
    fm, fr_ = np.asarray(model["frequencies_THz"]), np.asarray(reference["frequencies_THz"])
    if fm.shape != fr_.shape:
        raise ObservableFailure(f"band shapes differ: model {fm.shape}, reference {fr_.shape}")
    diff = fm - fr_
    return {
        "freq_mae_THz": float(np.abs(diff).mean()),
        "freq_rmse_THz": float(np.sqrt((diff**2).mean())),
        "freq_max_THz": float(np.abs(diff).max()),
        "max_frequency_percent": float(100 * abs(fm.max() - fr_.max()) / abs(fr_.max())),
        "dos_overlap": dos_overlap(model["dos_THz"], model["dos"], reference["dos_THz"], reference["dos"]),
        "imaginary_model": model["imaginary"], "imaginary_reference": reference["imaginary"],
    }


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    return run_observable(settings, lambda side: compute(element, calcs[side], settings), score)
