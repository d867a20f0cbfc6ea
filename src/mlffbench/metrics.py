"""Error metrics: pure functions on arrays and frames, no I/O.

Internal units are ASE's: energies eV (per cell) or eV/atom, forces eV/Å (component-wise, every atom x 3),
stress eV/Å³ (6 Voigt components). :func:`to_table` converts to report units (meV/atom, meV, meV/Å, GPa).

NaN handling is the same everywhere: a pair (pred, ref) is used only when both are not NaN; an empty selection
gives NaN, never an exception. Percent error is TM23 Eq. 2, ``100 * MAE / MAV`` with MAV the mean absolute value
of the reference labels in the same selection. ``*_over_std`` are the TEA-2023 (Table SI8) errors normalised by
the population standard deviation (ddof=0) of the reference labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np
from ase import Atoms

from .frames import LabelArrays, stack_labels
from .units import GPA

QUANTITIES = ("energy_per_atom", "energy_per_cell", "forces", "stress")

#: quantity -> (factor from internal units, unit suffix) used by :func:`to_table`.
REPORT_UNITS: dict[str, tuple[float, str]] = {
    "energy_per_atom": (1e3, "meV_atom"),
    "energy_per_atom_shifted": (1e3, "meV_atom"),
    "energy_per_cell": (1e3, "meV"),
    "energy_per_cell_shifted": (1e3, "meV"),
    "forces": (1e3, "meV_A"),
    "stress": (1.0 / GPA, "GPa"),
}
_DIMENSIONED = ("mae", "rmse", "max", "mav")


# ---------------------------------------------------------------------------------------------- array metrics


def _pairs(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float copies of ``pred`` and ``ref`` with every pair containing a NaN removed."""
    p = np.asarray(pred, dtype=float)
    r = np.asarray(ref, dtype=float)
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} does not match reference shape {r.shape}")
    p, r = p.ravel(), r.ravel()
    keep = ~(np.isnan(p) | np.isnan(r))
    return p[keep], r[keep]


def _finite(labels) -> np.ndarray:
    x = np.asarray(labels, dtype=float).ravel()
    return x[~np.isnan(x)]


def _ratio(num: float, den: float) -> float:
    """num/den; NaN (undefined, printed '-') when den is 0, e.g. the percent error of forces on strained perfect
    crystals, whose force labels are all zero."""
    if den == 0:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


def mae(pred, ref) -> float:
    """Mean absolute error, in the units of the inputs (NaN if nothing to compare)."""
    p, r = _pairs(pred, ref)
    return float(np.mean(np.abs(p - r))) if p.size else np.nan


def rmse(pred, ref) -> float:
    """Root-mean-square error, in the units of the inputs."""
    p, r = _pairs(pred, ref)
    return float(np.sqrt(np.mean((p - r) ** 2))) if p.size else np.nan


def maxae(pred, ref) -> float:
    """Largest absolute error, in the units of the inputs."""
    p, r = _pairs(pred, ref)
    return float(np.max(np.abs(p - r))) if p.size else np.nan


def mav(labels) -> float:
    """Mean absolute value of the (non-NaN) labels, in their units."""
    x = _finite(labels)
    return float(np.mean(np.abs(x))) if x.size else np.nan


def percent_error(pred, ref) -> float:
    """TM23 Eq. 2: ``100 * MAE / MAV(ref)`` over the pairs without NaN (dimensionless, %)."""
    p, r = _pairs(pred, ref)
    return _ratio(100.0 * mae(p, r), mav(r))


def std_normalised(pred, ref, kind: str = "mae") -> float:
    """``MAE / std(ref)`` (``kind="rmse"``: RMSE / std, ``"max"``: MAX / std); std with ddof=0, dimensionless."""
    funcs = {"mae": mae, "rmse": rmse, "max": maxae}
    if kind not in funcs:
        raise ValueError(f"kind must be one of {sorted(funcs)}, got {kind!r}")
    p, r = _pairs(pred, ref)
    return _ratio(funcs[kind](p, r), np.std(r) if r.size else np.nan)


@dataclass
class ErrorStats:
    """Errors of one quantity. mae/rmse/max/mav in the quantity's units; percent in %; *_over_std dimensionless."""

    n: int
    mae: float
    rmse: float
    max: float
    mav: float
    percent: float
    mae_over_std: float
    rmse_over_std: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def error_stats(pred, ref) -> ErrorStats:
    """All statistics of ``pred`` against ``ref`` (NaN pairs skipped)."""
    p, r = _pairs(pred, ref)
    return ErrorStats(
        n=int(p.size),
        mae=mae(p, r),
        rmse=rmse(p, r),
        max=maxae(p, r),
        mav=mav(r),
        percent=percent_error(p, r),
        mae_over_std=std_normalised(p, r, "mae"),
        rmse_over_std=std_normalised(p, r, "rmse"),
    )


