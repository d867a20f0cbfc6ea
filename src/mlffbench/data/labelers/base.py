"""The labeler contract: a reference method that gives an ASE calculator and can sample labelled NVT frames.

A labeler is what produces the "ground truth" labels of a benchmark (an EAM potential in LAMMPS, ASE EMT,
later DFT). Every labeler can label given frames (static energy/forces/stress) and run NVT MD returning
labelled frames; a labeler with a faster engine (LAMMPS) overrides ``run_nvt`` with its own fast path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlffbench import frames as fr
from mlffbench.units import FS


@dataclass(frozen=True)
class NVTSpec:
    """One NVT sampling run: equilibrate, then keep a frame every ``interval_fs`` until ``n_frames``.

    Defaults follow TM23 (Methods IV.A): 5 fs time step, Nosé-Hoover with a Nosé mass of 40 time steps,
    5 ps equilibration discarded, frames every 50 fs.
    """

    temperature: float  # K
    n_frames: int
    timestep_fs: float = 5.0
    interval_fs: float = 50.0
    equilibration_fs: float = 5000.0
    thermostat_steps: float = 40.0  # Nosé-Hoover relaxation time in time steps (TM23: Nosé mass of 40 steps)
    seed: int = 0

    @property
    def steps_per_frame(self) -> int:
        return int(round(self.interval_fs / self.timestep_fs))

    @property
    def equilibration_steps(self) -> int:
        return int(round(self.equilibration_fs / self.timestep_fs))

    def __post_init__(self):
        if self.temperature <= 0 or self.n_frames < 1 or self.timestep_fs <= 0:
            raise ValueError(f"invalid NVT spec {self}")
        if abs(self.steps_per_frame * self.timestep_fs - self.interval_fs) > 1e-9 or self.steps_per_frame < 1:
            raise ValueError(
                f"frame interval {self.interval_fs} fs is not a whole number of {self.timestep_fs} fs steps"
            )


def kinetic_temperature(atoms: Atoms) -> float:
    """Instantaneous kinetic temperature, K, with 3N-3 degrees of freedom (momentum conserved)."""
    from ase.units import kB

    n = len(atoms)
    dof = max(3 * n - 3, 1)
    return 2.0 * atoms.get_kinetic_energy() / (dof * kB)


class Labeler(ABC):
    """A reference method. Subclasses set ``name`` and implement ``calculator``, ``supports``, ``provenance``."""

    name: str = "labeler"

    @abstractmethod
    def supports(self, symbols: Sequence[str]) -> bool:
        """True when this labeler can label a system made of these chemical symbols."""

    @abstractmethod
    def calculator(self, symbols: Sequence[str]) -> Calculator:
        """A fresh ASE calculator for a system of these symbols (energy, forces, stress)."""

    @abstractmethod
    def provenance(self, symbols: Sequence[str]) -> str:
        """One string naming method, parameter file and version, stored with every labelled frame."""

    def spec(self) -> dict:
        """JSON-able description from which ``make_labeler`` rebuilds an equal labeler."""
        return {"name": self.name}

    def label(self, frames: Sequence[Atoms]) -> list[Atoms]:
        """Static energy/forces/stress for each frame; metadata in ``info`` is kept."""
        out: list[Atoms] = []
        calc = None
        symbols_seen = None
        for frame in frames:
            symbols = tuple(sorted(set(frame.get_chemical_symbols())))
            if calc is None or symbols != symbols_seen:
                calc, symbols_seen = self.calculator(symbols), symbols
            atoms = frame.copy()
            atoms.calc = calc
            energy = atoms.get_potential_energy()
            forces = atoms.get_forces()
            stress = atoms.get_stress(voigt=True) if atoms.pbc.all() else None
            info = dict(frame.info)
            info[fr.LABELER] = self.provenance(symbols)
            atoms.calc = None
            out.append(fr.labelled(atoms, energy, forces, stress, **info))
        return out

    def start_nvt(self, atoms: Atoms, spec: NVTSpec) -> Callable[[], list[Atoms]]:
        """Run the MD now; return a function that gives the labelled frames.

        Engines that leave raw output behind (LAMMPS) return before parsing it, so a caller can parse and
        write one trajectory in another thread while the next one runs. Here: the MD and frames at once.
        """
        frames = self.run_nvt(atoms, spec)
        return lambda: frames

    def run_nvt(self, atoms: Atoms, spec: NVTSpec) -> list[Atoms]:
        """NVT MD with ASE's Nosé-Hoover chain; returns ``spec.n_frames`` labelled frames.

        The generic (slow) path for calculators without an MD engine of their own.
        """
        from ase.md.nose_hoover_chain import NoseHooverChainNVT
        from ase.md.velocitydistribution import Stationary, thermalize_momenta

        system = atoms.copy()
        symbols = tuple(sorted(set(system.get_chemical_symbols())))
        system.calc = self.calculator(symbols)
        rng = np.random.default_rng(spec.seed)
        thermalize_momenta(system, temperature_K=spec.temperature, rng=rng)
        Stationary(system)
        dyn = NoseHooverChainNVT(
            system,
            timestep=spec.timestep_fs * FS,
            temperature_K=spec.temperature,
            tdamp=spec.thermostat_steps * spec.timestep_fs * FS,
        )
        dyn.run(spec.equilibration_steps)
        provenance = self.provenance(symbols)
        frames = []
        for index in range(spec.n_frames):
            dyn.run(spec.steps_per_frame)
            frames.append(
                fr.labelled(
                    system,
                    system.get_potential_energy(),
                    system.get_forces(),
                    system.get_stress(voigt=True),
                    **{fr.KINETIC_TEMPERATURE: kinetic_temperature(system), fr.FRAME_INDEX: index,
                       fr.LABELER: provenance},
                )
            )
        return frames
