"""MD pieces shared by the RDF and the crash test: seeded Langevin NVT (ASE), pair distribution g(r)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.neighborlist import neighbor_list

from mlffbench.observables.settings import Settings
from mlffbench.units import FS


def start(atoms: Atoms, calc, temperature: float, seed: int) -> Atoms:
    """A copy of ``atoms`` with ``calc`` and seeded Maxwell-Boltzmann velocities at ``temperature`` (no drift)."""
    system = atoms.copy()
    system.calc = calc
    thermalize_momenta(system, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(system)
    return system


def langevin(system: Atoms, temperature: float, settings: Settings, seed: int) -> Langevin:
    """Langevin NVT; the centre of mass is held by ``FixCom`` (ASE's advice over the deprecated ``fixcm``)."""
    system.set_constraint(FixCom())
    return Langevin(system, timestep=settings.md_timestep_fs * FS, temperature_K=temperature,
                    friction=settings.md_friction / FS, fixcm=False, rng=np.random.default_rng(seed + 1))


def pair_distribution(frames: list[Atoms], rmax: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """g(r) averaged over frames, from ASE's periodic neighbour list (any rmax, no half-cell limit).

    g(r) = n(r) / (N rho 4 pi r^2 dr), n(r) = pairs counted from each atom in the shell [r, r + dr).
    """
    edges = np.linspace(0.0, rmax, bins + 1)
    counts = np.zeros(bins)
    density = 0.0
    for atoms in frames:
        d = neighbor_list("d", atoms, rmax)
        counts += np.histogram(d, bins=edges)[0] / len(atoms)
        density += len(atoms) / atoms.get_volume()
    counts /= len(frames)
    density /= len(frames)
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return r, counts / (density * shell)
