"""Train/validation/test splits as index arrays into a list of frames (cheap to store, easy to compare).

Every function is deterministic: the same frames (same order, same info) and the same seed give identical
indices. Protocols: TM23 full split (per trajectory the last frames are test), TM23 transferability (train on
one temperature label, test on another), MS25 learning curves (nested random subsets, several sets) and plain
random splits with an optional validation subset carved out of train (NequIP in TM23 used 10 %).
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from ase import Atoms

from ..frames import ELEMENTS, FRAME_INDEX, GROUP, TEMPERATURE_LABEL, TRAJECTORY, element_key

LEARNING_CURVE_SIZES = (50, 100, 200, 400, 600, 800, 1000)


def _idx(values) -> np.ndarray:
    return np.asarray(values, dtype=int).reshape(-1)


@dataclass
class Split:
    """Indices (into the frame list the split was made from) of the train, test and optional validation sets."""

    train: np.ndarray
    test: np.ndarray
    valid: np.ndarray | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.train, self.test = _idx(self.train), _idx(self.test)
        self.valid = None if self.valid is None else _idx(self.valid)

    def to_dict(self) -> dict:
        """JSON-ready form (lists of ints)."""
        return {
            "name": self.name,
            "train": self.train.tolist(),
            "test": self.test.tolist(),
            "valid": None if self.valid is None else self.valid.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Split":
        return cls(d["train"], d["test"], d.get("valid"), d.get("name", ""), dict(d.get("meta") or {}))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


def _info(frame) -> Mapping:
    """A frame's metadata: ``Atoms.info``, or the mapping itself (planning works on metadata before frames exist)."""
    return frame.info if isinstance(frame, Atoms) else frame


def _trajectory_key(frame) -> str:
    info = _info(frame)
    if TRAJECTORY in info:
        return str(info[TRAJECTORY])
    if GROUP in info:
        return str(info[GROUP])
    elements = info.get(ELEMENTS) or element_key(frame.get_chemical_symbols())
    label = info.get(TEMPERATURE_LABEL)
    return str(elements) if label is None else f"{elements}_{label}"


