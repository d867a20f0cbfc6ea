"""MD inside LAMMPS for the built-in recipes: any protocol of fixes (NPT, a melt-quench ramp), snapshots of
positions and box every ``every`` steps, each snapshot then labelled statically by the same potential (energy,
forces, virial stress at exactly that geometry, whatever the barostat did to the cell)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.lammps.coordinatetransform import Prism
from ase.io.lammpsdata import write_lammps_data

from mlffbench import frames as fr
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.labelers.lammps import LammpsCalculator, new_lammps, setup_lines
from mlffbench.errors import MlffbenchError


def run_stages(atoms: Atoms, potential: pots.PotentialFile, stages: list[list[str]],
               every: list[int | None]) -> list[list[Atoms]]:
    """Run ``stages`` (lists of LAMMPS commands, each ending with its ``run``) one after another on the orthogonal
    cell ``atoms``; stage k dumps a snapshot every ``every[k]`` steps (None: no snapshots). One list of unlabelled
    snapshots per stage."""
    if np.count_nonzero(atoms.cell - np.diag(np.diag(atoms.cell))):
        raise MlffbenchError("recipe MD needs an orthogonal cell")
    species = sorted(set(atoms.get_chemical_symbols()))
    tmp = Path(tempfile.mkdtemp(prefix="mlffbench-recipe-"))
    cwd = os.getcwd()
    lmp = new_lammps()
    try:
        with open(tmp / "atoms.data", "w") as fd:
            write_lammps_data(fd, atoms, specorder=species, prismobj=Prism(np.array(atoms.cell), pbc=True))
        os.chdir(tmp)  # LAMMPS writes its dumps relative to the working directory
        lmp.commands_list(setup_lines(potential, species, "atoms.data"))
        out = []
        for k, (stage, interval) in enumerate(zip(stages, every)):
            if interval:
                lmp.commands_list([f"dump d{k} all custom {interval} stage{k}.dump id type x y z",
                                   f"dump_modify d{k} sort id format float %.12g first no"])
            lmp.commands_list(stage)
            if interval:
                lmp.command(f"undump d{k}")
            out.append(_read_dump(tmp / f"stage{k}.dump", species) if interval else [])
        return out
    finally:
        os.chdir(cwd)
        lmp.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _read_dump(path: Path, species: list[str]) -> list[Atoms]:
    """Snapshots of an orthogonal-box custom dump (id type x y z)."""
    lines = path.read_text().split("\n")
    out, i = [], 0
    while i < len(lines) and lines[i].startswith("ITEM: TIMESTEP"):
        n = int(lines[i + 3])
        bounds = np.array([[float(x) for x in lines[i + 5 + d].split()[:2]] for d in range(3)])
        table = np.loadtxt(lines[i + 9: i + 9 + n], ndmin=2)
        atoms = Atoms([species[int(t) - 1] for t in table[:, 1]], positions=table[:, 2:5] - bounds[:, 0],
                      cell=np.diag(bounds[:, 1] - bounds[:, 0]), pbc=True)
        atoms.wrap()
        out.append(atoms)
        i += 9 + n
    return out


def label(snapshots: list[Atoms], potential: pots.PotentialFile, **info) -> list[Atoms]:
    """Static energy, forces and stress of each snapshot with ``potential`` (one LAMMPS instance), with ``info``
    and the frame index on every frame."""
    calc = LammpsCalculator(potential)
    out = []
    for k, atoms in enumerate(snapshots):
        atoms.calc = calc
        frame = fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                            **info, **{fr.FRAME_INDEX: k, fr.LABELER: potential.provenance()})
        atoms.calc = None
        out.append(frame)
    return out
