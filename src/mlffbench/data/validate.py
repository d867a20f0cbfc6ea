"""Checks that frames are usable before anything trains or evaluates on them.

Every problem is a one-line ``DataError`` naming the source, the 0-based frame index and what is wrong.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list

from mlffbench import frames as fr
from mlffbench.errors import DataError

#: info key a reader sets when some stress components are deliberately unknown (stored as NaN).
STRESS_NOTE = "stress_note"
#: smallest accepted cell volume of a fully periodic frame, Å³
MIN_VOLUME = 1e-6


def validate_frames(
    frames: Sequence[Atoms],
    source: str,
    require: Iterable[str] = ("energy", "forces"),
    min_distance: float | None = 0.5,
    elements: Iterable[str] | None = None,
) -> list[Atoms]:
    """Return ``frames`` as a list if every frame passes; raise ``DataError`` at the first problem.

    Checks: at least one frame; known chemical symbols (and within ``elements`` when given); finite
    positions; a non-degenerate right-handed cell for periodic frames; no two atoms closer than
    ``min_distance`` Å (periodic images included; None or 0 skips); the labels in ``require`` present;
    energy, forces (natoms, 3) and stress (6 or 3x3) finite and of the right shape. Stress components
    may be NaN only when the frame carries ``info['stress_note']`` explaining why.
    """
    frames = list(frames)
    if not frames:
        raise DataError(f"{source}: no frames")
    require = tuple(require)
    allowed = None if elements is None else set(elements)
    for i, frame in enumerate(frames):
        where = f"{source}: frame {i}"
        _check_symbols(frame, where, allowed)
        _check_geometry(frame, where, min_distance)
        _check_labels(frame, where, require)
    return frames


def _check_symbols(frame: Atoms, where: str, allowed: set[str] | None) -> None:
    numbers = frame.numbers
    bad = (numbers <= 0) | (numbers >= len(chemical_symbols))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: unknown chemical element (atomic number {numbers[k]}) at atom {k}")
    if allowed is not None:
        outside = sorted(set(frame.get_chemical_symbols()) - allowed)
        if outside:
            raise DataError(f"{where}: elements {outside} are not among the expected {sorted(allowed)}")


def _check_geometry(frame: Atoms, where: str, min_distance: float | None) -> None:
    if len(frame) == 0:
        raise DataError(f"{where}: has no atoms")
    if not np.isfinite(frame.positions).all():
        raise DataError(f"{where}: positions contain NaN/inf")
    cell = np.asarray(frame.cell)
    if not np.isfinite(cell).all():
        raise DataError(f"{where}: cell contains NaN/inf")
    if frame.pbc.all():
        volume = np.linalg.det(cell)
        if volume < MIN_VOLUME:
            kind = "negative (left-handed cell)" if volume < -MIN_VOLUME else "zero"
            raise DataError(f"{where}: periodic cell has {kind} volume {volume:.3g} Å^3")
    elif frame.pbc.any():
        lengths = np.linalg.norm(cell[frame.pbc], axis=1)
        if (lengths < MIN_VOLUME).any():
            raise DataError(f"{where}: periodic direction with a zero-length cell vector")
    if min_distance:
        _check_distances(frame, where, min_distance)


def _check_distances(frame: Atoms, where: str, min_distance: float) -> None:
    i, j, d = neighbor_list("ijd", frame, min_distance)
    if len(d):
        k = int(np.argmin(d))
        raise DataError(f"{where}: atoms {i[k]} and {j[k]} are {d[k]:.3f} Å apart (< min_distance {min_distance} Å)")


def _check_labels(frame: Atoms, where: str, require: tuple[str, ...]) -> None:
    missing = [name for name in require if not fr.has_label(frame, name)]
    if missing:
        raise DataError(f"{where}: missing label(s) {', '.join(missing)}")
    results = frame.calc.results if frame.calc is not None else {}
    if results.get("energy") is not None:
        energy = np.asarray(results["energy"], dtype=float)
        if energy.size != 1 or not np.isfinite(energy).all():
            raise DataError(f"{where}: energy is not a finite number ({results['energy']!r})")
    if results.get("forces") is not None:
        forces = np.asarray(results["forces"], dtype=float)
        if forces.shape != (len(frame), 3):
            raise DataError(f"{where}: forces have shape {forces.shape}, expected ({len(frame)}, 3)")
        if not np.isfinite(forces).all():
            raise DataError(f"{where}: forces contain NaN/inf")
    if results.get("stress") is not None:
        _check_stress(np.asarray(results["stress"], dtype=float), frame, where)


def _check_stress(stress: np.ndarray, frame: Atoms, where: str) -> None:
    if stress.shape not in ((6,), (3, 3)):
        raise DataError(f"{where}: stress has shape {stress.shape}, expected (6,) or (3, 3)")
    if np.isinf(stress).any():
        raise DataError(f"{where}: stress contains inf")
    if np.isnan(stress).any() and not frame.info.get(STRESS_NOTE):
        raise DataError(f"{where}: stress contains NaN (and no info['{STRESS_NOTE}'] says why)")
