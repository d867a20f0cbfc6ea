"""Shared pieces of the external-package adapters: training files, validation hold-out, the saved-model potential.

Adapters import their package lazily (inside fit / evaluate), so every adapter module imports in the main venv
for planning (``check_params``) and runs in its family environment (``Model.env``) for fitting.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

import ase.io
import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from mlffbench import frames as fr
from mlffbench.errors import ConfigError, MlffbenchError
from mlffbench.models.base import Potential

#: keys of the labels in the training files we write (prefixed so no package mistakes them for its own results)
ENERGY_KEY, FORCES_KEY, STRESS_KEY = "REF_energy", "REF_forces", "REF_stress"


class AdapterError(MlffbenchError):
    """An external package refused the data or failed to train; the message says which and why."""


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def write_training_xyz(frames: Sequence[Atoms], path: Path, stress: bool = True) -> Path:
    """extxyz with REF_energy (eV), REF_forces (eV/Å), REF_stress (3x3 eV/Å³, ASE sign: positive = tensile)."""
    out = []
    for frame in frames:
        atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=frame.pbc)
        atoms.info[ENERGY_KEY] = float(fr.label(frame, "energy"))
        atoms.arrays[FORCES_KEY] = np.asarray(fr.label(frame, "forces"), dtype=float)
        s = fr.label(frame, "stress")
        if stress and s is not None:
            atoms.info[STRESS_KEY] = voigt_6_to_full_3x3_stress(np.asarray(s)).reshape(9)
        out.append(atoms)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, out, format="extxyz")
    return path


def all_have_stress(frames: Sequence[Atoms]) -> bool:
    """True when every frame carries a stress label (never for non-periodic frames: they have none)."""
    return all(fr.has_label(f, "stress") for f in frames)


def species(frames: Sequence[Atoms]) -> list[str]:
    """The chemical symbols present, sorted alphabetically: the one stable type order of every adapter's type
    map (the same set of frames always gives the same order, whatever the atom order inside a frame)."""
    return sorted({s for f in frames for s in f.get_chemical_symbols()})


def energy_reference(frames: Sequence[Atoms], elements: Sequence[str] | None = None) -> dict[str, float]:
    """Per-element energy (eV/atom) by least squares of the total energies on the composition
    (``frames.per_element_energy``): the reference that families without their own are handed, so that total
    energies far from zero (e.g. all-electron molecular DFT, ~ -626 eV/atom) start from a zero-mean residual.
    When the compositions do not separate the elements (one molecule), the minimum-norm solution still
    reproduces the mean total energy of that composition. ``elements`` default to those in ``frames`` (one
    absent from them gets 0)."""
    return fr.per_element_energy(frames, list(elements) if elements is not None else species(frames))


#: Å of vacuum between periodic images of a non-periodic frame put into a box (above every cutoff in use)
VACUUM = 20.0


def boxed(atoms: Atoms, vacuum: float = VACUUM) -> Atoms:
    """A non-periodic frame (molecule, cluster) for codes that always need a cell or always treat it as periodic:
    a copy centred in an orthorhombic box with ``vacuum`` Å between images (the frame's own box, e.g. 50 Å or
    none at all, is replaced); labels and pbc (False) are kept. Periodic frames come back unchanged."""
    if atoms.pbc.any():
        return atoms
    out = Atoms(atoms.numbers, atoms.positions, pbc=False, info=dict(atoms.info))
    out.center(vacuum=vacuum / 2)
    if atoms.calc is None:
        return out
    return fr.labelled(out, *(fr.label(atoms, name) for name in ("energy", "forces", "stress")))


def hold_out(train: Sequence[Atoms], valid: Sequence[Atoms] | None, fraction: float, seed: int):
    """(train, valid): ``valid`` when given, else a seeded random ``fraction`` of ``train`` (at least one frame;
    TM23 IV.C.2 withholds 10 % of the training frames to monitor NequIP)."""
    train = list(train)
    if valid:
        return train, list(valid)
    if len(train) < 2:
        raise AdapterError(f"need at least 2 training frames to hold out a validation set (got {len(train)})")
    n_valid = max(1, int(round(fraction * len(train))))
    order = np.random.default_rng(seed).permutation(len(train))
    held = set(order[:n_valid].tolist())
    return [f for i, f in enumerate(train) if i not in held], [f for i, f in enumerate(train) if i in held]


def check_choice(family: str, params: dict, key: str, allowed: Sequence) -> None:
    if key in params and params[key] not in allowed:
        raise ConfigError(f"{family}: params.{key} = {params[key]!r} is not one of {list(allowed)}")


def check_positive(family: str, params: dict, keys: Sequence[str], integer: bool = False) -> None:
    for key in keys:
        if key not in params:
            continue
        value = params[key]
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise ConfigError(f"{family}: params.{key} must be {kind} (got {value!r})")


def check_nonnegative(family: str, params: dict, keys: Sequence[str]) -> None:
    for key in keys:
        if key in params and (isinstance(params[key], bool) or not isinstance(params[key], (int, float))
                              or params[key] < 0):
            raise ConfigError(f"{family}: params.{key} must be a number >= 0 (got {params[key]!r})")


def run_logged(args: list[str], log_path: Path, cwd, append: bool = False) -> tuple[int, float]:
    """Run a training program with stdout+stderr into ``log_path``: (return code, wall seconds)."""
    watch = Stopwatch()
    with open(log_path, "a" if append else "w") as log:
        proc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    return proc.returncode, watch.seconds()


def program_failed(program: str, returncode: int, log_path: Path, markers=("Error",)) -> "AdapterError":
    """One-line error for a failed training program: the last log line with a marker (else the last line)."""
    lines = Path(log_path).read_text().strip().splitlines() or ["(no output)"]
    why = next((ln for ln in reversed(lines) if any(m in ln for m in markers)), lines[-1])
    return AdapterError(f"{program} exited {returncode}: {why.strip()} (log {log_path})")


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


class CalculatorPotential(Potential):
    """A potential wrapping an ASE calculator built lazily from a saved model file (path relative to nothing:
    absolute, inside the job's model directory). Subclasses implement ``make_calculator``."""

    #: evaluate non-periodic frames in a fresh box (``boxed``): for codes that need a cell or ignore pbc
    box_molecules = False

    def __init__(self, model_file: str, info: dict[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.model_file = str(model_file)
        self.info = dict(info or {})
        self._calc = None

    def make_calculator(self):  # pragma: no cover - abstract in spirit; each family builds its own
        raise NotImplementedError

    @property
    def calculator(self):
        if self._calc is None:
            if not Path(self.model_file).exists():
                raise AdapterError(f"{self.family}: model file {self.model_file} not found")
            self._calc = self.make_calculator()
        return self._calc

    def evaluate(self, atoms: Atoms):
        work = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        if self.box_molecules:
            work = boxed(work)
        work.calc = self.calculator
        energy = work.get_potential_energy()
        forces = work.get_forces()
        # a non-periodic frame has no stress (none is trained either): zeros, which the metrics never compare
        # (the reference carries no stress label there)
        stress = work.get_stress(voigt=True) if atoms.pbc.all() else np.zeros(6)
        return float(energy), np.array(forces, dtype=float), np.array(stress, dtype=float)

    def state(self) -> dict:
        return {"model_file": self.model_file, "info": self.info}

    @classmethod
    def from_state(cls, state: dict):
        return cls(state["model_file"], state.get("info"))


def count_parameters(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


#: family params the run's training protocol now sets (``training:``), by the protocol key that replaces them
MOVED_TO_TRAINING = {"epochs": "max_epochs", "max_epochs": "max_epochs", "valid_fraction": "validation_fraction",
                     "dtype": "precision", "model_dtype": "precision", "param_dtype": "precision",
                     "device": "device"}


def check_moved(family: str, params: dict) -> None:
    """A param that the training protocol sets is refused with the key to use instead (one home per setting)."""
    for key, new in MOVED_TO_TRAINING.items():
        if key in params:
            raise ConfigError(f"{family}: params.{key} is set by the run's training protocol: use training.{new} "
                              f"(top-level training: block, or training: on this model)")


def write_command(workdir: Path, args: list[str], env: dict[str, str]) -> None:
    """``workdir/command.json``: the training program's argv and the environment variables the adapter adds, so
    the family's own CLI can be re-run by hand on the same files (benchmarks/training_throughput.py)."""
    import json

    (Path(workdir) / "command.json").write_text(json.dumps({"args": [str(a) for a in args], "env": env}, indent=1))
