"""Cross-check of the native ACE sparse GP (mlffbench.models.acegp) against FLARE 1.4.0 itself.

FLARE runs in its own environment (mlffbench env ``flare``, built on first use by scripts/build_flare_env.sh)
through src/mlffbench/models/flare_driver.py (and, for the sparse-selection check, a short inline script that
imports the driver's helpers); the module skips with the build error when that environment cannot be built. All frames are small orthorhombic EMT-labelled cells (FLARE 1.4.0 can miss neighbours in skewed
cells), written to extxyz once and read back, so both sides see the same rounded positions and labels.

(a) raw B1/B2 descriptors, every atom of every frame, for several (cutoff, n_max, l_max, n_species), l_max up to
    10 (FLARE 1.4.0's spherical harmonics are hard-coded up to l = 10; for l > 10 it silently returns zeros);
(b) with the sparse set chosen by ours passed to FLARE, the same fixed hyperparameters (energy noise on the total
    energy, FLARE's absolute Kuu jitter 1e-8 = our unit-sigma jitter 1e-8 / sigma^2): predicted energies, forces,
    stresses, Nystroem local variances, log marginal likelihood, its gradient (FLARE analytic vs central
    differences of ours) and, at our optimised hyperparameters, FLARE's likelihood gradient ~ 0 (same optimum).
    In an ill-conditioned case an exact (60-digit) evaluation of log p shows which side the residual
    disagreement comes from (FLARE's);
(c) FLARE's own max-variance selection (SparseGP.add_uncertain_environments) picks the same atoms as ours once
    the first frame's choice is shared. (For the very first frame, where the sparse set is empty, every atom's
    variance is sigma^2: ours breaks the tie by atom order, FLARE by +-1 ulp rounding noise in k(x, x).)

The agreement levels reached are printed (pytest -s) and recorded as junit properties.
"""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal, localcontext

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

from mlffbench.models.flare_env import DRIVER
from mlffbench import frames as fr
from mlffbench.models.acegp import AceDescriptor, AceGPModel

PYTHON = None  # set by the module fixture below


@pytest.fixture(scope="module", autouse=True)
def flare_env(flare_python):
    """Every test here needs the flare env (conftest: built on first use, else the module skips)."""
    global PYTHON
    PYTHON = flare_python

# Agreement targets. Achieved (see the printout): descriptors ~2e-15; predictions ~1e-14 to 1e-13 in well-
# conditioned cases and ~1e-8 in the Cu-zeta2 case (24 near-identical fcc sparse environments, cond(K_uu) ~ 1e9);
# log p ~1e-13, but ~3e-7 for Cu-zeta2, where FLARE's own rounding dominates
# (test_ill_conditioned_case_exact_reference).
DESC_RTOL = 1e-8
PRED_RTOL = 1e-7
VAR_ATOL = 1e-8  # Nystroem variance, in units of sigma^2 (the prior variance)
LML_RTOL = 1e-6


# --------------------------------------------------------------------------------------------- data