def trajectories(frames: Sequence) -> dict[str, np.ndarray]:
    """Frame indices grouped by ``info["trajectory"]`` (fallback: the frame's group, else
    "<elements>_<temperature_label>"); ``frames`` are Atoms or their info mappings.

    Groups are in order of first appearance; within a group indices are ordered by ``info["frame_index"]`` when
    every frame of the group has it, otherwise in file order. Duplicate frame indices raise ValueError.
    """
    groups: dict[str, list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(_trajectory_key(frame), []).append(i)
    out = {}
    for key, idx in groups.items():
        positions = [_info(frames[i]).get(FRAME_INDEX) for i in idx]
        if all(p is not None for p in positions):
            if len(set(positions)) != len(positions):
                raise ValueError(
                    f"trajectory {key!r} has duplicate frame_index values; set info['{TRAJECTORY}'] to separate "
                    "the trajectories"
                )
            idx = [i for _, i in sorted(zip(positions, idx))]
        out[key] = _idx(idx)
    return out


def n_test(test_last: int | float, n: int, key: str) -> int:
    """Test frames held out of a trajectory of n frames (ValueError naming trajectory ``key`` if none is left)."""
    if isinstance(test_last, bool) or not isinstance(test_last, (int, float, np.integer, np.floating)):
        raise ValueError(f"test_last must be an int count or a float fraction in (0, 1), got {test_last!r}")
    if isinstance(test_last, (float, np.floating)):
        if not 0.0 < test_last < 1.0:
            raise ValueError(f"test_last as a fraction must be in (0, 1), got {test_last}")
        k = max(1, int(round(test_last * n)))
    else:
        k = int(test_last)
        if k < 1:
            raise ValueError(f"test_last must be at least 1, got {k}")
    if k >= n:
        raise ValueError(
            f"trajectory {key!r} is too short: {n} frames, cannot hold out the last {k} for test and keep any for train"
        )
    return k


def tm23_full_counts(test_last: int | float, per_trajectory: int, n_trajectories: int,
                     key: str = "of the data") -> tuple[int, int]:
    """(training frames, test frames) of the TM23 full split of ``n_trajectories`` equal trajectories (for checks
    at planning, before any data exists). ValueError naming trajectory ``key`` when it keeps no training frame."""
    k = n_test(test_last, per_trajectory, key)
    return (per_trajectory - k) * n_trajectories, k * n_trajectories


def subsets(split: Split, train_frames: int, test_frames: int, seed: int = 0, *, name: str = "grid") -> Split:
    """Disjoint seeded random subsets of ``split.train``: ``train_frames`` for training and ``test_frames`` for
    testing (TM23 grid search: 200 and 100), so ``split.test`` stays unseen by the selection. Indices sorted."""
    pool = split.train
    if train_frames < 1 or test_frames < 1:
        raise ValueError(f"train_frames and test_frames must be >= 1, got {train_frames}, {test_frames}")
    if train_frames + test_frames > pool.size:
        raise ValueError(f"{train_frames} + {test_frames} frames exceed the training pool of {pool.size}")
    order = np.random.default_rng([seed, 0x6721]).permutation(pool)
    train, test = np.sort(order[:train_frames]), np.sort(order[train_frames:train_frames + test_frames])
    return Split(train, test, None, f"{split.name}_{name}",
                 {**split.meta, "parent": split.name, "train_frames": train_frames, "test_frames": test_frames,
                  "seed": seed})


def tm23_full(frames: Sequence[Atoms], test_last: int | float = 100, *, name: str = "tm23_full") -> Split:
    """TM23 full split: per trajectory the last ``test_last`` frames are test, the earlier ones train.

    ``test_last`` is a count (int; paper: 100 of 1000, giving 2700/300 for three trajectories) or a fraction in
    (0, 1) of each trajectory (rounded, at least 1). ValueError if a trajectory has no frame left for train.
    """
    train, test, counts = [], [], {}
    for key, idx in trajectories(frames).items():
        k = n_test(test_last, len(idx), key)
        train.append(idx[:-k])
        test.append(idx[-k:])
        counts[key] = [len(idx) - k, k]
    return Split(_cat(train), _cat(test), None, name, {"test_last": test_last, "trajectories": counts})


def transfer(frames: Sequence[Atoms], train_label: str = "cold", test_label: str = "warm") -> Split:
    """TM23 transferability: train on every frame with ``info["temperature_label"] == train_label``, test on every
    frame with ``test_label`` (file order). ValueError when either set is empty."""
    labels = [frame.info.get(TEMPERATURE_LABEL) for frame in frames]
    train = _idx([i for i, v in enumerate(labels) if v == train_label])
    test = _idx([i for i, v in enumerate(labels) if v == test_label])
    for which, label, idx in (("train", train_label, train), ("test", test_label, test)):
        if idx.size == 0:
            found = sorted({str(v) for v in labels})
            raise ValueError(f"no frames with {TEMPERATURE_LABEL}={label!r} for {which}; found {found}")
    return Split(train, test, None, f"transfer_{train_label}_to_{test_label}",
                 {"train_label": train_label, "test_label": test_label})


class LearningCurve(list):
    """List of ``(size, set_id, indices)`` tuples with a ``meta`` dict (pool size, sizes kept/dropped, warnings)."""

    def __init__(self, items=(), meta: dict | None = None):
        super().__init__(items)
        self.meta = meta or {}


def learning_curve(
    train_indices,
    sizes: Sequence[int] = LEARNING_CURVE_SIZES,
    n_sets: int = 3,
    seed: int = 0,
    *,
    clip: bool = False,
) -> LearningCurve:
    """MS25 learning-curve subsets of a training pool: ``[(size, set_id, indices), ...]``.

    Each set ``set_id`` in ``range(n_sets)`` is a random permutation of the pool seeded by ``(seed, set_id)``;
    its subsets are prefixes of that permutation, so they are nested (additive: the 100 contain the 50).
    A size larger than the pool raises ValueError, or with ``clip=True`` is dropped and noted in ``meta``.
    """
    pool = _idx(train_indices)
    if np.unique(pool).size != pool.size:
        raise ValueError("train_indices contain duplicates")
    if n_sets < 1:
        raise ValueError(f"n_sets must be at least 1, got {n_sets}")
    sizes = [int(s) for s in sizes]
    if any(s < 1 for s in sizes):
        raise ValueError(f"sizes must be positive, got {sizes}")
    too_big = [s for s in sizes if s > pool.size]
    meta = {"pool": int(pool.size), "n_sets": n_sets, "seed": seed, "dropped": too_big}
    if too_big:
        msg = f"learning-curve size(s) {too_big} exceed the training pool of {pool.size} frames"
        if not clip:
            raise ValueError(msg)
        meta["warning"] = msg + "; dropped"
        warnings.warn(meta["warning"], stacklevel=2)
    kept = [s for s in sizes if s <= pool.size]
    meta["sizes"] = kept
    items = []
    for set_id in range(n_sets):
        order = np.random.default_rng([seed, set_id]).permutation(pool)
        items.extend((s, set_id, order[:s].copy()) for s in kept)
    return LearningCurve(items, meta)


def learning_curve_splits(split: Split, sizes=LEARNING_CURVE_SIZES, n_sets: int = 3, seed: int = 0, *,
                          clip: bool = False) -> list[Split]:
    """:func:`learning_curve` on ``split.train``, as Splits sharing ``split``'s test and validation sets."""
    curve = learning_curve(split.train, sizes, n_sets, seed, clip=clip)
    extra = {"warning": curve.meta["warning"]} if "warning" in curve.meta else {}
    out = []
    for size, set_id, idx in curve:
        meta = {**split.meta, "parent": split.name, "size": size, "set_id": set_id, "seed": seed, **extra}
        out.append(Split(idx, split.test, split.valid, f"{split.name}_n{size}_set{set_id}", meta))
    return out


def _count(fraction: float, n: int, what: str) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {fraction}")
    return int(round(fraction * n))


def random_split(n, test_fraction: float = 0.1, valid_fraction: float = 0.1, seed: int = 0) -> Split:
    """Random train/valid/test split of ``n`` frames (``n`` an int or a sized sequence); valid is None when
    ``valid_fraction`` is 0. Counts are rounded; ValueError when nothing is left for train."""
    n = n if isinstance(n, (int, np.integer)) else len(n)
    n_test = _count(test_fraction, n, "test_fraction")
    n_valid = _count(valid_fraction, n, "valid_fraction")
    if n - n_test - n_valid < 1:
        raise ValueError(f"no frames left for train: n={n}, test={n_test}, valid={n_valid}")
    order = np.random.default_rng(seed).permutation(n)
    test, valid, train = order[:n_test], order[n_test:n_test + n_valid], order[n_test + n_valid:]
    meta = {"test_fraction": test_fraction, "valid_fraction": valid_fraction, "seed": seed}
    return Split(np.sort(train), np.sort(test), np.sort(valid) if valid_fraction > 0 else None, "random", meta)


def with_validation(split: Split, fraction: float = 0.1, seed: int = 0) -> Split:
    """Copy of ``split`` whose validation set is a random ``fraction`` of its train set (rounded, at least 1),
    removed from train (train keeps its order). ValueError if ``split`` already has a validation set."""
    if split.valid is not None:
        raise ValueError(f"split {split.name!r} already has a validation set")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    n = split.train.size
    k = max(1, int(round(fraction * n)))
    if k >= n:
        raise ValueError(f"train set of {n} frames is too small for a validation set of {k}")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
    meta = {**split.meta, "valid_fraction": fraction, "valid_seed": seed}
    return Split(split.train[~mask], split.test, split.train[mask], split.name, meta)


# ------------------------------------------------------------------------------------------ split specs
# A split spec is a JSON-able dict, part of a job's inputs (so its key): the data set's base split ("last",
# "random", "files") or one derived from it ("subset": learning-curve prefixes, "grid": disjoint subsets) or a
# group hold-out ("holdout"). ``make`` turns (frames, spec, seed) into the training split and named test sets.


def _groups(frames: Sequence) -> list[str]:
    return [str(_info(f).get(GROUP, "")) for f in frames]


def random_by_group(frames: Sequence, test_fraction: float, seed: int = 0) -> Split:
    """A seeded random ``test_fraction`` of every group is the test set (rounded; at least one frame of a group of
    two or more; a group of one frame stays in training)."""
    groups = _groups(frames)
    train, test = [], []
    for g in dict.fromkeys(groups):
        idx = np.array([i for i, x in enumerate(groups) if x == g], dtype=int)
        k = 0 if idx.size < 2 else min(idx.size - 1, max(1, int(round(test_fraction * idx.size))))
        order = np.random.default_rng([seed, 0x5B1D, zlib.crc32(g.encode())]).permutation(idx)
        test.append(order[:k])
        train.append(order[k:])
    return Split(np.sort(_cat(train)), np.sort(_cat(test)), None, "random",
                 {"test_fraction": test_fraction, "seed": seed, "stratified_by": GROUP})


def validation_by_group(frames: Sequence, train: np.ndarray, fraction: float, seed: int = 0
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid): a seeded random ``fraction`` of each group of the TRAINING indices ``train`` held out for
    validation (the training protocol's hold-out, the same for every family on a split: it depends on the
    indices, the groups and the seed only). Per group: round(fraction * n), at least one frame, never the group's
    last (a group of one frame stays in training). Both sorted."""
    train = _idx(train)
    groups = [str(_info(frames[i]).get(GROUP, "")) for i in train]
    keep, held = [], []
    for g in dict.fromkeys(groups):
        idx = train[[j for j, x in enumerate(groups) if x == g]]
        k = 0 if idx.size < 2 else min(idx.size - 1, max(1, int(round(fraction * idx.size))))
        order = np.random.default_rng([seed, 0x7A11D, zlib.crc32(g.encode())]).permutation(idx)
        held.append(order[:k])
        keep.append(order[k:])
    return np.sort(_cat(keep)), np.sort(_cat(held))


def given(frames: Sequence) -> Split:
    """Frames from the data set's test files are the test set (``info['subset'] == 'test'``)."""
    subsets = [_info(f).get("subset") for f in frames]
    test = [i for i, s in enumerate(subsets) if s == "test"]
    if not test:
        raise ValueError("split 'files' needs test files, and this data set has none")
    return Split([i for i, s in enumerate(subsets) if s != "test"], test, None, "files", {})


def holdout(frames: Sequence, train_groups: Sequence[str], test_groups: Sequence[str]) -> tuple[Split, dict]:
    """Group hold-out: train on every frame of ``train_groups``; one test set per test group (every frame)."""
    groups = _groups(frames)
    found = list(dict.fromkeys(groups))
    for which, names in (("train", train_groups), ("test", test_groups)):
        missing = [g for g in names if g not in found]
        if missing:
            raise ValueError(f"hold-out {which} group(s) {missing} not in the data set (groups: {found})")
    train = [i for i, g in enumerate(groups) if g in set(train_groups)]
    tests = {t: _idx([i for i, g in enumerate(groups) if g == t]) for t in test_groups}
    split = Split(train, tests[test_groups[0]], None, f"holdout_{'+'.join(train_groups)}",
                  {"train_groups": list(train_groups), "test_groups": list(test_groups)})
    return split, tests


def holdout_within(frames: Sequence, train_groups: Sequence[str], test_groups: Sequence[str],
                   parent: Split) -> tuple[Split, dict]:
    """Group hold-out with an in-distribution test set: train on the training frames of ``parent`` (the data
    set's own split) in ``train_groups``; test on parent's test frames in those groups (named after them, e.g.
    "cold") and on every frame of each test group."""
    split, tests = holdout(frames, train_groups, test_groups)
    inside = "+".join(train_groups)
    train = np.intersect1d(split.train, parent.train)
    within = np.intersect1d(split.train, parent.test)
    if not within.size:
        raise ValueError(f"hold-out: the data set's split has no test frame in group(s) {inside}")
    tests = {inside: within, **tests}
    return Split(train, within, None, f"holdout_within_{inside}", {**split.meta, "within": parent.name}), tests


def base(frames: Sequence, spec: Mapping, seed: int) -> Split:
    """A data set's own split: ``last`` (TM23, per trajectory), ``random`` (per group) or ``files``."""
    kind = spec["kind"]
    if kind == "last":
        return tm23_full(frames, spec["test_last"])
    if kind == "random":
        return random_by_group(frames, spec["test_fraction"], seed)
    if kind == "files":
        return given(frames)
    raise ValueError(f"unknown base split kind {kind!r}")


def make(frames: Sequence, spec: Mapping, seed: int) -> tuple[Split, dict[str, np.ndarray]]:
    """The training split of a job's spec and its named test sets (indices into ``frames``)."""
    kind = spec["kind"]
    if kind == "holdout" and spec.get("within"):  # calibration: the training groups' own split, then hold-out
        return holdout_within(frames, spec["train"], spec["test"], base(frames, spec["within"], seed))
    if kind == "holdout":
        return holdout(frames, spec["train"], spec["test"])
    if kind in ("last", "random", "files"):
        split = base(frames, spec, seed)
        return split, {"test": split.test}
    parent = base(frames, spec["base"], seed)
    if kind == "subset":  # learning curve: nested seeded prefixes of the base training set
        (sub,) = [s for s in learning_curve_splits(parent, [spec["size"]], spec["set_id"] + 1, seed)
                  if s.meta["set_id"] == spec["set_id"]]
        return sub, {"test": parent.test}
    if kind == "grid":  # train and test subsets both drawn from the base training set
        sub = subsets(parent, spec["train_frames"], spec["test_frames"], seed)
        return sub, {"test": sub.test}
    raise ValueError(f"unknown split kind {kind!r}")


def record(split: Split, tests: Mapping[str, np.ndarray]) -> dict:
    """The indices of a job's split as stored in the run (``id`` = hash of train and test indices)."""
    import hashlib
    import json

    body = {"train": split.train.tolist(), "tests": {k: np.asarray(v).tolist() for k, v in tests.items()}}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return {"id": digest, "name": split.name, **body}
