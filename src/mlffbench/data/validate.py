"""Checks that frames are usable before anything trains or evaluates on them.

Every problem is a one-line ``DataError`` naming the source, the 0-based frame index and what is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list
from ase.stress import voigt_6_to_full_3x3_stress

from mlffbench import frames as fr
from mlffbench.errors import DataError
from mlffbench.units import GPA, STRESS_CONVENTIONS, STRESS_UNITS, stress_factor

#: info key a reader sets when some stress components are deliberately unknown (stored as NaN) or derived.
STRESS_NOTE = "stress_note"
#: smallest accepted cell volume of a fully periodic frame, Å³
MIN_VOLUME = 1e-6
#: largest plausible stress component, eV/Å³ (≈160 GPa): beyond it, with no unit declared, the file's unit
#: was probably misread
MAX_PLAUSIBLE_STRESS = 1.0
#: a raw number "looks like" a unit when, read in that unit, it is a stress between these, GPa
_PLAUSIBLE_GPA = (0.01, MAX_PLAUSIBLE_STRESS / GPA)

# Sign check (check_stress_sign): strained copies of one cell, with identical fractional coordinates (the stress
# is then the exact derivative along the affine strain path) or relaxed (every force component below
# _RELAXED_FORCE eV/Å: the energy is stationary in the atoms' positions) with fractional coordinates within
# _RELAXED_SHIFT. At least _MIN_COPIES of them spanning _MIN_VOLUME_SPREAD in volume; pairs more than
# _MAX_STRAIN apart are not compared.
_RELAXED_FORCE, _RELAXED_SHIFT, _MIN_COPIES, _MIN_VOLUME_SPREAD, _MAX_STRAIN = 0.05, 0.02, 5, 0.02, 0.15
_CLAMPED_SHIFT = 1e-4  # "identical" fractional coordinates
#: agreement (cosine) between energy changes and the work of the labelled stress at or below which the sign is
#: called inverted; +1 is a perfect match, -1 a perfectly inverted sign
_INVERTED = -0.8


def validate_frames(
    frames: Sequence[Atoms],
    source: str,
    require: Iterable[str] = ("energy", "forces"),
    min_distance: float | None = 0.5,
    elements: Iterable[str] | None = None,
) -> list[Atoms]:
    """Return ``frames`` as a list if every frame passes; raise ``DataError`` at the first problem.

    Checks: at least one frame; one pbc for every frame (a file is all periodic or all non-periodic); known
    chemical symbols (and within ``elements`` when given); finite positions; a non-degenerate right-handed cell
    for periodic frames; stress only on fully periodic frames; no two atoms closer than
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
        if not np.array_equal(frame.pbc, frames[0].pbc):
            raise DataError(f"{where}: pbc {_pbc(frame)} differs from frame 0's {_pbc(frames[0])}; a data file is "
                            "all periodic or all non-periodic")
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
    if not frame.pbc.any():  # ASE bins the whole cell: a molecule in a 50 Å box would take 1e6 bins
        frame = Atoms(frame.numbers, frame.positions)
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
    if not frame.pbc.all():
        kind = "a non-periodic frame (a molecule has no stress)" if not frame.pbc.any() else "a partly periodic frame"
        raise DataError(f"{where}: stress label on {kind}, pbc {_pbc(frame)}; stress needs a fully periodic cell")
    if stress.shape not in ((6,), (3, 3)):
        raise DataError(f"{where}: stress has shape {stress.shape}, expected (6,) or (3, 3)")
    if np.isinf(stress).any():
        raise DataError(f"{where}: stress contains inf")
    if np.isnan(stress).any() and not frame.info.get(STRESS_NOTE):
        raise DataError(f"{where}: stress contains NaN (and no info['{STRESS_NOTE}'] says why)")


def _pbc(frame: Atoms) -> str:
    return " ".join("T" if p else "F" for p in frame.pbc)