def _cell(seed: int, repeat=(2, 2, 2), others=(), fraction=1 / 3, rattle=0.1, vacancy=False) -> Atoms:
    """Rattled fcc Cu (orthorhombic cubic cell, random diagonal strain +-2 %), EMT-labelled. ``others``: atomic
    numbers that replace random atoms (``fraction`` of the cell, spread evenly over them)."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat(repeat)
    atoms.set_cell(np.diag(atoms.cell.lengths() * (1 + rng.uniform(-0.02, 0.02, 3))), scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    if vacancy:
        del atoms[int(rng.integers(len(atoms)))]
    if others:
        picked = rng.choice(len(atoms), max(len(others), int(round(fraction * len(atoms)))), replace=False)
        atoms.numbers[picked] = np.resize(np.asarray(others), len(picked))
    atoms.calc = EMT()
    return fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())


SYSTEMS = {
    "Cu": ((29,), ()),
    "CuAu": ((29, 79), (79,)),
    "CuNiAu": ((29, 28, 79), (28, 79)),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """name -> (species, path, frames read back from path). Training sets start with a frame holding every species
    (so every species has sparse environments after frame 0, see (c)); test sets include an 8-atom 2x1x1 cell,
    whose 3.6 A height is below the cutoff (several periodic image shells), and a strongly rattled 47-atom cell with
    a vacancy (environments unlike the training ones: large local variances)."""
    root = tmp_path_factory.mktemp("flare_xc")
    out = {}
    for name, (species, others) in SYSTEMS.items():
        sets = {
            "train": [_cell(s, others=others) for s in range(6)],
            "test": [_cell(100, others=others), _cell(101, (2, 1, 1), others=others, fraction=0.5),
                     _cell(102, (3, 2, 2), others=others, rattle=0.3, vacancy=True)],
        }
        for kind, frames in sets.items():
            path = root / f"{name}_{kind}.extxyz"
            write(path, frames)
            out[name, kind] = (species, path, read(path, index=":"))
    return out


def run_flare(*args, timeout=120) -> str:
    proc = subprocess.run([str(PYTHON), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def rel(ours, ref) -> float:
    """max |ours - ref| / max |ref| over all entries."""
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def report(record_property, label: str, **values) -> None:
    text = ", ".join(f"{k} {v:.2e}" for k, v in values.items())
    print(f"\n[flare cross-check] {label}: {text}")
    for k, v in values.items():
        record_property(f"{label}:{k}", v)


# --------------------------------------------------------------------------------------------- (a) descriptors

DESC_CASES = [
    # kind, cutoff, n_max, l_max, system
    ("B2", 4.0, 3, 2, "Cu"),
    ("B2", 5.0, 8, 4, "CuAu"),
    ("B2", 4.5, 4, 6, "CuAu"),
    ("B2", 3.7, 2, 10, "Cu"),  # FLARE 1.4.0's largest l
    ("B2", 4.2, 3, 3, "CuNiAu"),
    ("B1", 4.0, 3, 0, "Cu"),
    ("B1", 5.0, 8, 0, "CuAu"),
    ("B1", 4.2, 5, 0, "CuNiAu"),
]


@pytest.mark.parametrize("kind,cutoff,n_max,l_max,system", DESC_CASES,
                         ids=[f"{c[0]}-rc{c[1]}-n{c[2]}-l{c[3]}-{c[4]}" for c in DESC_CASES])
def test_descriptors_match_flare(data, tmp_path, record_property, kind, cutoff, n_max, l_max, system):
    species, _, train = data[system, "train"]
    _, _, test = data[system, "test"]
    frames = train + test
    path = tmp_path / "frames.extxyz"
    write(path, frames)
    frames = read(path, index=":")
    run_flare(DRIVER, "descriptors", "--frames", path, "--cutoff", cutoff, "--n-max", n_max, "--l-max", l_max,
              "--species", ",".join(map(str, species)), "--kind", kind, "--out", tmp_path / "d.npz")
    flare = np.load(tmp_path / "d.npz")
    d = AceDescriptor(kind, cutoff, n_max, l_max, species)
    meta = json.loads(str(flare["meta"]))
    assert meta["dim"] == d.dim and meta["n_frames"] == len(frames)
    worst = 0.0
    for k, atoms in enumerate(frames):
        ref = flare[f"desc_{k}"]
        ours = d.environments(atoms).desc
        assert ours.shape == ref.shape == (len(atoms), d.dim)
        assert flare[f"n_neighbors_{k}"].min() > 0
        worst = max(worst, rel(ours, ref))
    report(record_property, f"descriptors {kind} rc={cutoff} n_max={n_max} l_max={l_max} {system}",
           max_rel_diff=worst)
    assert worst < DESC_RTOL


# --------------------------------------------------------------------------------------------- (b) predictions

PRED_CASES = {
    # system, descriptor (cutoff, n_max, l_max), power, sparse per frame, hyperparameters, train_on
    "Cu-zeta2": ("Cu", (4.5, 4, 3), 2, 4, dict(sigma=2.0, sigma_e=0.01, sigma_f=0.05, sigma_s=0.005),
                 ["energy", "forces", "stress"]),
    "CuAu-zeta1": ("CuAu", (5.0, 5, 4), 1, 5, dict(sigma=1.5, sigma_e=0.05, sigma_f=0.1, sigma_s=0.002),
                   ["energy", "forces", "stress"]),
    "CuNiAu-zeta2-EF": ("CuNiAu", (4.0, 3, 2), 2, 3, dict(sigma=3.0, sigma_e=0.1, sigma_f=0.02, sigma_s=0.01),
                        ["energy", "forces"]),
}


def params_for(case: str, **over) -> dict:
    system, (cutoff, n_max, l_max), power, per_frame, hyps, train_on = PRED_CASES[case]
    p = dict(descriptor="B2", cutoff=cutoff, n_max=n_max, l_max=l_max, power=power, **hyps,
             energy_noise="per_structure", optimise=False, sparse_method="max_variance",
             sparse_per_frame=per_frame, train_on=train_on, energy_shift="none",
             jitter=1e-8 / hyps["sigma"] ** 2, species=SYSTEMS[system][0])
    p.update(over)
    return p


def flare_predict(data, tmp_path, system: str, params: dict, pot, hyps: dict,
                  kuu_jitter: float | None = None) -> dict:
    """FLARE fit on the system's training frames with ``params``' descriptor, ``hyps`` fixed and our sparse set;
    predictions on the system's test frames."""
    species, train_path, _ = data[system, "train"]
    _, test_path, _ = data[system, "test"]
    sparse = {str(k): [int(a) for a in atoms] for k, atoms in enumerate(pot.info["sparse_atoms"])}
    (tmp_path / "sparse.json").write_text(json.dumps(sparse))
    out = tmp_path / "flare.json"
    extra = [] if kuu_jitter is None else ["--kuu-jitter", repr(kuu_jitter)]
    extra += [f"--no-{g}" for g in ("energy", "forces", "stress") if g not in params["train_on"]]
    run_flare(DRIVER, "predict", "--train", train_path, "--test", test_path, "--cutoff", params["cutoff"],
              "--n-max", params["n_max"], "--l-max", params["l_max"], "--species", ",".join(map(str, species)),
              "--kind", "B2", "--power", params["power"], "--sigma", repr(hyps["sigma"]),
              "--sigma-e", repr(hyps["sigma_e"]), "--sigma-f", repr(hyps["sigma_f"]),
              "--sigma-s", repr(hyps["sigma_s"]), "--sparse", tmp_path / "sparse.json", *extra, "--out", out)
    return json.loads(out.read_text())


