"""Radial distribution function from NVT MD at each TM23 temperature (fractions of T_melt), model vs reference.

Both sides run the same protocol in the same cell (the TM23 cell on the reference's relaxed lattice, one
vacancy; same seeds): Langevin NVT (ASE), ``rdf_equilibration_steps`` discarded, then a frame every
``rdf_interval`` steps. g(r) from ASE's periodic neighbour list. Distance: Wasserstein-1 between g(r) read as
a distribution over r, i.e. ``scipy.stats.wasserstein_distance(r, r, u_weights=g_model, v_weights=g_ref)``
(= the integral of |CDF_model - CDF_ref| dr with CDF the running integral of the normalised g(r)), in Å.
The runs are short (defaults: 2 ps) compared with TM23's 5 ps equilibration + 50 ps sampling.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from mlffbench import elements as elements_db
from mlffbench.data.labelers.base import kinetic_temperature
from mlffbench.data.sample import element_seed
from mlffbench.observables import md
from mlffbench.observables.common import ObservableFailure, reference_md_cell, run_observable
from mlffbench.observables.settings import Settings

NAME = "rdf"


def compute(element: str, cell, calc, settings: Settings) -> dict:
    t_melt = elements_db.get(element).t_melt
    out = {}
    for label, fraction in settings.rdf_temperatures.items():
        temperature = fraction * t_melt
        seed = element_seed(settings.seed, element, label, "rdf")
        system = md.start(cell, calc, temperature, seed)
        dyn = md.langevin(system, temperature, settings, seed)
        dyn.run(settings.rdf_equilibration_steps)
        frames, kinetic = [], []
        for _ in range(max(1, settings.rdf_steps // settings.rdf_interval)):
            dyn.run(settings.rdf_interval)
            if not np.isfinite(system.get_potential_energy()) or not np.isfinite(system.positions).all():
                raise ObservableFailure(f"non-finite energy/positions in the {label} MD ({temperature:.0f} K)")
            frames.append(system.copy())
            kinetic.append(kinetic_temperature(system))
        r, g = md.pair_distribution(frames, settings.rdf_rmax, settings.rdf_bins)
        out[label] = {"temperature_K": temperature, "r": r, "g": g, "frames": len(frames),
                      "mean_kinetic_temperature_K": float(np.mean(kinetic))}
    return {"temperatures": out}


def w1(r, g_a, g_b) -> float:
    return float(wasserstein_distance(r, r, u_weights=g_a, v_weights=g_b))


def score(model: dict, reference: dict) -> dict:
    temps = {}
    for label, ref in reference["temperatures"].items():
        mod = model["temperatures"][label]
        temps[label] = {"temperature_K": ref["temperature_K"], "r": ref["r"], "g_model": mod["g"],
                        "g_reference": ref["g"], "w1": w1(ref["r"], mod["g"], ref["g"]),
                        "g_mae": float(np.mean(np.abs(np.asarray(mod["g"]) - np.asarray(ref["g"]))))}
    return {"temperatures": temps, "w1_mean": float(np.mean([t["w1"] for t in temps.values()])),
            "w1_definition": "scipy.stats.wasserstein_distance over r with g(r) as weights, Å"}


def run(element: str, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    calcs = {"model": model_calc, "reference": reference_calc}
    state = {}

    def compute_side(side):
        if "cell" not in state:  # built from the reference calculator once, used by both sides
            state["cell"], state["info"] = reference_md_cell(element, reference_calc, settings)
        result = compute(element, state["cell"], calcs[side], settings)
        result["cell"] = state["info"]
        return result

    return run_observable(settings, compute_side, score)