# ---------------------------------------------------------------------------------------------- frame scores


def _stack_pair(pred_frames: Sequence[Atoms], ref_frames: Sequence[Atoms]) -> tuple[LabelArrays, LabelArrays]:
    if len(pred_frames) != len(ref_frames):
        raise ValueError(f"{len(pred_frames)} predicted frames but {len(ref_frames)} reference frames")
    p, r = stack_labels(pred_frames), stack_labels(ref_frames)
    bad = np.flatnonzero(p.natoms != r.natoms)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"frame {i}: {p.natoms[i]} predicted atoms but {r.natoms[i]} reference atoms")
    if not np.array_equal(p.symbols, r.symbols):
        i = int(p.frame_of_atom[np.flatnonzero(p.symbols != r.symbols)[0]])
        raise ValueError(f"frame {i}: chemical symbols of prediction and reference differ")
    return p, r


def _subset(la: LabelArrays, frames: np.ndarray) -> LabelArrays:
    """Labels of the frames at indices ``frames`` (sorted, unique)."""
    atoms = np.isin(la.frame_of_atom, frames)
    return LabelArrays(
        energies=la.energies[frames],
        natoms=la.natoms[frames],
        forces=la.forces[atoms],
        stresses=la.stresses[frames],
        symbols=la.symbols[atoms],
    )


def _counts(la: LabelArrays, elements: Sequence[str]) -> np.ndarray:
    """(n_frames, n_elements) number of atoms of each element in each frame."""
    owner, n = la.frame_of_atom, len(la.natoms)
    counts = np.zeros((n, len(elements)))
    for j, el in enumerate(elements):
        counts[:, j] = np.bincount(owner[la.symbols == el], minlength=n)
    return counts


def _shift_energies(la: LabelArrays, shift: Mapping[str, float]) -> np.ndarray:
    """Per-cell energies minus the per-element shift times the composition, eV."""
    elements = sorted(set(la.symbols.tolist()))
    missing = [el for el in elements if el not in shift]
    if missing:
        raise ValueError(f"energy_shift has no value for element(s) {', '.join(missing)}")
    values = np.array([float(shift[el]) for el in elements])
    return la.energies - _counts(la, elements) @ values


def _score_arrays(p: LabelArrays, r: LabelArrays, shift: Mapping[str, float] | None) -> dict[str, ErrorStats]:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "energy_per_atom": error_stats(p.energies / p.natoms, r.energies / r.natoms),
            "energy_per_cell": error_stats(p.energies, r.energies),
            "forces": error_stats(p.forces, r.forces),
        }
        # component-wise NaN masking: a frame with untrusted shear labels (mlearn Li) keeps its normal components
        out["stress"] = error_stats(p.stresses, r.stresses)
        if shift is not None:
            shifted = _shift_energies(p, shift)
            out["energy_per_atom_shifted"] = error_stats(shifted / p.natoms, r.energies / r.natoms)
            out["energy_per_cell_shifted"] = error_stats(shifted, r.energies)
    return out


def score(
    pred_frames: Sequence[Atoms],
    ref_frames: Sequence[Atoms],
    *,
    energy_shift: Mapping[str, float] | None = None,
) -> dict[str, ErrorStats]:
    """Errors of predicted against reference frames (same order, same atoms).

    Keys: "energy_per_atom" (eV/atom), "energy_per_cell" (eV), "forces" (eV/Å, every component of every atom),
    "stress" (eV/Å³, 6 Voigt components; frames without stress in either set are skipped). With ``energy_shift``
    ({symbol: eV/atom}, e.g. from :func:`fit_energy_shift`) the predicted energies minus ``sum_el n_el * shift_el``
    are also scored as "energy_per_atom_shifted" and "energy_per_cell_shifted"; the unshifted keys are kept.
    Raises ValueError when frame counts, atom counts or chemical symbols differ.
    """
    p, r = _stack_pair(pred_frames, ref_frames)
    return _score_arrays(p, r, energy_shift)