HYPS = ("sigma", "sigma_e", "sigma_f", "sigma_s")


@pytest.mark.parametrize("case", list(PRED_CASES))
def test_predictions_match_flare(data, tmp_path, record_property, case):
    system = PRED_CASES[case][0]
    _, _, train = data[system, "train"]
    _, _, test = data[system, "test"]
    params = params_for(case)
    pot = AceGPModel().fit(train, None, params, None)
    hyps = {k: params[k] for k in ("sigma", "sigma_e", "sigma_f", "sigma_s")}
    assert {k: pot.hyperparameters[k] for k in hyps} == pytest.approx(hyps, rel=1e-14)  # exp(log h)
    flare = flare_predict(data, tmp_path, system, params, pot, hyps)

    # the same sparse environments and the same labels on both sides
    assert flare["n_sparse"] == pot.info["n_sparse"] == sum(len(s) for s in pot.info["sparse_atoms"])
    assert [sorted(s) for s in flare["sparse_indices"][0]] == [sorted(s) for s in pot.info["sparse_atoms"]]
    assert flare["n_labels"] == pot.info["labels"]
    assert flare["settings"]["Kuu_jitter"] == pytest.approx(params["jitter"] * params["sigma"] ** 2, rel=1e-12)

    ours = [pot.evaluate(atoms) for atoms in test]
    e_ours, e_fl = [o[0] for o in ours], [f["energy"] for f in flare["frames"]]
    f_ours, f_fl = np.vstack([o[1] for o in ours]), np.vstack([f["forces"] for f in flare["frames"]])
    s_ours, s_fl = np.vstack([o[2] for o in ours]), np.vstack([f["stress"] for f in flare["frames"]])
    v_ours = np.concatenate([pot.local_variances(atoms, kind="nystrom") for atoms in test])
    v_fl = np.concatenate([f["local_energy_variances"] for f in flare["frames"]])
    lml_ours, lml_fl = pot.info["log_marginal_likelihood"], flare["log_marginal_likelihood"]
    levels = dict(energy=rel(e_ours, e_fl), forces=rel(f_ours, f_fl), stress=rel(s_ours, s_fl),
                  nystrom_var_over_sigma2=float(np.abs(v_ours - v_fl).max() / params["sigma"] ** 2),
                  lml=abs(lml_ours - lml_fl) / abs(lml_fl))
    report(record_property, f"predictions {case}", **levels)
    # sanity: the model is not trivial (it predicts the test labels roughly) and variances are not all ~0
    assert np.corrcoef(f_ours.ravel(), np.vstack([a.get_forces() for a in test]).ravel())[0, 1] > 0.5
    assert v_fl.max() > 1e-3 * params["sigma"] ** 2
    assert levels["energy"] < PRED_RTOL and levels["forces"] < PRED_RTOL and levels["stress"] < PRED_RTOL
    assert levels["nystrom_var_over_sigma2"] < VAR_ATOL
    assert levels["lml"] < LML_RTOL