def check_stress_plausible(frames: Sequence[Atoms], source: str, unit: str | None = None,
                           convention: str = "tensile") -> None:
    """Raise ``DataError`` at the first frame with a stress component beyond ``MAX_PLAUSIBLE_STRESS``.

    Readers call it only when the stress unit is the format's default (nobody declared it): a declared unit is
    trusted whatever the magnitude (high-pressure EOS frames are real data), so declaring the unit the file is in
    accepts the file. ``unit`` / ``convention``: what the reader assumed (None where the format fixes it); the
    message then names the units under which the file's number would be a plausible stress (0.01-160 GPa), the
    one giving the largest such value first, how to declare it, and that declaring ``unit`` itself accepts the
    number as it was read."""
    for i, frame in enumerate(frames):
        stress = fr.label(frame, "stress")
        if stress is None:
            continue
        finite = stress[np.isfinite(stress)]
        if not finite.size or np.abs(finite).max() <= MAX_PLAUSIBLE_STRESS:
            continue
        value = finite[np.argmax(np.abs(finite))]
        message = (f"{source}: frame {i}: stress component {value / GPA:.3g} GPa is implausible "
                   f"(|σ| > {MAX_PLAUSIBLE_STRESS / GPA:.0f} GPa)")
        if unit is not None:
            raw = value / stress_factor(unit, convention)
            # the unit is judged on the file's typical frame (median of each frame's largest component), so that
            # a compressed equation-of-state frame coming first does not hide which unit the file is in
            largest = [np.abs(s[np.isfinite(s)]).max() for s in (fr.label(f, "stress") for f in frames)
                       if s is not None and np.isfinite(s).any()]
            typical = float(np.median(largest)) / abs(stress_factor(unit, convention))
            fits = sorted(((typical * stress_factor(u, "tensile") / GPA, u) for u in STRESS_UNITS), reverse=True)
            fits = [u for gpa, u in fits if _PLAUSIBLE_GPA[0] <= gpa <= _PLAUSIBLE_GPA[1]]
            message += f": the file's number {raw:.4g} was read as {unit}"
            if not np.isclose(typical, abs(raw)):
                message += f"; its frames' typical largest number is {typical:.4g}"
            if fits:
                other = f" (or {', '.join(fits[1:])})" if fits[1:] else ""
                message += (f"; it looks like {fits[0]}{other}: declare it with --stress-unit {fits[0]} or "
                            f"stress_unit: {fits[0]}, and with --stress-convention compressive (stress_convention: "
                            "compressive) if the code that wrote it counts compression positive (VASP, LAMMPS "
                            "pressure, FitSNAP)")
            else:
                message += f"; no stress unit ({', '.join(STRESS_UNITS)}) makes it plausible: is it a stress?"
            message += (f"; if it really is {value / GPA:.3g} GPa (compressed equation-of-state cells), declare "
                        f"--stress-unit {unit} (stress_unit: {unit}) and it is accepted as read")
        raise DataError(message)


def check_stress_sign(frames: Sequence[Atoms], source: str, convention: str | None = None) -> None:
    """Raise ``DataError`` when the labelled stresses have the wrong sign, where the data can tell.

    Among strained copies of one cell (same atoms in the same order; relaxed or with identical fractional
    coordinates; at least ``_MIN_COPIES`` spanning ``_MIN_VOLUME_SPREAD`` in volume) the energy change from the
    lowest-energy copy to each other one must match the work of the labelled stress along the strain,
    ΔE ≈ Σ (V σ)_mean : E_Green (for a pure volume change, ΔE ≈ -P ΔV with P = -tr σ / 3). Their agreement
    (cosine over the copies) near -1 means the stress sign is inverted. MD frames (not relaxed, moving atoms) never
    form such a family, and copies at one volume are not judged. ``convention``: the one assumed, for the message."""
    for members in _strained_families(frames):
        if len(members) < _MIN_COPIES:
            continue
        volumes = np.array([frames[i].get_volume() for i in members])
        if np.ptp(volumes) < _MIN_VOLUME_SPREAD * np.median(volumes):
            continue
        energies = np.array([fr.label(frames[i], "energy") for i in members])
        ref = members[int(np.argmin(energies))]
        changes, works = [], []
        for i in members:
            work = None if i == ref else _work(frames[ref], frames[i])
            if work is not None:
                changes.append(fr.label(frames[i], "energy") - fr.label(frames[ref], "energy"))
                works.append(work)
        changes, works = np.array(changes), np.array(works)
        norm = np.linalg.norm(changes) * np.linalg.norm(works)
        if len(works) < _MIN_COPIES - 1 or norm == 0:
            continue
        agreement = float(changes @ works / norm)
        if agreement <= _INVERTED:
            other = {"tensile": "compressive", "compressive": "tensile"}.get(convention or "", "compressive")
            raise DataError(
                f"{source}: the stress sign looks inverted: in {len(works) + 1} strained copies of frame {ref} "
                f"({frames[ref].get_chemical_formula()}) the energy changes opposite to the work of the labelled "
                f"stress (agreement {agreement:+.2f}; +1 = consistent); the stress was read as "
                f"{convention or 'tensile'} (positive = {'compression' if convention == 'compressive' else 'tension'})"
                f": declare --stress-convention {other} or stress_convention: {other} "
                f"(allowed: {', '.join(STRESS_CONVENTIONS)})")


