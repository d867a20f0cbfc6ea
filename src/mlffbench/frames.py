"""A frame is an ``ase.Atoms`` with its labels on a SinglePointCalculator and its metadata in ``atoms.info``.

This is the one in-memory representation of labelled data in mlffbench: readers return it, labelers produce
it, models consume it, and ASE's extxyz writer stores it losslessly (energy, forces, stress and info keys).
Stress is always the 6-component Voigt vector in ASE order (xx, yy, zz, yz, xz, xy), eV/Å³, ASE sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

# Metadata keys written into atoms.info by the data protocol (and read by splits and metrics).
ELEMENTS = "elements"  # e.g. "Cu" or "Cu-Ni" (sorted, '-' joined)
TEMPERATURE_LABEL = "temperature_label"  # cold / warm / melt (or any user label)
TARGET_TEMPERATURE = "target_temperature"  # K
KINETIC_TEMPERATURE = "kinetic_temperature"  # K, instantaneous, from the velocities
FRAME_INDEX = "frame_index"  # 0-based position of the frame in its trajectory
TRAJECTORY = "trajectory"  # trajectory id, e.g. "Cu_warm"
LABELER = "labeler"  # provenance string of the labeler that produced energy/forces/stress
SOURCE = "source"  # file the frame was read from
GROUP = "group"  # free subset label (e.g. the mlearn group: AIMD-NVT, Elastic, ...)


def labelled(
    atoms: Atoms,
    energy: float | None,
    forces: np.ndarray | None,
    stress: np.ndarray | None,
    **info,
) -> Atoms:
    """Return a copy of ``atoms`` carrying the given labels and metadata.

    ``stress`` may be a 3x3 tensor or a Voigt 6-vector in ASE order; it is stored as the Voigt 6-vector.
    """
    frame = atoms.copy()
    frame.info.update(info)
    results = {}
    if energy is not None:
        results["energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.array(forces, dtype=float).reshape(len(atoms), 3)
    if stress is not None:
        s = np.asarray(stress, dtype=float)
        results["stress"] = full_3x3_to_voigt_6_stress(s) if s.shape == (3, 3) else s.reshape(6).copy()
    frame.calc = SinglePointCalculator(frame, **results)
    return frame


def has_label(frame: Atoms, name: str) -> bool:
    """True when the frame carries the label ``name`` (energy, forces or stress)."""
    calc = frame.calc
    return calc is not None and calc.results.get(name) is not None


def label(frame: Atoms, name: str) -> np.ndarray | float | None:
    """The stored label without triggering any calculation (None when absent)."""
    calc = frame.calc
    if calc is None:
        return None
    value = calc.results.get(name)
    if name == "stress" and value is not None:
        value = np.asarray(value, dtype=float)
        if value.shape == (3, 3):
            value = full_3x3_to_voigt_6_stress(value)
    return value


def element_key(symbols: Iterable[str]) -> str:
    """Canonical name of a chemical system: sorted unique symbols joined by '-'."""
    return "-".join(sorted(set(symbols)))


def per_element_energy(frames: Sequence[Atoms], elements: Sequence[str],
                       values: Sequence[float] | None = None) -> dict[str, float]:
    """Per-element constants c_el (eV/atom) minimising Σ_frames (value - Σ_el n_el c_el)² (least squares on the
    composition; minimum-norm when the compositions do not separate the elements). ``values`` default to the
    frames' total energies; ``elements`` are chemical symbols."""
    counts = np.array([[f.get_chemical_symbols().count(el) for el in elements] for f in frames], dtype=float)
    if values is None:
        values = [label(f, "energy") for f in frames]
    coef = np.linalg.lstsq(counts, np.asarray(values, dtype=float), rcond=None)[0]
    return {el: float(c) for el, c in zip(elements, coef)}


@dataclass
class LabelArrays:
    """Labels of a list of frames, stacked for vectorised metrics.

    energies: (n_frames,) total energies, eV; natoms: (n_frames,);
    forces: (sum natoms, 3) eV/Å; stresses: (n_frames, 6) eV/Å³ (NaN rows where a frame has no stress).
    """

    energies: np.ndarray
    natoms: np.ndarray
    forces: np.ndarray
    stresses: np.ndarray
    symbols: np.ndarray  # (sum natoms,) chemical symbol of each force row

    @property
    def frame_of_atom(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.natoms)), self.natoms)


def stack_labels(frames: Sequence[Atoms]) -> LabelArrays:
    """Stack the labels of ``frames``; a missing label becomes NaN so metrics can skip it explicitly."""
    energies, natoms, forces, stresses, symbols = [], [], [], [], []
    for frame in frames:
        n = len(frame)
        natoms.append(n)
        e = label(frame, "energy")
        energies.append(np.nan if e is None else float(e))
        f = label(frame, "forces")
        forces.append(np.full((n, 3), np.nan) if f is None else np.asarray(f, dtype=float))
        s = label(frame, "stress")
        stresses.append(np.full(6, np.nan) if s is None else np.asarray(s, dtype=float))
        symbols.extend(frame.get_chemical_symbols())
    return LabelArrays(
        energies=np.asarray(energies, dtype=float),
        natoms=np.asarray(natoms, dtype=int),
        forces=np.concatenate(forces) if forces else np.zeros((0, 3)),
        stresses=np.asarray(stresses, dtype=float).reshape(-1, 6),
        symbols=np.asarray(symbols, dtype=object),
    )


def shortest_distance(frames, limit: float) -> float | None:
    """The shortest interatomic distance in ``frames`` (periodic images included), Å; ``inf`` when no two atoms are
    closer than ``limit``; None for no frame with two atoms. Molecules: all pairs. Periodic frames: a neighbour list
    of at most 3 Å (ASE's costs ~50x more at 10 Å), wider up to ``limit`` only while no pair is found."""
    from ase.neighborlist import neighbor_list

    best, seen = float("inf"), False
    for frame in frames:
        if len(frame) < 2 and not frame.pbc.any():
            continue
        seen = True
        if not frame.pbc.any():
            pos = frame.positions
            d = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))[np.triu_indices(len(pos), 1)]
        else:
            d = neighbor_list("d", frame, min(limit, max(best, 3.0)))
            if not len(d) and best == float("inf") and limit > 3.0:
                d = neighbor_list("d", frame, limit)
        if len(d):
            best = min(best, float(d.min()))
    return best if seen else None