def test_likelihood_gradient_matches_flare(data, tmp_path, record_property):
    """FLARE's analytic d log p / d(sigma, sigma_e, sigma_f, sigma_s) vs central differences of our log p
    (CuAu, zeta 2, a small descriptor so that the 8 extra fits stay cheap)."""
    _, _, train = data["CuAu", "train"]
    params = params_for("CuAu-zeta1", cutoff=4.0, n_max=3, l_max=2, power=2)
    base = {k: params[k] for k in HYPS}
    pot = AceGPModel().fit(train, None, params, None)
    flare = flare_predict(data, tmp_path, "CuAu", params, pot, base)
    g_flare = np.array([flare["likelihood_gradient"][k] * base[k] for k in HYPS])  # d log p / d log h
    step = 1e-4
    g_ours = []
    for k in HYPS:
        values = []
        for sign in (1, -1):
            h = dict(base, **{k: base[k] * np.exp(sign * step)})
            p = dict(params, **h, jitter=1e-8 / h["sigma"] ** 2)  # FLARE's jitter is absolute: follow sigma
            fit = AceGPModel().fit(train, None, p, None)
            assert fit.info["sparse_atoms"] == pot.info["sparse_atoms"]
            values.append(fit.info["log_marginal_likelihood"])
        g_ours.append((values[0] - values[1]) / (2 * step))
    g_ours = np.array(g_ours)
    level = float(np.abs(g_ours - g_flare).max() / np.abs(g_flare).max())
    report(record_property, "likelihood gradient (d/dlog h) CuAu", max_rel_diff=level)
    print("  FLARE", g_flare, "\n  ours (central differences)", g_ours)
    assert np.all(np.abs(g_flare) > 1.0)  # not at an optimum: every component is tested
    assert level < 1e-5


def test_optimum_is_stationary_for_flare(data, tmp_path, record_property):
    """Our optimiser (L-BFGS-B over log-hyperparameters) stops where FLARE's own likelihood gradient vanishes."""
    case = "CuAu-zeta1"
    _, _, train = data["CuAu", "train"]
    params = params_for(case, optimise=True, max_iter=200, gtol=1e-6)
    pot = AceGPModel().fit(train, None, params, None)
    opt = pot.info["optimisation"]
    assert opt["performed"] and opt["converged"] and not opt["at_bound"], opt
    hyps = {k: pot.hyperparameters[k] for k in HYPS}
    # our jitter stays 1e-8/sigma0^2 on the unit-sigma K_uu: in FLARE's units that is jitter * sigma_opt^2
    flare = flare_predict(data, tmp_path, "CuAu", params, pot, hyps, kuu_jitter=params["jitter"] * hyps["sigma"] ** 2)
    g_log = np.array([flare["likelihood_gradient"][k] * hyps[k] for k in hyps])  # d log p / d log h
    lml_rel = abs(pot.info["log_marginal_likelihood"] - flare["log_marginal_likelihood"]) / abs(
        flare["log_marginal_likelihood"])
    report(record_property, f"optimum {case}", lml=lml_rel, max_abs_dlogp_dlogh=float(np.abs(g_log).max()))
    print("  hyperparameters", hyps, "\n  FLARE d log p / d log h at them", g_log)
    initial = {k: params[k] for k in hyps}
    assert hyps != initial
    assert lml_rel < LML_RTOL
    # |d log p / d log h| < 1e-2: a 1 % change of any hyperparameter moves log p by < 1e-4 (at the initial
    # hyperparameters the gradient is 1e2-1e6); our L-BFGS-B stops on scipy's relative-reduction test
    assert np.abs(g_log).max() < 1e-2


