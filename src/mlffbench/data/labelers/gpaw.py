"""GPAW labeler: real DFT (plane waves, PBE, PAW) with TM23's electronic settings, offline from Debian packages.

GPAW 22.8 runs under Debian's /usr/bin/python3 (scripts/install_gpaw.sh), not in our venv, so every labelling is
a subprocess ``mpirun -np <mpi_ranks> /usr/bin/python3 gpaw_driver.py job.json``; frames go in as JSON and come
back one JSON file per frame. ``label(frames)`` sends all uncached frames of a batch to one driver process, in the
order given, so neighbouring MD frames reuse wavefunctions.

Settings (TM23 Methods IV.A / Table S1): plane-wave cutoff ``ecut`` (eV), k-points from a minimum spacing
``kspacing`` in 1/Å (VASP KSPACING rule; ``"tm23"`` = the per-element values of Table S1), Methfessel-Paxton
smearing ``smearing`` (eV, TM23 0.2), no spin polarisation, optional ``extra_electrons_per_atom`` (TM23 Fig 9d,
VASP NELECT: the cell gets a compensating background charge).

Labels: energy = the Methfessel-Paxton free energy (the variational energy whose derivatives the forces and stress
are), eV per cell; forces eV/Å; stress ASE Voigt eV/Å³ (tensile positive). ``info['energy_extrapolated']`` keeps
GPAW's sigma->0 extrapolated energy. A frame whose SCF does not converge comes back without labels and with
``info['label_failed']`` = the reason; the batch continues.

Cache: one JSON per frame under ``cache_dir`` keyed by a hash of numbers, positions, cell, pbc (rounded to 1e-6 Å,
so frames read back from extxyz hit), the settings and the GPAW/setup versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from mlffbench import frames as fr
from mlffbench.data.labelers.base import Labeler
from mlffbench.errors import ConfigError, MlffbenchError

DRIVER = Path(__file__).with_name("gpaw_driver.py")
SYSTEM_PYTHON = "/usr/bin/python3"
LABEL_FAILED = "label_failed"  # info key: why this frame has no labels

#: TM23 Table S1: minimum k-point density (1/Å) per element, used by ``kspacing: tm23``.
TM23_KSPACING = {
    "Ag": 0.15, "Au": 0.15, "Cd": 0.12, "Co": 0.28, "Cr": 0.18, "Cu": 0.19, "Fe": 0.25, "Hf": 0.22, "Hg": 0.20,
    "Ir": 0.18, "Mn": 0.25, "Mo": 0.17, "Nb": 0.16, "Ni": 0.30, "Os": 0.15, "Pd": 0.26, "Pt": 0.18, "Re": 0.15,
    "Rh": 0.18, "Ru": 0.19, "Ta": 0.16, "Tc": 0.15, "Ti": 0.25, "V": 0.23, "W": 0.16, "Zn": 0.10, "Zr": 0.20,
}  # fmt: skip


def default_cache_dir() -> Path:
    return Path(os.environ.get("MLFFBENCH_GPAW_CACHE", Path.home() / ".cache" / "mlffbench" / "gpaw"))


def gpaw_installed(python: str = SYSTEM_PYTHON) -> bool:
    return _info(python, ()) is not None


@lru_cache(maxsize=64)
def _info(python: str, symbols: tuple[str, ...]) -> dict | None:
    """GPAW/ASE versions and PAW setups from the driver (None when that python has no gpaw)."""
    try:
        out = subprocess.run([python, str(DRIVER), "--info", *symbols], capture_output=True, text=True,
                             timeout=120, env=_clean_env(1))
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def _clean_env(threads: int) -> dict:
    """The environment for the system python: nothing from our venv (its libmpi, site-packages) leaks in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "LD_PRELOAD")
           and not k.startswith(("OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PATH"] = ":".join(p for p in env.get("PATH", "/usr/bin:/bin").split(":") if sys.prefix not in p)
    return env


class GpawLabeler(Labeler):
    """Plane-wave PBE DFT with GPAW (see the module docstring for settings, units and failure handling)."""

    name = "gpaw"

    def __init__(
        self,
        ecut: float = 500.0,
        kspacing: float | str = "tm23",
        kpts: list[int] | None = None,
        smearing: float = 0.2,
        mp_order: int = 1,
        extra_electrons_per_atom: float = 0.0,
        mpi_ranks: int = 2,
        maxiter: int = 333,
        convergence: dict | None = None,
        nbands: int | str | None = None,
        mixer_beta: float | None = None,
        pdos: bool = False,
        cache_dir: str | None = None,
        python: str = SYSTEM_PYTHON,
        mpirun: str = "mpirun",
        timeout_s: float | None = None,
    ):
        if not ecut > 0:
            raise ConfigError(f"gpaw.ecut: must be > 0 eV, got {ecut}")
        if isinstance(kspacing, str):
            if kspacing != "tm23":
                raise ConfigError(f"gpaw.kspacing: a spacing in 1/Å or 'tm23' (Table S1), got '{kspacing}'")
        elif not kspacing > 0:
            raise ConfigError(f"gpaw.kspacing: must be > 0 1/Å, got {kspacing}")
        if kpts is not None and (len(kpts) != 3 or any(int(k) < 1 for k in kpts)):
            raise ConfigError(f"gpaw.kpts: three positive integers, got {kpts}")
        if not smearing > 0:
            raise ConfigError(f"gpaw.smearing: Methfessel-Paxton width must be > 0 eV, got {smearing}")
        if int(mpi_ranks) < 1 or int(maxiter) < 1:
            raise ConfigError(f"gpaw.mpi_ranks / gpaw.maxiter: must be >= 1, got {mpi_ranks} / {maxiter}")
        self.ecut = float(ecut)
        self.kspacing = kspacing if isinstance(kspacing, str) else float(kspacing)
        self.kpts = None if kpts is None else [int(k) for k in kpts]
        self.smearing = float(smearing)
        self.mp_order = int(mp_order)
        self.extra_electrons_per_atom = float(extra_electrons_per_atom)
        self.mpi_ranks = int(mpi_ranks)
        self.maxiter = int(maxiter)
        self.convergence = dict(convergence or {})
        # GPAW's default band count leaves too few empty bands for wide smearing: at 1-2 eV Methfessel-Paxton the
        # top bands hold occupation and the SCF crawls (Ti: 115-327 iterations instead of ~20, many frames at
        # maxiter). Twice the occupied bands ('200%') converges in ~20 iterations at every width.
        self.nbands = nbands if nbands is not None or self.smearing < 0.5 else "200%"
        self.mixer_beta = mixer_beta
        self.pdos = bool(pdos)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.python = python
        self.mpirun = mpirun
        self.timeout_s = timeout_s

    # ------------------------------------------------------------------------------------------- contract

    def spec(self) -> dict:
        out = {"name": self.name, **self._physics()}
        out.update(mpi_ranks=self.mpi_ranks, pdos=self.pdos, cache_dir=str(self.cache_dir))
        return out

    def supports(self, symbols: Sequence[str]) -> bool:
        """True when GPAW is installed and has a PBE PAW setup for every symbol (TM23 metals: all but Tc)."""
        info = _info(self.python, tuple(sorted(set(symbols))))
        if info is None:
            return False
        return all(info["setups"].get(s) for s in symbols) and (
            self.kspacing != "tm23" or self.kpts is not None or all(s in TM23_KSPACING for s in symbols))

    def calculator(self, symbols: Sequence[str]) -> Calculator:
        return GpawCalculator(self)

    def provenance(self, symbols: Sequence[str]) -> str:
        info = self._require_info(symbols)
        if self.kpts is not None:
            k = "kpts-" + "x".join(map(str, self.kpts))
        else:
            k = f"kspacing-{self._kspacing_for(symbols):g}A-1"
        text = (f"gpaw-{info['gpaw']}:PBE:paw-setups-{info['setups_version']}:pw-{self.ecut:g}eV:{k}:"
                f"mp{self.mp_order}-{self.smearing:g}eV:nospin")
        if self.extra_electrons_per_atom:
            text += f":extra-electrons-{self.extra_electrons_per_atom:+g}-per-atom"
        return text

    def label(self, frames: Sequence[Atoms]) -> list[Atoms]:
        """Static labels for every frame (one driver call for all uncached frames); failures are marked."""
        results = self.results(frames)
        out = []
        for frame, result in zip(frames, results):
            symbols = sorted(set(frame.get_chemical_symbols()))
            info = dict(frame.info)
            info[fr.LABELER] = self.provenance(symbols)
            info.pop(LABEL_FAILED, None)
            atoms = frame.copy()
            atoms.calc = None
            if result.get("failed"):
                info[LABEL_FAILED] = result["reason"]
                out.append(fr.labelled(atoms, None, None, None, **info))
                continue
            info.update(energy_extrapolated=result["energy_extrapolated"], fermi_level=result["fermi_level"],
                        dft_iterations=result["iterations"], dft_seconds=round(result["seconds"], 3))
            if "dos" in result:
                info["d_band_centre"] = result["dos"]["d_band_centre"]
            out.append(fr.labelled(atoms, result["free_energy"], np.array(result["forces"]),
                                   None if result["stress"] is None else np.array(result["stress"]), **info))
        return out

    # ------------------------------------------------------------------------------------------- batch + cache

    def results(self, frames: Sequence[Atoms]) -> list[dict]:
        """The driver's raw result dict for each frame (cached ones read from disk, the rest computed in one
        batch). Each has ``failed``; successful ones free_energy, energy_extrapolated, forces, stress,
        fermi_level, iterations, seconds, kpts (and ``dos`` with ``pdos``)."""
        keys = [self.key(frame) for frame in frames]
        results: list[dict | None] = [self._cached(k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            fresh = self._run_driver([frames[i] for i in todo], [keys[i] for i in todo])
            for i, result in zip(todo, fresh):
                results[i] = result
        return results  # type: ignore[return-value]

    def key(self, frame: Atoms) -> str:
        symbols = sorted(set(frame.get_chemical_symbols()))
        info = self._require_info(symbols)
        blob = {
            "numbers": frame.numbers.tolist(),
            "positions": np.round(frame.positions, 6).tolist(),
            "cell": np.round(np.array(frame.cell), 6).tolist(),
            "pbc": frame.pbc.tolist(),
            "settings": self._settings(symbols),
            "pdos": self.pdos,
            "gpaw": info["gpaw"],
            "setups": {s: info["setups"][s]["md5"] for s in symbols},
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cached(self, key: str) -> dict | None:
        path = self.cache_path(key)
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return result if result.get("key") == key else None

    def _run_driver(self, frames: Sequence[Atoms], keys: list[str]) -> list[dict]:
        """One mpirun of the driver for these frames; frames it did not finish are failures (not cached)."""
        self._require_info(sorted({s for f in frames for s in f.get_chemical_symbols()}))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="gpaw-job-", dir=self.cache_dir))
        try:
            job = {
                "settings": None,  # per frame below when kspacing depends on the element
                "txt": str(work / "gpaw.txt"),
                "frames": [],
            }
            outs = []
            for frame, key in zip(frames, keys):
                out = work / f"{key}.json"
                outs.append(out)
                job["frames"].append({"key": key, "out": str(out), "numbers": frame.numbers.tolist(),
                                      "positions": frame.positions.tolist(), "cell": np.array(frame.cell).tolist(),
                                      "pbc": frame.pbc.tolist()})
            groups = self._split_by_settings(frames, job["frames"])
            errors = []
            for settings, group in groups:
                job_path = work / "job.json"
                job_path.write_text(json.dumps({**job, "settings": settings, "frames": group}))
                rc, tail = self._mpirun(job_path, work, len(group))
                if rc != 0:
                    errors.append(f"GPAW driver exited with status {rc}: {tail}")
            results = []
            for out, key in zip(outs, keys):
                try:
                    result = json.loads(out.read_text())
                except (OSError, ValueError):
                    reason = errors[-1] if errors else "GPAW driver wrote no result"
                    results.append({"key": key, "failed": True, "reason": reason, "cache": False})
                    continue
                if result.get("cache"):
                    path = self.cache_path(key)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(out, path)
                results.append(result)
            return results
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _mpirun(self, job_path: Path, work: Path, n_frames: int) -> tuple[int, str]:
        cmd = [self.mpirun, "-np", str(self.mpi_ranks)]
        if os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        if self.mpi_ranks > (os.cpu_count() or 1):
            cmd.append("--oversubscribe")
        cmd += [self.python, str(DRIVER), str(job_path)]
        if self.mpi_ranks == 1:
            cmd = [self.python, str(DRIVER), str(job_path)]  # no MPI launcher needed for one rank
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=_clean_env(1),
                                  timeout=self.timeout_s * n_frames if self.timeout_s else None)
        except FileNotFoundError as exc:
            raise MlffbenchError(f"gpaw labeler: cannot start {exc.filename} (run scripts/install_gpaw.sh)") from None
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {self.timeout_s} s per frame"
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return proc.returncode, tail

    def _split_by_settings(self, frames, entries) -> list[tuple[dict, list]]:
        """Consecutive runs of frames with the same settings (kspacing 'tm23' differs per element)."""
        groups: list[tuple[dict, list]] = []
        for frame, entry in zip(frames, entries):
            settings = self._settings(sorted(set(frame.get_chemical_symbols())))
            if groups and groups[-1][0] == settings:
                groups[-1][1].append(entry)
            else:
                groups.append((settings, [entry]))
        return groups

    # ------------------------------------------------------------------------------------------- settings

    def _physics(self) -> dict:
        return {"ecut": self.ecut, "kspacing": self.kspacing, "kpts": self.kpts, "smearing": self.smearing,
                "mp_order": self.mp_order, "extra_electrons_per_atom": self.extra_electrons_per_atom,
                "maxiter": self.maxiter, "convergence": self.convergence, "nbands": self.nbands,
                "mixer_beta": self.mixer_beta}

    def _kspacing_for(self, symbols: Sequence[str]) -> float:
        if self.kspacing != "tm23":
            return float(self.kspacing)
        missing = [s for s in symbols if s not in TM23_KSPACING]
        if missing:
            raise MlffbenchError(f"gpaw.kspacing 'tm23': TM23 Table S1 has no k-point density for {missing}")
        return min(TM23_KSPACING[s] for s in symbols)  # the densest of the elements present

    def _settings(self, symbols: Sequence[str]) -> dict:
        settings = self._physics()
        settings["kspacing"] = None if self.kpts is not None else self._kspacing_for(symbols)
        settings["pdos"] = self.pdos
        return settings

    def _require_info(self, symbols: Sequence[str]) -> dict:
        info = _info(self.python, tuple(sorted(set(symbols))))
        if info is None:
            raise MlffbenchError(f"gpaw labeler: {self.python} cannot import gpaw (run scripts/install_gpaw.sh)")
        missing = [s for s in symbols if not info["setups"].get(s)]
        if missing:
            raise MlffbenchError(f"gpaw labeler: no PBE PAW setup for {', '.join(missing)} in gpaw-data")
        return info


class GpawCalculator(Calculator):
    """ASE calculator form of the labeler: one driver call per structure (for observables on small cells).

    A failed SCF raises ``MlffbenchError`` (an ASE calculator cannot return "no result")."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, labeler: GpawLabeler, **kwargs):
        super().__init__(**kwargs)
        self.labeler = labeler

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        started = time.perf_counter()
        (result,) = self.labeler.results([self.atoms])
        if result.get("failed"):
            raise MlffbenchError(f"gpaw: {result['reason']}")
        self.results = {
            "energy": result["free_energy"],
            "free_energy": result["free_energy"],
            "forces": np.array(result["forces"]),
        }
        if result["stress"] is not None:
            self.results["stress"] = np.array(result["stress"])
        self.wall_seconds = time.perf_counter() - started
