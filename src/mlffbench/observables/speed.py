"""Inference speed: wall time of MD steps (velocity Verlet, one E+F+S evaluation per step) on supercells of
the reference-relaxed conventional cell from ~32 to >= 4000 atoms (``speed_sizes``, actual counts recorded).

Per size: one warm-up step (neighbour lists, compilation), then ``speed_steps`` timed steps. Reported:
µs/atom/step, MD steps/s, and the scaling exponent k of time/step ~ N^k (least squares in log-log; 1 =
linear). Single process, the threads the calculator uses (pin OMP_NUM_THREADS for comparable numbers).
"""

from __future__ import annotations

import math
import time

import numpy as np
from ase.md.verlet import VelocityVerlet

from mlffbench.data import build
from mlffbench.observables.common import lattice_of, run_observable
from mlffbench.observables.settings import Settings
from mlffbench.units import FS

NAME = "speed"


def repeats_for(cell, natoms: int, target: int) -> tuple[int, int, int]:
    """Repeats giving about ``target`` atoms in a near-cubic supercell."""
    lengths = np.linalg.norm(np.asarray(cell), axis=1)
    side = (target / natoms * np.prod(lengths)) ** (1 / 3)
    return tuple(max(1, int(round(side / length))) for length in lengths)


def supercells(element: str, reference_calc, settings: Settings) -> list:
    ground = build.relax_ground_state(element, reference_calc, lattice_of(element)).atoms
    rng = np.random.default_rng(settings.seed)
    cells, seen = [], set()
    for target in settings.speed_sizes:
        reps = repeats_for(ground.cell, len(ground), target)
        if reps in seen:
            continue
        seen.add(reps)
        cell = ground.repeat(reps)
        cell.rattle(0.02, rng=rng)  # off the perfect lattice: no symmetry shortcuts
        cells.append(cell)
    return cells


def compute(cells, calc, settings: Settings) -> dict:
    natoms, seconds = [], []
    for cell in cells:
        system = cell.copy()
        system.calc = calc
        dyn = VelocityVerlet(system, timestep=settings.md_timestep_fs * FS)
        dyn.run(1)
        start = time.perf_counter()
        dyn.run(settings.speed_steps)
        seconds.append((time.perf_counter() - start) / settings.speed_steps)
        natoms.append(len(system))
    n, t = np.array(natoms, float), np.array(seconds)
    exponent, _ = np.polyfit(np.log(n), np.log(t), 1)
    return {
        "natoms": natoms, "seconds_per_step": seconds, "us_per_atom_step": (1e6 * t / n).tolist(),
        "steps_per_s": (1.0 / t).tolist(), "scaling_exponent": float(exponent),
        "us_per_atom_step_largest": float(1e6 * t[-1] / n[-1]),
    }


def score(model: dict, reference: dict) -> dict:
    m, r = model["us_per_atom_step_largest"], reference["us_per_atom_step_largest"]
    return {"slowdown_vs_reference": m / r if r > 0 else math.inf,
            "exponent_diff": model["scaling_exponent"] - reference["scaling_exponent"]}


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    state = {}

    def compute_side(side):
        if "cells" not in state:
            state["cells"] = supercells(element, reference_calc, settings)
        return compute(state["cells"], calcs[side], settings)

    return run_observable(settings, compute_side, score)