def _exact_lml(K0, S, B, YY, N, hyps, jitter):
    """FLARE's DTC log marginal likelihood in 60-digit decimal arithmetic, from float64 unit-sigma kernels:
    K0 (m, m) = K~_uu, and per label group g: S_g = K~_ug K~_gu, B_g = K~_ug y_g, YY_g = y_g.y_g, N_g labels.
    Kuu = sigma^2 K0 + jitter I (FLARE's absolute jitter), Lambda_g = s_g^2 I (Woodbury form)."""
    with localcontext() as ctx:
        ctx.prec = 60
        s2 = hyps[0] ** 2
        q = [1 / h**2 for h in hyps[1:]]
        m = len(K0)
        Kuu = [[s2 * K0[i][j] + (jitter if i == j else 0) for j in range(m)] for i in range(m)]
        A = [[Kuu[i][j] + s2 * s2 * sum(q[g] * S[g][i][j] for g in range(3)) for j in range(m)] for i in range(m)]
        b = [s2 * sum(q[g] * B[g][i] for g in range(3)) for i in range(m)]
        det_A, x = _decimal_solve(A, b)
        det_K, _ = _decimal_solve(Kuu, [Decimal(0)] * m)
        quad = sum(q[g] * YY[g] for g in range(3)) - sum(b[i] * x[i] for i in range(m))
        logdet = -sum(N[g] * q[g].ln() for g in range(3) if N[g]) + det_A.ln() - det_K.ln()
        two_pi = 2 * Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
        return -quad / 2 - logdet / 2 - Decimal(sum(N)) / 2 * two_pi.ln()


def _decimal_solve(A, b):
    """(det A, A^-1 b) by Gaussian elimination with partial pivoting."""
    m = len(A)
    A, b, det = [row[:] for row in A], b[:], Decimal(1)
    for c in range(m):
        p = max(range(c, m), key=lambda r: abs(A[r][c]))
        if p != c:
            A[c], A[p], b[c], b[p], det = A[p], A[c], b[p], b[c], -det
        det *= A[c][c]
        for r in range(c + 1, m):
            f = A[r][c] / A[c][c]
            for k in range(c, m):
                A[r][k] -= f * A[c][k]
            b[r] -= f * b[c]
    x = [Decimal(0)] * m
    for c in reversed(range(m)):
        x[c] = (b[c] - sum(A[c][k] * x[k] for k in range(c + 1, m))) / A[c][c]
    return det, x


