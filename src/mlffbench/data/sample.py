"""The TM23 data protocol (Methods IV.A) for any labeler.

ground-state cell relaxed with the labeler -> smallest supercell with every lattice vector >= 7 Å -> one atom
removed at random (seeded) -> NVT at fractions of the experimental T_melt -> equilibration discarded ->
a frame every 50 fs -> N frames per temperature -> optional relabel with a second labeler -> extxyz.

Each trajectory is one unit of work written atomically to ``<out>/<El>/<El>_<label>.extxyz``; an existing
file is reused, so an interrupted generation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from mlffbench import elements as elements_db
from mlffbench import frames as fr
from mlffbench.config import DataConfig
from mlffbench.data import build, temperatures
from mlffbench.data.io import read_frames, write_frames
from mlffbench.data.labelers import Labeler, NVTSpec, make_labeler


def covered_elements(labeler: Labeler) -> list[str]:
    """TM23 metals this labeler can label and whose ground-state prototype we can build."""
    return [el for el in elements_db.TM23
            if labeler.supports([el]) and elements_db.get(el).lattice in build.BUILDABLE]


def resolve_elements(cfg: DataConfig) -> list[str]:
    """The entry's elements (named sets resolved against its labelers); a listed element no labeler covers is a
    ConfigError."""
    if isinstance(cfg.elements, list):
        cfg.check_labelers("data")  # the config's own check: known symbols, labelers that can label them
    return cfg.element_list()


def element_seed(seed: int, *parts: str) -> int:
    """A stable per-task seed derived from the config seed (independent of task order)."""
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class CellInfo:
    element: str
    lattice: str
    a: float
    c: float | None
    energy_per_atom: float
    residual_stress: float
    repeats: tuple
    natoms: int
    removed_atom: int
    labeler: str


def prepare_cell(element: str, cfg: DataConfig, labeler: Labeler, seed: int) -> tuple[Atoms, CellInfo]:
    """Relaxed ground state -> TM23 supercell with one vacancy (seeded)."""
    ground = build.relax_ground_state(element, labeler.calculator([element]))
    rng = np.random.default_rng(element_seed(seed, element, "vacancy"))
    cell, removed, repeats = build.tm23_cell(ground.atoms, cfg.min_length, rng)
    info = CellInfo(element, ground.lattice, ground.a, ground.c, ground.energy_per_atom, ground.residual_stress,
                    tuple(repeats), len(cell), removed, labeler.provenance([element]))
    return cell, info


def trajectory_path(out: Path, element: str, label: str) -> Path:
    return Path(out) / element / f"{element}_{label}.extxyz"


def start_trajectory(
    element: str, label: str, cell: Atoms, cfg: DataConfig, labeler: Labeler,
    relabeler: Labeler | None, seed: int,
) -> Callable[[], list[Atoms]]:
    """Run one NVT trajectory at ``cfg.temperatures[label]`` x T_melt now; the returned function gives its
    frames (relabelled if asked) with the TM23 metadata on every frame."""
    t_melt = elements_db.get(element).t_melt
    target = temperatures.kelvin(cfg.temperatures[label], element)
    kind, number = temperatures.parse(cfg.temperatures[label])
    spec = NVTSpec(
        temperature=target, n_frames=cfg.frames_per_temperature, timestep_fs=cfg.timestep_fs,
        interval_fs=cfg.interval_fs, equilibration_fs=cfg.equilibration_fs,
        thermostat_steps=cfg.thermostat_steps, seed=element_seed(seed, element, label, "md"),
    )
    md_frames = labeler.start_nvt(cell, spec)

    def finish() -> list[Atoms]:
        frames = md_frames()
        if relabeler is not None:
            md_provenance = frames[0].info[fr.LABELER]
            # A frame the relabeler could not label (e.g. DFT SCF not converged) is left out of the data set;
            # the labeler caches it as failed, so a resumed run does not pay for it again.
            frames = [f for f in relabeler.label(frames) if "label_failed" not in f.info]
            for frame in frames:
                frame.info["md_labeler"] = md_provenance
        for frame in frames:
            frame.info.update({
                fr.ELEMENTS: element,
                fr.TEMPERATURE_LABEL: label,
                fr.TARGET_TEMPERATURE: float(target),
                fr.TRAJECTORY: f"{element}_{label}",
                "t_melt": float(t_melt),
                # TM23 fractions keep the key they always had; other forms state their rule
                **({"temperature_fraction": float(number)} if kind == "t_melt"
                   else {"temperature_spec": temperatures.describe(cfg.temperatures[label])}),
            })
        return frames

    return finish


def sample_trajectory(element, label, cell, cfg, labeler, relabeler, seed) -> list[Atoms]:
    """One labelled NVT trajectory (``start_trajectory`` run to the end)."""
    return start_trajectory(element, label, cell, cfg, labeler, relabeler, seed)()


def generate(cfg: DataConfig, out: str | Path, seed: int = 0, progress=None) -> dict:
    """Run the protocol for every element; returns a summary {element: {...}} also written to summary.json.

    ``progress(element, label, seconds)`` is called after each trajectory (for progress bars).
    """
    out = Path(out)
    relabeler = make_labeler(cfg.relabel) if cfg.relabel else None
    summary = {}
    for element in resolve_elements(cfg):
        labeler = make_labeler(cfg.labeler_for(element))
        summary[element] = generate_element(element, cfg, out, labeler, relabeler, seed, progress)
    _write_json(out / "summary.json", summary)
    return summary


def generate_element(element, cfg, out, labeler, relabeler, seed, progress=None) -> dict:
    """All trajectories of one element (resuming finished ones); returns its summary.

    Finished trajectory files are reused only when ``cell.json`` carries the fingerprint of the same data
    config, seed and element and the file holds the configured number of frames; otherwise they are redone.
    """
    out = Path(out).resolve()  # the MD chdirs while the writer thread runs: no relative paths
    meta_path = out / element / "cell.json"
    fingerprint = _fingerprint(element, cfg, seed, lammps_potentials(element, cfg))
    if _stored_fingerprint(meta_path) != fingerprint:  # other settings made these files: never mix them
        for label_path in (out / element).glob(f"{element}_*.extxyz"):
            label_path.unlink()
    cell, info = prepare_cell(element, cfg, labeler, seed)
    _write_json(meta_path, {**asdict(info), "fingerprint": fingerprint})
    # MD runs here, one trajectory at a time; parsing and writing the previous one overlaps it in a thread
    # (LAMMPS releases the GIL). A relabeler may be another LAMMPS instance: then nothing runs concurrently.
    started = {}
    with ThreadPoolExecutor(max_workers=1) as post:
        pending = {}
        for label in temperatures.for_element(cfg.temperatures, element):
            path = trajectory_path(out, element, label)
            started[label] = time.perf_counter()
            frames = read_frames(path) if path.exists() else []
            if len(frames) == cfg.frames_per_temperature:
                pending[label] = _done(frames)
                continue
            finish = start_trajectory(element, label, cell, cfg, labeler, relabeler, seed)
            job = post.submit(_finish_and_write, finish, path)
            if relabeler is not None:
                job.result()
            pending[label] = job
        trajectories = {}
        for label, job in pending.items():
            frames = job.result()
            kinetic = np.array([f.info[fr.KINETIC_TEMPERATURE] for f in frames])
            trajectories[label] = {
                "file": str(trajectory_path(out, element, label)), "frames": len(frames),
                "target_temperature": frames[0].info[fr.TARGET_TEMPERATURE],
                "kinetic_temperature_mean": float(kinetic.mean()),
                "kinetic_temperature_std": float(kinetic.std()),
            }
            if progress:
                progress(element, label, time.perf_counter() - started[label])
    return {"cell": asdict(info), "trajectories": trajectories}


def _finish_and_write(finish: Callable[[], list[Atoms]], path: Path) -> list[Atoms]:
    frames = finish()
    write_frames(path, frames)
    return frames


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def lammps_potentials(element: str, cfg: DataConfig) -> dict[str, str]:
    """The LAMMPS potential files that make ``element``'s frames ({"labeler"/"relabel": provenance}): a spec
    naming only "lammps" resolves through ``potentials.DEFAULT_POTENTIAL``, so a changed default (Mo: Baskes MEAM ->
    SNAP) must change the data job's key and this fingerprint, or frames of the old potential would be reused."""
    from mlffbench.data.labelers import labeler_spec

    out = {}
    for key, spec in (("labeler", cfg.labeler_for(element)), ("relabel", cfg.relabel)):
        if spec is not None and labeler_spec(spec).get("name") == "lammps":
            out[key] = make_labeler(spec).provenance([element])
    return out


def _fingerprint(element: str, cfg: DataConfig, seed: int, potentials: dict | None = None) -> str:
    data = asdict(cfg)
    data.pop("accept_failed_checks", None)  # which label checks may fail does not change the frames
    if not data["element_labelers"]:
        del data["element_labelers"]  # the fingerprints of configs from before the field stay valid
    record = {"element": element, "data": data, "seed": seed}
    if potentials:
        record["lammps_potentials"] = potentials
    blob = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _stored_fingerprint(meta_path: Path) -> str | None:
    try:
        return json.loads(meta_path.read_text()).get("fingerprint")
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
