import numpy as np
import pytest
from ase import Atoms

from mlffbench.data import splits
from mlffbench.frames import ELEMENTS, FRAME_INDEX, TEMPERATURE_LABEL, TRAJECTORY

BASE = Atoms("Cu", cell=[2.5, 2.5, 2.5], pbc=True)


def _frames(n_per=1000, labels=("cold", "warm", "melt"), with_traj=True, shuffle=False):
    frames = []
    for label in labels:
        for i in range(n_per):
            a = BASE.copy()
            a.info.update({ELEMENTS: "Cu", TEMPERATURE_LABEL: label, FRAME_INDEX: i})
            if with_traj:
                a.info[TRAJECTORY] = f"Cu_{label}"
            frames.append(a)
    if shuffle:
        order = np.random.default_rng(5).permutation(len(frames))
        frames = [frames[i] for i in order]
    return frames


def _info(frames, idx, key):
    return [frames[i].info[key] for i in idx]


def test_trajectories_grouping_and_order():
    frames = _frames(10, shuffle=True)
    groups = splits.trajectories(frames)
    assert set(groups) == {"Cu_cold", "Cu_warm", "Cu_melt"}
    for key, idx in groups.items():
        assert idx.dtype.kind == "i"
        assert _info(frames, idx, FRAME_INDEX) == list(range(10))
        assert set(_info(frames, idx, TRAJECTORY)) == {key}
    fallback = splits.trajectories(_frames(5, with_traj=False))
    assert list(fallback) == ["Cu_cold", "Cu_warm", "Cu_melt"]


def test_trajectories_duplicate_frame_index_raises():
    frames = _frames(3, labels=("cold",), with_traj=False) * 2
    with pytest.raises(ValueError, match="duplicate"):
        splits.trajectories(frames)


def test_tm23_full_paper_sizes():
    frames = _frames(1000, shuffle=True)
    split = splits.tm23_full(frames)
    assert len(split.train) == 2700 and len(split.test) == 300 and split.valid is None
    assert not set(split.train) & set(split.test)
    assert set(_info(frames, split.test, FRAME_INDEX)) == set(range(900, 1000))
    assert max(_info(frames, split.train, FRAME_INDEX)) == 899
    assert split.meta["trajectories"]["Cu_warm"] == [900, 100]


def test_tm23_full_fraction_and_errors():
    frames = _frames(20)
    split = splits.tm23_full(frames, test_last=0.1)
    assert len(split.test) == 6 and len(split.train) == 54
    assert len(splits.tm23_full(_frames(3), test_last=0.01).test) == 3 * 1  # at least one per trajectory
    with pytest.raises(ValueError, match="too short"):
        splits.tm23_full(_frames(50), test_last=100)
    with pytest.raises(ValueError):
        splits.tm23_full(frames, test_last=1.5)
    with pytest.raises(ValueError):
        splits.tm23_full(frames, test_last=0)


def test_transfer_sizes():
    frames = _frames(1000)
    for test_label in ("warm", "melt"):
        split = splits.transfer(frames, "cold", test_label)
        assert len(split.train) == 1000 and len(split.test) == 1000
        assert set(_info(frames, split.train, TEMPERATURE_LABEL)) == {"cold"}
        assert set(_info(frames, split.test, TEMPERATURE_LABEL)) == {test_label}
    with pytest.raises(ValueError, match="hot"):
        splits.transfer(frames, "cold", "hot")


def test_learning_curve_nested_and_deterministic():
    pool = np.arange(5000, 6000)
    curve = splits.learning_curve(pool)
    assert len(curve) == 7 * 3
    for set_id in range(3):
        subsets = [(size, idx) for size, s, idx in curve if s == set_id]
        assert [size for size, _ in subsets] == [50, 100, 200, 400, 600, 800, 1000]
        for (_, small), (size, big) in zip(subsets, subsets[1:]):
            assert len(big) == size and np.array_equal(big[: len(small)], small)  # additive
            assert set(big) <= set(pool) and len(set(big)) == size
    sets = {s: idx for size, s, idx in curve if size == 50}
    assert not np.array_equal(sets[0], sets[1])  # replicates differ
    again = splits.learning_curve(pool)
    assert all(a[:2] == b[:2] and np.array_equal(a[2], b[2]) for a, b in zip(curve, again))
    other = splits.learning_curve(pool, seed=1)
    assert not np.array_equal(other[0][2], curve[0][2])


def test_learning_curve_too_large():
    with pytest.raises(ValueError, match="1000"):
        splits.learning_curve(np.arange(900))
    with pytest.warns(UserWarning):
        curve = splits.learning_curve(np.arange(900), clip=True)
    assert curve.meta["dropped"] == [1000] and "warning" in curve.meta
    assert {size for size, _, _ in curve} == {50, 100, 200, 400, 600, 800}


def test_learning_curve_splits_share_test():
    base = splits.tm23_full(_frames(100, labels=("cold",)), test_last=10)
    subs = splits.learning_curve_splits(base, sizes=(10, 20), n_sets=2)
    assert len(subs) == 4
    assert all(np.array_equal(s.test, base.test) for s in subs)
    assert subs[0].name == "tm23_full_n10_set0" and subs[0].meta["size"] == 10


def test_random_split_and_validation():
    a = splits.random_split(1000, seed=3)
    assert (len(a.train), len(a.valid), len(a.test)) == (800, 100, 100)
    assert sorted(np.concatenate([a.train, a.valid, a.test]).tolist()) == list(range(1000))
    assert a == splits.random_split(1000, seed=3)
    assert not np.array_equal(a.test, splits.random_split(1000, seed=4).test)
    assert splits.random_split(10, valid_fraction=0.0).valid is None

    base = splits.tm23_full(_frames(1000))
    v = splits.with_validation(base, 0.1, seed=0)
    assert len(v.valid) == 270 and len(v.train) == 2430
    assert not set(v.valid) & set(v.train) and set(v.valid) | set(v.train) == set(base.train)
    assert np.array_equal(v.test, base.test)
    assert v == splits.with_validation(base, 0.1, seed=0)
    assert not np.array_equal(v.valid, splits.with_validation(base, 0.1, seed=1).valid)
    with pytest.raises(ValueError, match="already"):
        splits.with_validation(v)


def test_split_round_trip():
    split = splits.with_validation(splits.tm23_full(_frames(20), test_last=2))
    assert splits.Split.from_dict(split.to_dict()) == split
