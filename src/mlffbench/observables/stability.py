"""MD stability crash test (TEA Challenge 2023) and NVE energy drift; the reference gets the same runs, so its
survival is the baseline.

Both sides start from the same TM23 cell (reference-relaxed lattice, one vacancy) with the same seeds:
* ramp: Langevin NVT, target raised linearly from ``ramp_start`` to ``ramp_end`` x T_melt over ``ramp_steps``;
* hold: Langevin NVT at ``hold_temperature`` x T_melt for ``hold_steps``;
* NVE: velocity Verlet from ``nve_temperature`` x T_melt for ``nve_steps``; drift = slope of a straight line
  through the total energy per atom (meV/atom/ps; signed).
Every ``check_interval`` steps the run fails on: a calculator error, non-finite energy or forces, a force
above ``max_force`` eV/Å, two atoms closer than ``min_distance_fraction`` x the ideal nearest-neighbour
distance, or a kinetic temperature above ``max_temperature_factor`` x the current target. Time to failure is
the simulated time at the first failed check; the last frame that passed a check is written (extxyz) into
the work directory. Run lengths are far below TEA's (ns): defaults are 10 ps per protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import write
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list

from mlffbench import elements as elements_db
from mlffbench.data.labelers.base import kinetic_temperature
from mlffbench.data.sample import element_seed
from mlffbench.errors import one_line
from mlffbench.observables import md
from mlffbench.observables.common import ideal_nearest_neighbour, reference_md_cell, run_observable
from mlffbench.observables.settings import Settings
from mlffbench.units import FS

NAME = "stability"


def failure(system, target: float, settings: Settings, min_distance: float) -> str | None:
    """Why this state fails the crash test, or None when it passes."""
    try:
        energy = system.get_potential_energy()
        forces = system.get_forces()
    except Exception as exc:  # noqa: BLE001 - a calculator that gives up is a crash
        return f"calculator error: {one_line(exc)}"
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(system.positions).all()):
        return "non-finite energy or forces"
    fmax = float(np.linalg.norm(forces, axis=1).max())
    if fmax > settings.max_force:
        return f"max force {fmax:.3g} eV/Å > {settings.max_force}"
    d = neighbor_list("d", system, min_distance)
    if len(d):
        return f"interatomic distance {d.min():.3f} Å < {min_distance:.3f} Å"
    temperature = kinetic_temperature(system)
    if temperature > settings.max_temperature_factor * target:
        return f"temperature {temperature:.0f} K > {settings.max_temperature_factor:g} x target {target:.0f} K"
    return None


def nvt_run(protocol: str, cell, calc, t_start: float, t_end: float, steps: int, element: str,
            settings: Settings, min_distance: float, save_to: Path | None) -> dict:
    seed = element_seed(settings.seed, element, protocol, "stability")
    dt_ps = settings.md_timestep_fs / 1000.0
    system = md.start(cell, calc, t_start, seed)
    dyn = md.langevin(system, t_start, settings, seed)
    reason, done, last_good = None, 0, system.copy()
    target = t_start
    while done < steps:
        chunk = min(settings.check_interval, steps - done)
        try:
            dyn.run(chunk)
        except Exception as exc:  # noqa: BLE001
            reason = f"calculator error: {one_line(exc)}"
        done += chunk
        if reason is None:
            reason = failure(system, target, settings, min_distance)
        if reason is not None:
            break
        last_good = system.copy()
        target = t_start + (t_end - t_start) * done / steps
        dyn.set_temperature(temperature_K=target)
    path = None
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        path = save_to / f"{element}_{protocol}_last_good.extxyz"
        write(path, last_good, format="extxyz")
    return {
        "protocol": protocol, "target_K": t_end, "survived": reason is None,
        "time_to_failure_ps": done * dt_ps if reason else None, "reason": reason,
        "simulated_ps": done * dt_ps, "last_good_frame": str(path) if path else None,
    }


def nve_drift(cell, calc, element: str, settings: Settings) -> dict:
    temperature = settings.nve_temperature * elements_db.get(element).t_melt
    seed = element_seed(settings.seed, element, "nve", "stability")
    system = md.start(cell, calc, temperature, seed)
    dyn = VelocityVerlet(system, timestep=settings.md_timestep_fs * FS)
    times, energies = [0.0], [system.get_total_energy() / len(system)]
    dt_ps = settings.md_timestep_fs / 1000.0
    done = 0
    try:
        while done < settings.nve_steps:
            chunk = min(settings.check_interval, settings.nve_steps - done)
            dyn.run(chunk)
            done += chunk
            times.append(done * dt_ps)
            energies.append(system.get_total_energy() / len(system))
            if not np.isfinite(energies[-1]):
                return {"nve_drift_meV_atom_ps": None, "nve_reason": "non-finite total energy",
                        "nve_simulated_ps": done * dt_ps}
    except Exception as exc:  # noqa: BLE001
        return {"nve_drift_meV_atom_ps": None, "nve_reason": f"calculator error: {one_line(exc)}",
                "nve_simulated_ps": done * dt_ps}
    slope = np.polyfit(times, energies, 1)[0]
    return {"nve_drift_meV_atom_ps": float(1e3 * slope), "nve_reason": None, "nve_simulated_ps": done * dt_ps,
            "nve_energy_fluctuation_meV_atom": float(1e3 * np.std(energies)), "nve_temperature_K": temperature}


def compute(element: str, cell, calc, settings: Settings, save_to: Path | None) -> dict:
    t_melt = elements_db.get(element).t_melt
    d_min = settings.min_distance_fraction * ideal_nearest_neighbour(element)
    runs = [
        nvt_run("ramp", cell, calc, settings.ramp_start * t_melt, settings.ramp_end * t_melt,
                settings.ramp_steps, element, settings, d_min, save_to),
        nvt_run("hold", cell, calc, settings.hold_temperature * t_melt, settings.hold_temperature * t_melt,
                settings.hold_steps, element, settings, d_min, save_to),
    ]
    return {"runs": runs, **nve_drift(cell, calc, element, settings), "min_distance_A": d_min}


def score(model: dict, reference: dict) -> dict:
    def survived(side):
        return {r["protocol"]: r["survived"] for r in side["runs"]}

    out = {"model_survived": survived(model), "reference_survived": survived(reference),
           "model_survival_fraction": float(np.mean(list(survived(model).values()))),
           "reference_survival_fraction": float(np.mean(list(survived(reference).values())))}
    dm, dr = model["nve_drift_meV_atom_ps"], reference["nve_drift_meV_atom_ps"]
    out["nve_abs_drift_meV_atom_ps"] = {"model": abs(dm) if dm is not None else None,
                                        "reference": abs(dr) if dr is not None else None}
    return out


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    state = {}

    def compute_side(side):
        if "cell" not in state:
            state["cell"], state["info"] = reference_md_cell(element, reference_calc, settings)
        save_to = Path(workdir) / "stability" / side if workdir is not None else None
        result = compute(element, state["cell"], calcs[side], settings, save_to)
        result["cell"] = state["info"]
        return result

    return run_observable(settings, compute_side, score)