def score_by(
    pred_frames: Sequence[Atoms],
    ref_frames: Sequence[Atoms],
    key: str,
    *,
    energy_shift: Mapping[str, float] | None = None,
) -> dict[Hashable, dict[str, ErrorStats]]:
    """:func:`score` per value of the reference frames' ``info[key]`` (e.g. temperature_label, group).

    Groups are in order of first appearance; frames without the key are grouped under None.
    """
    p, r = _stack_pair(pred_frames, ref_frames)
    values = [frame.info.get(key) for frame in ref_frames]
    out: dict[Hashable, dict[str, ErrorStats]] = {}
    for value in dict.fromkeys(values):
        idx = np.array([i for i, v in enumerate(values) if v == value], dtype=int)
        out[value] = _score_arrays(_subset(p, idx), _subset(r, idx), energy_shift)
    return out


def score_by_element(
    pred_frames: Sequence[Atoms],
    ref_frames: Sequence[Atoms],
    *,
    energy_shift: Mapping[str, float] | None = None,
) -> dict[str, dict[str, ErrorStats]]:
    """Per chemical element (sorted): "forces" over the rows of atoms of that element (eV/Å); energies and stress
    over the frames that contain the element (same keys and units as :func:`score`)."""
    p, r = _stack_pair(pred_frames, ref_frames)
    out = {}
    for el in sorted(set(r.symbols.tolist())):
        frames = np.unique(r.frame_of_atom[r.symbols == el])
        stats = _score_arrays(_subset(p, frames), _subset(r, frames), energy_shift)
        rows = r.symbols == el
        stats["forces"] = error_stats(p.forces[rows], r.forces[rows])
        out[el] = stats
    return out


def fit_energy_shift(pred_frames: Sequence[Atoms], ref_frames: Sequence[Atoms]) -> dict[str, float]:
    """Per-element constant energy shift (eV/atom) of a zero-shot model, as in Metal-43 (SI).

    Least squares of the per-atom energy difference ``(E_pred - E_ref) / N`` on the composition fractions
    ``n_el / N``: for a single element this is the mean per-atom difference; for several elements it is
    ``lstsq`` on the composition (minimum-norm when compositions do not vary enough to separate the elements).
    Frames without an energy in either set are skipped. Subtract via ``score(..., energy_shift=shift)``.
    Which frames the shift is fitted on (all test frames, the training frames, ...) is the caller's choice and
    must be recorded with the result, since fitting on the test frames themselves flatters the shifted error.
    """
    p, r = _stack_pair(pred_frames, ref_frames)
    elements = sorted(set(r.symbols.tolist()))
    keep = ~(np.isnan(p.energies) | np.isnan(r.energies)) & (r.natoms > 0)
    if not keep.any():
        return {el: np.nan for el in elements}
    natoms = r.natoms[keep].astype(float)
    fractions = _counts(r, elements)[keep] / natoms[:, None]
    diff = (p.energies[keep] - r.energies[keep]) / natoms
    values = np.linalg.lstsq(fractions, diff, rcond=None)[0]
    return {el: float(v) for el, v in zip(elements, values)}


# ---------------------------------------------------------------------------------------------- tables


def flatten(score_dict: Mapping, prefix: str = "") -> dict[str, float]:
    """Flat dict in internal units, e.g. {"forces.mae": ..., "energy_per_atom.percent": ...}.

    Nested results (from :func:`score_by` / :func:`score_by_element`) become "cold.forces.mae" etc.
    """
    out: dict[str, float] = {}
    for name, value in score_dict.items():
        key = f"{prefix}{name}"
        if isinstance(value, ErrorStats):
            value = value.to_dict()
            out.update({f"{key}.{stat}": v for stat, v in value.items()})
        elif isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{key}."))
        else:
            out[key] = value
    return out


def to_table(score_dict: Mapping[str, ErrorStats]) -> dict[str, float]:
    """Flat dict of a :func:`score` result in report units (:data:`REPORT_UNITS`).

    Dimensioned stats carry their unit in the name, e.g. "energy_per_atom_mae_meV_atom", "forces_rmse_meV_A",
    "stress_mae_GPa"; dimensionless ones do not: "forces_percent", "forces_mae_over_std", "forces_n".
    """
    out: dict[str, float] = {}
    for name, stats in score_dict.items():
        factor, unit = REPORT_UNITS.get(name, (1.0, ""))
        for stat, v in stats.to_dict().items():
            if stat in _DIMENSIONED:
                out[f"{name}_{stat}_{unit}".rstrip("_")] = v * factor
            else:
                out[f"{name}_{stat}"] = v
    return out