def strained_copies(frames: Sequence[Atoms], shift: float) -> list[list[int]]:
    """Indices of frames grouped into strained copies of one cell: the same atoms in the same order at the same
    fractional coordinates, within ``shift``. Frames are first bucketed on a 1/16 grid of fractional coordinates
    (so this stays linear in the number of frames): copies straddling a grid edge are missed, never mixed up."""
    buckets: dict[tuple, list[list[int]]] = defaultdict(list)
    first: dict[int, np.ndarray] = {}  # fractional coordinates of each family's first frame
    for i, frame in enumerate(frames):
        fractional = frame.get_scaled_positions(wrap=True)
        grid = (np.floor(fractional * 16 + 0.5) % 16).astype(np.int8)
        families = buckets[(frame.numbers.tobytes(), grid.tobytes())]
        for family in families:
            if np.abs((first[family[0]] - fractional + 0.5) % 1.0 - 0.5).max() <= shift:
                family.append(i)
                break
        else:
            families.append([i])
            first[i] = fractional
    return [family for families in buckets.values() for family in families]


def _strained_families(frames: Sequence[Atoms]) -> list[list[int]]:
    """Indices of frames that are strained copies of each other and carry energy and stress (see
    ``check_stress_sign``): clamped copies (identical fractional coordinates) and relaxed copies."""
    labelled = [i for i, frame in enumerate(frames)
                if frame.pbc.all() and fr.label(frame, "energy") is not None
                and fr.label(frame, "stress") is not None and np.isfinite(fr.label(frame, "stress")[:3]).all()]
    relaxed = [i for i in labelled
               if fr.label(frames[i], "forces") is not None
               and np.abs(fr.label(frames[i], "forces")).max() <= _RELAXED_FORCE]
    families = []
    for indices, shift in ((labelled, _CLAMPED_SHIFT), (relaxed, _RELAXED_SHIFT)):
        families += [[indices[k] for k in family] for family in strained_copies([frames[i] for i in indices], shift)]
    return families


def _work(ref: Atoms, other: Atoms) -> float | None:
    """Σ (V σ)_mean : E, E the Green strain taking ``ref``'s cell to ``other``'s (None when over _MAX_STRAIN or
    when it shears along a component whose stress is unknown)."""
    deformation = np.linalg.solve(ref.cell.array, other.cell.array)  # other.cell = ref.cell @ deformation
    green = 0.5 * (deformation @ deformation.T - np.eye(3))
    if np.abs(green).max() > _MAX_STRAIN:
        return None
    mean = 0.5 * sum(f.get_volume() * voigt_6_to_full_3x3_stress(fr.label(f, "stress")) for f in (ref, other))
    unknown = np.isnan(mean)
    if (np.abs(green[unknown]) > 1e-4).any():
        return None
    return float(np.sum(np.where(unknown, 0.0, mean) * green))
