"""The FLARE environment (mlffbench env ``flare``, built by scripts/build_flare_env.sh) and its driver
(models/flare_driver.py).

The env is built on first use (~3 min, cached; $MLFFBENCH_FLARE_PYTHON overrides it); the module skips with the
build error (which names the log) when it cannot be built.
The descriptor test also recomputes B1/B2 in numpy from the conventions documented in the driver (Chebyshev
T_n(r/rc), quadratic cutoff (r-rc)^2, orthonormal real harmonics summed over m via the addition theorem,
channel k = s*n_max + n, order k1 <= k2, l fastest), so a wrong statement there fails here.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from ase.neighborlist import neighbor_list
from numpy.polynomial import chebyshev, legendre

from mlffbench.models.flare_env import DRIVER

CUTOFF, N_MAX, L_MAX = 4.0, 3, 2


PYTHON = None  # set by the module fixture below


@pytest.fixture(scope="module", autouse=True)
def flare_env(flare_python):
    """Every test here needs the flare env (conftest: built on first use, else the module skips)."""
    global PYTHON
    PYTHON = flare_python


def emt_frames(n: int, gold: int = 0, seed0: int = 0):
    """n rattled 8-atom fcc Cu cells (orthorhombic 2x1x1 cubic cell), EMT-labelled; `gold` atoms -> Au."""
    frames = []
    for seed in range(seed0, seed0 + n):
        atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.08, seed=seed)
        for i in range(gold):
            atoms[2 * i + 1].symbol = "Au"
        atoms.calc = EMT()
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f, stress=s)
        frames.append(atoms)
    return frames


def run_driver(*args) -> None:
    proc = subprocess.run([str(PYTHON), str(DRIVER), *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def numpy_descriptors(atoms, species, n_max, l_max, rc):
    """Reference B1 (n_atoms, K) and B2 (n_atoms, dim) from the documented FLARE conventions."""
    i, j, vec = neighbor_list("ijD", atoms, rc)
    r = np.linalg.norm(vec, axis=1)
    keep = r < rc
    i, j, vec, r = i[keep], j[keep], vec[keep], r[keep]
    code = {z: k for k, z in enumerate(species)}
    ns = len(species)
    radial = np.stack([chebyshev.chebval(r / rc, np.eye(n_max)[n]) for n in range(n_max)], 1)
    radial *= ((r - rc) ** 2)[:, None]
    g = np.zeros((len(r), ns * n_max))  # channel k = s*n_max + n, s = neighbour species
    for p in range(len(r)):
        s = code[int(atoms.numbers[j[p]])]
        g[p, s * n_max:(s + 1) * n_max] = radial[p]
    b1, b2 = [], []
    for c in range(len(atoms)):
        m = i == c
        gc, u = g[m], vec[m] / r[m, None]
        b1.append(gc.sum(0) / (2 * np.sqrt(np.pi)))
        cos = np.clip(u @ u.T, -1.0, 1.0)
        p_l = [legendre.legval(cos, np.eye(l_max + 1)[l]) * (2 * l + 1) / (4 * np.pi) for l in range(l_max + 1)]
        k_total = ns * n_max
        b2.append([gc[:, k1] @ p_l[l] @ gc[:, k2]
                   for k1 in range(k_total) for k2 in range(k1, k_total) for l in range(l_max + 1)])
    return np.array(b1), np.array(b2)


def test_descriptors_b1_b2(tmp_path):
    frames = emt_frames(2, gold=2)
    path = tmp_path / "frames.extxyz"
    write(path, frames)
    frames = read(path, index=":")  # the driver sees the positions as rounded in the file
    species = [29, 79]
    ns = len(species)
    common = ["--frames", path, "--cutoff", CUTOFF, "--n-max", N_MAX, "--species", "29,79"]
    run_driver("descriptors", *common, "--l-max", L_MAX, "--kind", "B2", "--out", tmp_path / "b2.npz")
    run_driver("descriptors", *common, "--kind", "B1", "--out", tmp_path / "b1.npz")
    b2, b1 = np.load(tmp_path / "b2.npz"), np.load(tmp_path / "b1.npz")

    dim = (N_MAX * ns + 1) * N_MAX * ns // 2 * (L_MAX + 1)
    meta = json.loads(str(b2["meta"]))
    assert meta["dim"] == dim and meta["n_frames"] == 2
    assert len(b2["component_l"]) == dim
    assert b2["component_l"][: L_MAX + 1].tolist() == list(range(L_MAX + 1))
    for k, atoms in enumerate(frames):
        d2, d1 = b2[f"desc_{k}"], b1[f"desc_{k}"]
        assert d2.shape == (len(atoms), dim) and d1.shape == (len(atoms), N_MAX * ns)
        assert b2[f"species_{k}"].tolist() == [species.index(z) for z in atoms.numbers]
        ref1, ref2 = numpy_descriptors(atoms, species, N_MAX, L_MAX, CUTOFF)
        np.testing.assert_allclose(d2, ref2, rtol=1e-9, atol=1e-9 * np.abs(ref2).max())
        np.testing.assert_allclose(d1, ref1, rtol=1e-9, atol=1e-9 * np.abs(ref1).max())
        np.testing.assert_allclose(b2[f"norms_{k}"], np.linalg.norm(d2, axis=1), rtol=1e-12)


def test_predict(tmp_path):
    train, test = emt_frames(3), emt_frames(1, seed0=10)
    write(tmp_path / "train.extxyz", train)
    write(tmp_path / "test.extxyz", train + test)  # training frames first: a stress-sign check
    sparse = {"0": list(range(8)), "1": list(range(8)), "2": list(range(8))}
    (tmp_path / "sparse.json").write_text(json.dumps(sparse))
    args = ["predict", "--train", tmp_path / "train.extxyz", "--test", tmp_path / "test.extxyz",
            "--cutoff", CUTOFF, "--n-max", N_MAX, "--l-max", L_MAX, "--species", "29", "--kind", "B2",
            "--power", 2, "--sigma", 2.0, "--sigma-e", 0.001, "--sigma-f", 0.01, "--sigma-s", 0.0005,
            "--sparse", tmp_path / "sparse.json"]
    run_driver(*args, "--out", tmp_path / "fixed.json")
    run_driver(*args, "--optimise", "--positive-bounds", "--out", tmp_path / "opt.json")

    for name in ("fixed.json", "opt.json"):
        out = json.loads((tmp_path / name).read_text())
        assert out["n_sparse"] == 24 and out["n_labels"] == {"energy": 3, "forces": 72, "stress": 18}
        assert np.isfinite(out["log_marginal_likelihood"])
        assert all(np.isfinite(v) for v in out["hyperparameters"].values())
        assert len(out["frames"]) == 4
        for frame in out["frames"]:
            assert np.isfinite(frame["energy"]) and np.isfinite(frame["energy_variance"])
            for key, shape in [("forces", (8, 3)), ("forces_variance", (8, 3)), ("stress", (6,)),
                               ("stress_variance", (6,)), ("local_energy_variances", (8,))]:
                arr = np.asarray(frame[key], dtype=float)
                assert arr.shape == shape, key
                assert np.all(np.isfinite(arr)), key
        assert set(out["timings_s"]) >= {"train_descriptors", "update_matrices", "predict"}

    # Conventions: with every training atom sparse and small noise, the training frames are reproduced,
    # stresses in ASE sign/order (a sign or Voigt-order slip would anti-correlate / scramble them).
    out = json.loads((tmp_path / "fixed.json").read_text())
    assert out["hyperparameters"]["sigma_e"] == 0.001
    pred_s = np.array([f["stress"] for f in out["frames"][:3]])
    true_s = np.array([a.get_stress() for a in train])
    assert np.corrcoef(pred_s.ravel(), true_s.ravel())[0, 1] > 0.9
    pred_e = np.array([f["energy"] for f in out["frames"][:3]])
    assert np.abs(pred_e - [a.get_potential_energy() for a in train]).max() < 0.01
    pred_f = np.array([f["forces"] for f in out["frames"][:3]])
    true_f = np.array([a.get_forces() for a in train])
    assert np.corrcoef(pred_f.ravel(), true_f.ravel())[0, 1] > 0.9
    opt = json.loads((tmp_path / "opt.json").read_text())
    assert opt["log_marginal_likelihood"] >= out["log_marginal_likelihood"] - 1e-6


def test_driver_refuses_l_max_above_10(tmp_path):
    """FLARE's spherical harmonics stop at l = 10 (it would silently return zeros): one clear line, no output."""
    path = tmp_path / "frames.extxyz"
    write(path, emt_frames(1))
    out = tmp_path / "b2.npz"
    proc = subprocess.run([str(PYTHON), str(DRIVER), "descriptors", "--frames", str(path), "--cutoff", "4.0",
                           "--n-max", "2", "--l-max", "11", "--species", "29", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "flare_driver: --l-max 11 > 10: FLARE's spherical harmonics stop at l = 10 (higher l would silently give "
        "zero descriptor components)"]
    assert not out.exists()
