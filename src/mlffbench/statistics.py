"""Confidence intervals: the bootstrap over test structures.

A test set's errors are kept per frame as sufficient statistics of each quantity: the sum of absolute errors over
the frame's compared components (``err``), their number (``n``) and the sum of absolute reference values (``ref``).
Any MAE (sum err / sum n) or percent error (TM23 Eq. 2, 100 sum err / sum ref) of any subset of frames follows, and
so does its bootstrap: draw the frames with replacement (seeded, ``N_RESAMPLES`` times) and take the 2.5 and 97.5
percentiles of the statistic (percentile interval, 95 %). Frames, not atoms or components, are the resampled unit
because the errors within a frame are correlated. Differences of two models on the same test frames are paired
(both resampled with the same draws); on different frames (cold->warm vs cold->melt) they are drawn independently.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from ase import Atoms

from mlffbench.frames import stack_labels

N_RESAMPLES = 1000
LEVEL = 0.95
QUANTITIES = ("energy_per_atom", "forces", "stress")
STATS = ("mae", "percent")


# ------------------------------------------------------------------------------------------- per-frame errors
def _sums(pred: np.ndarray, ref: np.ndarray, owner: np.ndarray, n_frames: int) -> dict[str, list]:
    """Per-frame err/n/ref sums of rows (components) owned by frame ``owner``; NaN pairs are skipped."""
    pred, ref = pred.reshape(len(owner), -1), ref.reshape(len(owner), -1)
    keep = ~(np.isnan(pred) | np.isnan(ref))
    err = np.where(keep, np.abs(pred - ref), 0.0).sum(axis=1)
    absref = np.where(keep, np.abs(ref), 0.0).sum(axis=1)
    return {"err": np.bincount(owner, err, n_frames).tolist(), "n": np.bincount(owner, keep.sum(axis=1),
                                                                                n_frames).astype(int).tolist(),
            "ref": np.bincount(owner, absref, n_frames).tolist()}


def frame_errors(pred_frames: Sequence[Atoms], ref_frames: Sequence[Atoms], groups: Sequence = ()) -> dict:
    """JSON-able per-frame sufficient statistics of a test set: energy per atom, forces (components), stress
    (Voigt components), forces per element (``forces:<El>``: that element's atoms of each frame), and the frames'
    groups. Units are the internal ones (eV/atom, eV/Å, eV/Å³)."""
    p, r = stack_labels(pred_frames), stack_labels(ref_frames)
    n = len(r.natoms)
    frames, owner = np.arange(n), r.frame_of_atom
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"energy_per_atom": _sums(p.energies / p.natoms, r.energies / r.natoms, frames, n),
               "forces": _sums(p.forces, r.forces, owner, n), "stress": _sums(p.stresses, r.stresses, frames, n)}
    elements = sorted(set(r.symbols.tolist()))
    if len(elements) > 1:
        for el in elements:
            rows = r.symbols == el
            out[f"forces:{el}"] = _sums(p.forces[rows], r.forces[rows], owner[rows], n)
    out["group"] = [str(g) for g in groups] if len(groups) == n else [""] * n
    return out


# ------------------------------------------------------------------------------------------------- bootstrap
def draws(n_frames: int, seed: int, n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """(n_resamples, n_frames) frame indices drawn with replacement, from ``seed`` alone."""
    return np.random.default_rng([seed, n_frames]).integers(0, n_frames, size=(n_resamples, n_frames))


def statistic(sums: Mapping[str, list], stat: str, idx: np.ndarray | None = None) -> np.ndarray | float:
    """MAE or percent error of the frames ``idx`` ((B, k) draws -> B values; None -> all frames, a float);
    NaN where nothing was compared (or MAV is zero)."""
    arrays = {k: np.asarray(sums[k], dtype=float) for k in ("err", "n", "ref")}
    if idx is None:
        picked = {k: a.sum() for k, a in arrays.items()}
    else:
        picked = {k: a[idx].sum(axis=-1) for k, a in arrays.items()}
    den = picked["n"] if stat == "mae" else picked["ref"] / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, picked["err"] / np.where(den > 0, den, 1.0), np.nan)


def interval(samples: np.ndarray) -> tuple[float, float]:
    """The percentile interval (``LEVEL``) of bootstrap samples; NaN where fewer than 2 % of them are finite
    (nothing to compare) or the test set has a single frame."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size < max(2, 0.98 * np.size(samples)):
        return (np.nan, np.nan)
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.percentile(s, [tail, 100 - tail])
    return (float(lo), float(hi))


def subset(sums: Mapping[str, list], frames: np.ndarray) -> dict:
    return {k: np.asarray(sums[k])[frames] for k in ("err", "n", "ref")}


def intervals(record: Mapping, seed: int, frames: np.ndarray | None = None, quantities=QUANTITIES) -> dict:
    """Flat ``{"forces.mae_lo": ., "forces.mae_hi": ., "forces.percent_lo": ., ...}`` of a test set (or of the
    frames at ``frames``), internal units. ``quantities``: record keys, or {name in the output: record key}
    (e.g. {"forces": "forces:Cu"})."""
    n_all = len(record["group"])
    frames = np.arange(n_all) if frames is None else np.asarray(frames, dtype=int)
    out = {}
    if frames.size < 2:
        return out
    idx = draws(frames.size, seed)  # one set of draws for every quantity and statistic
    names = quantities if isinstance(quantities, Mapping) else {q: q for q in quantities}
    for name, key in names.items():
        if key not in record:
            continue
        for stat in STATS:
            out[f"{name}.{stat}_lo"], out[f"{name}.{stat}_hi"] = interval(
                samples(record, key, stat, seed, frames, idx))
    return out


def samples(record: Mapping, quantity: str, stat: str, seed: int, frames: np.ndarray | None = None,
            idx: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap samples (``N_RESAMPLES``) of one statistic of a stored test set (or of its frames ``frames``).
    The draws depend only on ``seed`` and the frame count, so two models scored on the same frames are resampled
    in pairs; ``idx`` passes draws already made (:func:`draws`) to reuse them."""
    frames = np.arange(len(record["group"])) if frames is None else np.asarray(frames, dtype=int)
    sums = subset(record[quantity], frames)
    return statistic(sums, stat, draws(frames.size, seed) if idx is None else idx)


def group_frames(record: Mapping, group: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(record["group"]) == group)


def difference(a: np.ndarray, b: np.ndarray) -> dict:
    """The interval of the effect a - b from two sets of bootstrap samples of equal length (paired or
    independent draws), and whether it excludes zero."""
    d = np.asarray(a) - np.asarray(b)
    lo, hi = interval(d)
    return {"lo": lo, "hi": hi, "excludes_zero": bool(np.isfinite(lo) and (lo > 0 or hi < 0))}


def overlapping(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals overlap (a tie in a ranking); an unknown interval ties with everything."""
    if not all(np.isfinite(v) for v in (*a, *b)):
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def tie_ranks(values: Sequence[float], cis: Sequence[tuple[float, float]]) -> list[str]:
    """Rank labels of values sorted ascending: "1", "2", or "2=" when a value's interval overlaps the one ranked
    before it (the order between them is not resolved by the data)."""
    order = np.argsort(np.asarray(values, dtype=float), kind="stable")
    labels = [""] * len(values)
    rank, prev = 0, None
    for pos, i in enumerate(order, 1):
        tied = prev is not None and overlapping(cis[i], cis[prev])
        rank = rank if tied else pos
        labels[i] = f"{rank}=" if tied else str(rank)
        if tied and prev is not None and not labels[prev].endswith("="):
            labels[prev] += "="
        prev = i
    return labels