def test_ill_conditioned_case_exact_reference(data, tmp_path, record_property):
    """Cu-zeta2 (cond(K_uu) ~ 1e9): the exact log p (60-digit arithmetic on our float64 kernels) adjudicates.
    Ours is at the conditioning limit (~4e-7 off; perturbing the float64 kernels by one ulp moves log p by ~5e-7);
    FLARE's log p is ~1.4e-4 off and its analytic gradient 1.3 % (d/dsigma) and 8 % (d/dsigma_e) off (central
    differences of our log p agree with the exact gradient to 4e-7): the complexity term
    -1/2 tr(Pi Sigma) of compute_likelihood_gradient_stable, which FLARE's source (sparse_gp.cpp l.834) itself
    flags as numerically unstable."""
    from mlffbench.models.acegp.sgp import SparseSet, label_kernels

    case = "Cu-zeta2"
    _, _, train = data["Cu", "train"]
    params = params_for(case)
    base = {k: params[k] for k in HYPS}
    pot = AceGPModel().fit(train, None, params, None)
    flare = flare_predict(data, tmp_path, "Cu", params, pot, base)

    sparse = SparseSet(pot.descriptor.dim, pot.zeta, params["jitter"])
    sparse.U, sparse.species, sparse.L = pot.sparse_U, pot.sparse_species, pot.L
    cols, ys = [[], [], []], [[], [], []]
    for atoms in train:
        k_e, k_f, k_s = label_kernels(pot.descriptor.environments(atoms, gradients=True), sparse)
        for g, (k, y) in enumerate([(k_e[:, None], [fr.label(atoms, "energy")]),
                                    (k_f, fr.label(atoms, "forces").ravel()), (k_s, fr.label(atoms, "stress"))]):
            cols[g].append(k)
            ys[g].append(np.asarray(y, dtype=float))
    with localcontext() as ctx:
        ctx.prec = 60
        dec = np.vectorize(lambda v: Decimal(float(v)), otypes=[object])
        K0 = dec((pot.sparse_U @ pot.sparse_U.T) ** pot.zeta).tolist()
        S, B, YY, N = [], [], [], []
        for g in range(3):
            Kg, yg = dec(np.hstack(cols[g])), dec(np.concatenate(ys[g]))
            S.append((Kg @ Kg.T).tolist())
            B.append(list(Kg @ yg))
            YY.append(sum(v * v for v in yg))
            N.append(len(yg))
        h = [Decimal(repr(base[k])) for k in HYPS]
        jitter = Decimal(repr(flare["settings"]["Kuu_jitter"]))
        exact = _exact_lml(K0, S, B, YY, N, h, jitter)
        eps = Decimal("1e-25")
        exact_grad = []
        for k in range(4):
            up, down = list(h), list(h)
            up[k], down[k] = h[k] * (1 + eps), h[k] * (1 - eps)
            exact_grad.append(float((_exact_lml(K0, S, B, YY, N, up, jitter)
                                     - _exact_lml(K0, S, B, YY, N, down, jitter)) / (2 * eps)))
        exact_grad = np.array(exact_grad)  # d log p / d log h, FLARE's convention (absolute jitter)
        ours_err = float(abs(Decimal(pot.info["log_marginal_likelihood"]) - exact))
        flare_err = float(abs(Decimal(flare["log_marginal_likelihood"]) - exact))
    g_flare = np.array([flare["likelihood_gradient"][k] * base[k] for k in HYPS])
    levels = dict(ours_lml_abs_err=ours_err, flare_lml_abs_err=flare_err,
                  flare_grad_rel_err=float(np.abs(g_flare - exact_grad).max() / np.abs(exact_grad).max()))
    report(record_property, f"exact reference {case}", **levels)
    print("  exact log p", float(exact), " ours", pot.info["log_marginal_likelihood"], " FLARE",
          flare["log_marginal_likelihood"], "\n  exact d log p / d log h", exact_grad, "\n  FLARE", g_flare)
    assert ours_err < 1e-8 * abs(float(exact))
    assert ours_err <= max(flare_err, 1e-9 * abs(float(exact)))
    assert np.all(np.isfinite(g_flare))


# --------------------------------------------------------------------------------------------- (c) selection

SELECT_SCRIPT = r"""
import json, sys
a = json.loads(sys.argv[1])
sys.path.insert(0, a["driver_dir"])
import flare_driver as fd
from flare.bffs.sgp import _C_flare
frames = fd.read_frames(a["train"])
calc = fd.b2_calculator(len(a["species"]), a["n_max"], a["l_max"], a["cutoff"])
kernel = _C_flare.NormalizedDotProduct(a["sigma"], a["power"])
sgp = _C_flare.SparseGP([kernel], 0.01, 0.05, 0.005)
keep = []
for k, atoms in enumerate(frames):
    struc = fd.make_structure(atoms, a["species"], a["cutoff"], [calc])
    keep.append(struc)
    if k == 0:
        sgp.add_specific_environments(struc, a["first"])
    else:
        sgp.add_uncertain_environments(struc, [a["n"]])  # FLARE's own max-variance rule
    sgp.update_matrices_QR()
print(json.dumps([[int(i) for i in s] for s in sgp.sparse_indices[0]]))
"""


@pytest.mark.parametrize("case", ["Cu-zeta2", "CuAu-zeta1"])
def test_max_variance_selection_matches_flare(data, case):
    system, (cutoff, n_max, l_max), power, per_frame, hyps, _ = PRED_CASES[case]
    species, train_path, train = data[system, "train"]
    pot = AceGPModel().fit(train, None, params_for(case), None)
    ours = [sorted(s) for s in pot.info["sparse_atoms"]]
    assert len({int(z) for z in train[0].numbers[ours[0]]}) == len(species)  # no species left for a tie later
    args = dict(driver_dir=str(DRIVER.parent), train=str(train_path), species=list(species), n_max=n_max,
                l_max=l_max, cutoff=cutoff, sigma=hyps["sigma"], power=power, n=per_frame, first=ours[0])
    flare = json.loads(run_flare("-c", SELECT_SCRIPT, json.dumps(args)).strip().splitlines()[-1])
    assert [sorted(s) for s in flare] == ours
