"""Standalone FLARE (mir-flare 1.4.0) driver for cross-checking mlffbench's ACE-descriptor sparse GP.

Runs under the FLARE environment's python (mlffbench env ``flare``, built by ``scripts/build_flare_env.sh``;
``mlffbench.models.flare_env.require_flare_python()``), NOT under mlffbench's: it imports only the standard
library, numpy, ase and flare. All inputs and outputs are files. ``--l-max`` above 10 is refused (FLARE's
spherical harmonics stop at l = 10).

    .venv/bin/mlffbench env build flare       # prints the env's python launcher as PY
    $PY src/mlffbench/models/flare_driver.py descriptors --frames IN.extxyz --cutoff 4.0 --n-max 4 \
        --l-max 3 --species 29 --kind B2 --out OUT.npz
    $PY src/mlffbench/models/flare_driver.py predict --train TRAIN.extxyz --test TEST.extxyz \
        --cutoff 4.0 --n-max 4 --l-max 3 --species 29 --kind B2 --power 2 --sigma 2.0 \
        --sigma-e 0.01 --sigma-f 0.05 --sigma-s 0.005 --sparse SPARSE.json --out OUT.json [--optimise]

``descriptors`` writes an ``.npz`` with, per frame i (order of IN.extxyz), ``desc_{i}`` (n_atoms, dim): the raw
(unnormalised) descriptor rows exactly as FLARE stores them, put back into the frame's atom order
(``Structure.descriptors[0].descriptors[s]`` holds the rows of the atoms of species s, in increasing atom
index; ``Structure.descriptors[0].atom_indices[s]`` gives their atom indices and is used to scatter them
back), plus ``norms_{i}`` (FLARE's descriptor_norms, same order), ``species_{i}`` (coded species = position
of the atom's Z in --species), ``n_neighbors_{i}`` (neighbours inside the cutoff), the component order
arrays described below and ``meta`` (a JSON string). ``predict`` writes a JSON file (see ``cmd_predict``).

Everything below was read from the mir-flare 1.4.0 sdist (src/flare_pp/..., line numbers of that sdist;
the GitHub master differs, e.g. it has b1.cpp, 1.4.0 has not).

Descriptors (``flare._C_flare.B2("chebyshev", "quadratic", [0, rc], [], [n_species, n_max, l_max])``)
------------------------------------------------------------------------------------------------------
* Neighbours (structure.cpp ``compute_neighbors`` l.52-118): all periodic images j of every atom with
  ``0 < |r_ij| < rc`` (strict), r_ij = r_j - r_i (neighbour minus centre; positions are first wrapped into
  the cell). The descriptor keeps ``r <= rc`` (b2.cpp l.277), so effectively r < rc. Caveat: the number of
  image shells is ceil(rc / h) with h = min of the 2-D heights a*sin(gamma), ... (structure.cpp l.135-165),
  not the true interplanar spacings, so strongly skewed cells with rc > spacing can miss neighbours; use
  orthorhombic cells (or cells with all spacings > rc) for cross-checks.
* Radial basis "chebyshev" (radial.cpp ``chebyshev`` l.138-169): x = (r - r1)/(r2 - r1) with
  [r1, r2] = [0, rc] (r2 is reset to the pair cutoff, b2.cpp l.352), so x = r/rc in [0, 1] (NOT mapped to
  [-1, 1]); g_0 = 1, g_1 = x, g_n = 2 x g_{n-1} - g_{n-2}, i.e. g_n(r) = T_n(r/rc), n = 0..n_max-1.
* Cutoff "quadratic" (cutoffs.cpp ``quadratic_cutoff`` l.44-56): f_c(r) = (r - rc)^2 for r <= rc, else 0
  (no normalisation: f_c(0) = rc^2). Radial function R_n(r) = g_n(r) f_c(r) (radial.cpp
  ``calculate_radial`` l.370-371).
* Spherical harmonics (y_grad.cpp ``get_Y`` l.667ff): REAL, orthonormal on the sphere (Y_00 = 1/(2 sqrt(pi))),
  no Condon-Shortley phase, index l*l + (m + l) for m = -l..l, m < 0 the sin(|m| phi) ("y") functions:
  l=1 -> [c y/r, c z/r, c x/r] with c = sqrt(3/(4 pi)).
* Atomic-basis (single-bond) coefficients (b2.cpp ``single_bond_multiple_cutoffs`` l.244-399):
  c[i, s*n_max*(l_max+1)^2 + n*(l_max+1)^2 + l*l + m+l] = sum over neighbours j of species s of
  R_n(r_ij) Y_lm(r_ij / r_ij). The centre atom is not included and its species does not enter the
  descriptor (it only selects the kernel block). Combined radial-species channel index: k = s*n_max + n.
* B2 (b2.cpp ``compute_b2`` l.181-242): with K = n_species*n_max channels, for k1 = 0..K-1, k2 = k1..K-1,
  l = 0..l_max (l fastest, then k2, then k1): d = sum_m c[k1, l, m] c[k2, l, m]; no (2l+1) or other factors.
  dim = K(K+1)/2 (l_max+1). The npz carries ``component_k1/k2/l`` and ``component_s1/n1/s2/n2`` in this order.
* B1: mir-flare 1.4.0 has no B1 class (b1.cpp only exists on FLARE master, where B1 = c[i, k*1] with
  l_max = 0, i.e. B1_k = sum_j g_n(r_ij) f_c(r_ij) Y_00, k = s*n_max + n). If ``_C_flare.B1`` exists it is used;
  otherwise B1 is recovered exactly from FLARE's own B2 with l_max = 0, whose entries are products
  c_k1 c_k2: c_ref = sqrt(d[ref, ref]) for the channel ref = s*n_max + 0 with the largest d (positive,
  because g_0 = 1, f_c > 0 and Y_00 > 0), and c_k = d[min(ref,k), max(ref,k)] / c_ref (exact to rounding;
  an atom without neighbours gets zeros). ``meta["b1_source"]`` says which path was taken. ``predict`` needs
  a real FLARE descriptor calculator and accepts only B2 on 1.4.0.

Sparse GP (``flare._C_flare.SparseGP([NormalizedDotProduct(sigma, zeta)], sigma_e, sigma_f, sigma_s)``)
------------------------------------------------------------------------------------------------------
FLARE calls used, in order (the same ones ``flare.bffs.sgp.SGP_Wrapper.update_db`` makes):
``Structure(cell, coded_species, positions, rc, [B2])``; set ``.energy`` (1x1), ``.forces`` (3N, atom-major
x,y,z), ``.stresses`` (6); ``SparseGP.add_training_structure(structure)``;
``SparseGP.add_specific_environments(structure, atom_indices)`` for the frames listed in SPARSE.json;
``SparseGP.update_matrices_QR()``; optionally ``flare.bffs.sgp.sparse_gp.optimize_hyperparameters(sgp,
method="L-BFGS-B", max_iterations=..., bounds=None)`` (FLARE's own routine: scipy L-BFGS-B with
gtol 1e-4 on ``compute_likelihood_gradient_stable`` after ``precompute_KnK``; it ends with
``set_hyperparameters``, which rebuilds Kuu/Kuf and calls ``update_matrices_QR``. Unbounded is FLARE's
default, so a noise hyperparameter can come back negative -- only squares enter the model;
``--positive-bounds`` bounds all four below by 1e-8); ``compute_likelihood_gradient_stable(False)`` for the
reported log marginal likelihood and its gradient; ``predict_SOR`` (mean + SOR variances) and
``predict_local_uncertainties`` for each test Structure. The C++ objects keep raw pointers to the kernel
and descriptor-calculator objects (pybind11 adds no keep-alive): Python must hold references to them for
as long as the SparseGP/Structures live, otherwise it segfaults.

* Kernel (normalized_dot_product.cpp ``envs_envs`` l.28-87, ``envs_struc`` l.116-211):
  k(d1, d2) = sigma^2 (d1.d2 / (|d1||d2|))^zeta, only between atoms of the SAME centre species; an atom whose
  descriptor norm is < 1e-8 contributes nothing. Local energies sum to the total energy: E = sum_i eps_i
  (column 0 of envs_struc is sum over atoms). Forces: F_n = -dE/dr_n (l.194-196). The kernel hyperparameter
  vector is [sigma, sigma_e, sigma_f, sigma_s] (sparse_gp.cpp constructor l.14-56).
* Noise (sparse_gp.cpp ``add_training_structure`` l.499-506, ``set_hyperparameters`` l.1158-1160): the
  noise vector holds PRECISIONS 1/sigma^2: 1/sigma_e^2 for the TOTAL energy of a structure (per structure,
  NOT scaled by the number of atoms), 1/sigma_f^2 for every force component, 1/sigma_s^2 for every
  stress component (rel_*_noise factors are 1 here). Energy labels are the raw total energies (no
  single-atom energies are subtracted, no mean is removed).
* Posterior (``update_matrices_QR`` l.597-631): L = chol(Kuu + jitter I) with Kuu_jitter = 1e-8 (constructor
  l.19); A = [Lambda^{-1/2} Kfu; L^T], QR of A; Sigma = (Kuu + jitter I + Kuf Lambda^{-1} Kfu)^{-1};
  alpha = Sigma Kuf Lambda^{-1} y; mean = K*u alpha (``predict_mean`` l.633-649).
* Log marginal likelihood (``compute_likelihood_gradient_stable`` l.755-780): the DTC/Titsias-without-trace
  form  log N(y | 0, Kfu Kuu^{-1} Kuf + Lambda) evaluated as
  -1/2 y^T Lambda^{-1} (y - Kfu alpha) - 1/2 [log|Lambda| - log|Kuu + jitter| + log|Kuu + jitter + Kuf
  Lambda^{-1} Kfu|] - n_labels/2 log(2 pi). (``compute_likelihood_stable`` gives the same but prints to
  stdout; ``compute_likelihood`` uses a QR of the full n_labels matrix.)
* Stress (normalized_dot_product.cpp l.198-203, otf.py l.644-656, sgp/calculator.py l.77-89): FLARE's
  stress is  sigma_FLARE[ab] = -(1/V) sum_pairs (d eps_i / d r_ij[a]) r_ij[b]  = -(ASE stress), in eV/A^3,
  component order (xx, xy, xz, yy, yz, zz). So ASE Voigt s = (xx, yy, zz, yz, xz, xy) is given to FLARE as
  -(s0, s5, s4, s1, s3, s2) and FLARE's prediction f is returned as -(f0, f3, f5, f4, f2, f1).
* Variances: ``predict_SOR`` (l.651-670) gives diag(K*u Sigma Ku*) for [E, F (3N), S (6)]; they are reported
  (stress variances reordered to ASE Voigt order, sign irrelevant). Local-energy variances
  (``predict_local_uncertainties`` l.703-723 -> ``compute_cluster_uncertainties`` l.93-133):
  v_i = k(d_i, d_i) - k_iu (Kuu + jitter I)^{-1} k_ui (Nystroem residual, no Sigma/noise term; = sigma^2 -
  ... for atoms with neighbours, 0 for isolated atoms), returned by FLARE grouped by species; reordered
  here to atom order via atom_indices (as flare's calculator ``sort_variances`` does).
* Sparse set: ``add_specific_environments`` (l.135-183) takes the given atom indices of one structure; the
  environments are stored grouped by species and, within a species, in increasing atom index (the order
  of the given list is not kept; duplicates would be added twice).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import numpy as np
from ase.io import read

import flare
from flare.bffs.sgp import _C_flare

RADIAL_BASIS = "chebyshev"
CUTOFF_FUNCTION = "quadratic"
#: y_grad.cpp get_Y hard-codes the real spherical harmonics up to l = 10; beyond that it returns zeros
L_MAX_LIMIT = 10


# --------------------------------------------------------------------------------------- helpers


def parse_species(text: str) -> list[int]:
    species = [int(z) for z in text.replace(" ", "").split(",") if z]
    if not species or len(set(species)) != len(species):
        raise SystemExit(f"flare_driver: --species must list distinct atomic numbers, got {text!r}")
    return species


def coded_species(atoms, species: list[int]) -> list[int]:
    index = {z: i for i, z in enumerate(species)}
    try:
        return [index[int(z)] for z in atoms.numbers]
    except KeyError as exc:
        raise SystemExit(f"flare_driver: atomic number {exc.args[0]} not in --species {species}") from None


def b2_calculator(n_species: int, n_max: int, l_max: int, cutoff: float):
    return _C_flare.B2(RADIAL_BASIS, CUTOFF_FUNCTION, [0.0, float(cutoff)], [], [n_species, n_max, l_max])


def make_structure(atoms, species, cutoff, calculators):
    return _C_flare.Structure(
        np.array(atoms.cell, dtype=float),
        coded_species(atoms, species),
        np.array(atoms.positions, dtype=float),
        float(cutoff),
        calculators,
    )


def per_atom(values_by_type, atom_indices_by_type, n_atoms: int, dim: int | None = None) -> np.ndarray:
    """Scatter FLARE's per-species blocks back into the frame's atom order."""
    shape = (n_atoms,) if dim is None else (n_atoms, dim)
    out = np.zeros(shape)
    seen = np.zeros(n_atoms, dtype=bool)
    for vals, idx in zip(values_by_type, atom_indices_by_type):
        idx = np.asarray(idx, dtype=int)
        if len(idx):
            out[idx] = np.asarray(vals)
            seen[idx] = True
    if not seen.all():
        raise RuntimeError("FLARE descriptor blocks do not cover every atom")
    return out


def b2_components(n_species: int, n_max: int, l_max: int) -> dict[str, np.ndarray]:
    """Component order of FLARE's B2 vector (b2.cpp compute_b2 loops k1, k2 >= k1, l)."""
    k_total = n_species * n_max
    rows = [(k1, k2, l) for k1 in range(k_total) for k2 in range(k1, k_total) for l in range(l_max + 1)]
    k1, k2, l = (np.array(c, dtype=int) for c in zip(*rows))
    return {
        "component_k1": k1, "component_k2": k2, "component_l": l,
        "component_s1": k1 // n_max, "component_n1": k1 % n_max,
        "component_s2": k2 // n_max, "component_n2": k2 % n_max,
    }


def b1_from_b2(b2: np.ndarray, n_species: int, n_max: int) -> np.ndarray:
    """Exact B1 (l = 0 single-bond coefficients) from FLARE's B2 computed with l_max = 0."""
    k_total = n_species * n_max

    def idx(a, b):
        a, b = min(a, b), max(a, b)
        return a * k_total - a * (a - 1) // 2 + (b - a)

    out = np.zeros((b2.shape[0], k_total))
    refs = [s * n_max for s in range(n_species)]
    for i, row in enumerate(b2):
        diag = np.array([row[idx(r, r)] for r in refs])
        ref = refs[int(np.argmax(diag))]
        c_ref_sq = row[idx(ref, ref)]
        if c_ref_sq <= 0.0:
            continue  # no neighbours: all coefficients are zero
        c_ref = np.sqrt(c_ref_sq)
        out[i] = [row[idx(ref, k)] / c_ref for k in range(k_total)]
    return out


def read_frames(path: str):
    frames = read(path, index=":")
    if not frames:
        raise SystemExit(f"flare_driver: no frames in {path}")
    return frames


# --------------------------------------------------------------------------------------- descriptors


def cmd_descriptors(args) -> None:
    species = parse_species(args.species)
    ns = len(species)
    frames = read_frames(args.frames)
    have_b1 = hasattr(_C_flare, "B1")
    if args.kind == "B2":
        calc = b2_calculator(ns, args.n_max, args.l_max, args.cutoff)
        b1_source = None
    elif have_b1:
        calc = _C_flare.B1(RADIAL_BASIS, CUTOFF_FUNCTION, [0.0, args.cutoff], [], [ns, args.n_max])
        b1_source = "flare._C_flare.B1"
    else:
        calc = b2_calculator(ns, args.n_max, 0, args.cutoff)
        b1_source = "derived from flare._C_flare.B2 with l_max=0 (mir-flare 1.4.0 has no B1)"

    out: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    for i, atoms in enumerate(frames):
        struc = make_structure(atoms, species, args.cutoff, [calc])
        dv = struc.descriptors[0]
        n = len(atoms)
        raw = per_atom(dv.descriptors, dv.atom_indices, n, dv.n_descriptors)
        norms = per_atom(dv.descriptor_norms, dv.atom_indices, n)
        nneigh = per_atom(dv.neighbor_counts, dv.atom_indices, n).astype(int)
        if args.kind == "B1" and not have_b1:
            raw = b1_from_b2(raw, ns, args.n_max)
            norms = np.linalg.norm(raw, axis=1)
        out[f"desc_{i}"] = raw
        out[f"norms_{i}"] = norms
        out[f"species_{i}"] = np.array(coded_species(atoms, species), dtype=int)
        out[f"n_neighbors_{i}"] = nneigh
    wall = time.perf_counter() - t0

    k_total = ns * args.n_max
    if args.kind == "B2":
        out.update(b2_components(ns, args.n_max, args.l_max))
        dim = k_total * (k_total + 1) // 2 * (args.l_max + 1)
    else:
        k = np.arange(k_total)
        out.update({"component_k": k, "component_s": k // args.n_max, "component_n": k % args.n_max})
        dim = k_total
    meta = {
        "flare_version": getattr(flare, "__version__", "?"),
        "kind": args.kind, "cutoff": args.cutoff, "n_max": args.n_max,
        "l_max": args.l_max if args.kind == "B2" else 0,
        "species": species, "radial_basis": RADIAL_BASIS, "cutoff_function": CUTOFF_FUNCTION,
        "radial_hyps": [0.0, args.cutoff], "cutoff_hyps": [], "dim": dim, "n_frames": len(frames),
        "b1_source": b1_source, "wall_s": wall,
        "row_order": "atom order of the frame (FLARE's per-species blocks scattered back via atom_indices)",
        "component_order": "B2: k1 in 0..K-1, k2 in k1..K-1, l in 0..l_max (l fastest), k = s*n_max + n; "
                           "B1: k = s*n_max + n",
    }
    out["meta"] = np.array(json.dumps(meta))
    np.savez(args.out, **out)


# --------------------------------------------------------------------------------------- predict


def ase_to_flare_stress(s) -> np.ndarray:
    """ASE Voigt (xx, yy, zz, yz, xz, xy), ASE sign -> FLARE (xx, xy, xz, yy, yz, zz), FLARE sign."""
    s = np.asarray(s, dtype=float)
    return -np.array([s[0], s[5], s[4], s[1], s[3], s[2]])


def flare_to_ase_stress(f) -> np.ndarray:
    f = np.asarray(f, dtype=float)
    return -np.array([f[0], f[3], f[5], f[4], f[2], f[1]])


def flare_to_ase_stress_variance(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return np.array([v[0], v[3], v[5], v[4], v[2], v[1]])


def labels(atoms):
    """(energy, forces, ASE Voigt stress) of a frame; None where the frame has no such label."""
    calc = atoms.calc
    results = getattr(calc, "results", {}) if calc is not None else {}
    energy = results.get("energy", results.get("free_energy"))
    forces = results.get("forces")
    stress = results.get("stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return energy, forces, stress


def load_sparse(path: str, n_train: int) -> dict[int, list[int]]:
    with open(path) as fh:
        raw = json.load(fh)
    sparse = {}
    for key, atoms in raw.items():
        i = int(key)
        if not 0 <= i < n_train:
            raise SystemExit(f"flare_driver: sparse frame index {i} outside the {n_train} training frames")
        sparse[i] = [int(a) for a in atoms]
    return sparse


def cmd_predict(args) -> None:
    if args.kind != "B2":
        if not hasattr(_C_flare, "B1"):
            raise SystemExit("flare_driver: predict --kind B1 needs flare._C_flare.B1, which mir-flare 1.4.0 "
                             "does not have; use --kind B2")
    species = parse_species(args.species)
    ns = len(species)
    train = read_frames(args.train)
    test = read_frames(args.test)
    sparse = load_sparse(args.sparse, len(train))
    if args.kind == "B2":
        calc = b2_calculator(ns, args.n_max, args.l_max, args.cutoff)
    else:
        calc = _C_flare.B1(RADIAL_BASIS, CUTOFF_FUNCTION, [0.0, args.cutoff], [], [ns, args.n_max])
    kernel = _C_flare.NormalizedDotProduct(args.sigma, args.power)
    sgp = _C_flare.SparseGP([kernel], args.sigma_e, args.sigma_f, args.sigma_s)
    if args.kuu_jitter is not None:
        sgp.Kuu_jitter = args.kuu_jitter
    times: dict[str, float] = {}

    def tick(name, t0):
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0

    n_labels = {"energy": 0, "forces": 0, "stress": 0}
    structures = []
    t0 = time.perf_counter()
    for atoms in train:
        struc = make_structure(atoms, species, args.cutoff, [calc])
        energy, forces, stress = labels(atoms)
        if energy is not None and not args.no_energy:
            struc.energy = np.array([[float(energy)]])
            n_labels["energy"] += 1
        if forces is not None and not args.no_forces:
            struc.forces = np.asarray(forces, dtype=float).reshape(-1)
            n_labels["forces"] += 3 * len(atoms)
        if stress is not None and not args.no_stress:
            struc.stresses = ase_to_flare_stress(stress)  # FLARE sign and order, eV/A^3
            n_labels["stress"] += 6
        structures.append(struc)
    tick("train_descriptors", t0)

    for i, struc in enumerate(structures):
        t0 = time.perf_counter()
        sgp.add_training_structure(struc)
        tick("add_training_structures", t0)
        if i in sparse and sparse[i]:
            t0 = time.perf_counter()
            sgp.add_specific_environments(struc, sparse[i])
            tick("add_sparse_environments", t0)

    t0 = time.perf_counter()
    sgp.update_matrices_QR()
    tick("update_matrices", t0)
    initial = np.array(sgp.hyperparameters, dtype=float)

    if args.optimise:
        from flare.bffs.sgp.sparse_gp import optimize_hyperparameters

        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # FLARE prints every iterate
            bounds = [(1e-8, None)] * 4 if args.positive_bounds else None  # FLARE's default is None
            optimize_hyperparameters(sgp, max_iterations=args.max_iterations, method="L-BFGS-B", bounds=bounds)
        tick("optimise", t0)

    t0 = time.perf_counter()
    lml = float(sgp.compute_likelihood_gradient_stable(False))
    grad = np.array(sgp.likelihood_gradient, dtype=float)
    tick("likelihood", t0)

    results = []
    for atoms in test:
        t0 = time.perf_counter()
        struc = make_structure(atoms, species, args.cutoff, [calc])
        tick("test_descriptors", t0)
        t0 = time.perf_counter()
        sgp.predict_SOR(struc)
        mean = np.array(struc.mean_efs, dtype=float)
        var = np.array(struc.variance_efs, dtype=float)
        sgp.predict_local_uncertainties(struc)
        dv = struc.descriptors[0]
        local_var = per_atom(_split_by_type(struc.local_uncertainties[0], dv.n_clusters_by_type),
                             dv.atom_indices, len(atoms))
        tick("predict", t0)
        n = len(atoms)
        results.append({
            "n_atoms": n,
            "energy": float(mean[0]),
            "forces": mean[1:1 + 3 * n].reshape(n, 3).tolist(),
            "stress": flare_to_ase_stress(mean[-6:]).tolist(),
            "energy_variance": float(var[0]),
            "forces_variance": var[1:1 + 3 * n].reshape(n, 3).tolist(),
            "stress_variance": flare_to_ase_stress_variance(var[-6:]).tolist(),
            "local_energy_variances": local_var.tolist(),
        })

    hyps = np.array(sgp.hyperparameters, dtype=float)
    out = {
        "flare_version": getattr(flare, "__version__", "?"),
        "settings": {
            "kind": args.kind, "cutoff": args.cutoff, "n_max": args.n_max, "l_max": args.l_max,
            "species": species, "radial_basis": RADIAL_BASIS, "cutoff_function": CUTOFF_FUNCTION,
            "power": args.power, "optimise": bool(args.optimise), "max_iterations": args.max_iterations,
            "positive_bounds": bool(args.positive_bounds),
            "Kuu_jitter": float(sgp.Kuu_jitter),
        },
        "conventions": {
            "energy_noise": "per structure on the total energy (precision 1/sigma_e^2), not scaled by n_atoms",
            "force_noise": "per force component (1/sigma_f^2)",
            "stress_noise": "per stress component (1/sigma_s^2), FLARE stress = -ASE stress",
            "stress_output": "ASE Voigt xx yy zz yz xz xy, ASE sign, eV/A^3",
            "variances": "SOR: diag(K*u Sigma Ku*); local: k_ii - k_iu (Kuu+jitter)^-1 k_ui",
        },
        "n_train": len(train), "n_test": len(test), "n_labels": n_labels,
        "n_sparse": int(sgp.n_sparse),
        "sparse_indices": [[list(map(int, s)) for s in per_kernel] for per_kernel in sgp.sparse_indices],
        "initial_hyperparameters": _hyp_dict(initial),
        "hyperparameters": _hyp_dict(hyps),
        "log_marginal_likelihood": lml,
        "likelihood_gradient": _hyp_dict(grad),
        "frames": results,
        "timings_s": times,
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)


def _hyp_dict(v) -> dict[str, float]:
    return {"sigma": float(v[0]), "sigma_e": float(v[1]), "sigma_f": float(v[2]), "sigma_s": float(v[3])}


def _split_by_type(values, counts) -> list[np.ndarray]:
    values = np.asarray(values, dtype=float)
    out, start = [], 0
    for c in counts:
        out.append(values[start:start + c])
        start += c
    return out


# --------------------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--cutoff", type=float, required=True, help="cutoff radius rc in Angstrom")
        p.add_argument("--n-max", type=int, required=True, help="number of radial functions per species")
        p.add_argument("--l-max", type=int, default=0, help="maximum angular momentum (B2)")
        p.add_argument("--species", required=True, help="comma-separated atomic numbers, e.g. 29 or 29,28")
        p.add_argument("--kind", choices=["B1", "B2"], default="B2")
        p.add_argument("--out", required=True)

    p = sub.add_parser("descriptors", help="FLARE's raw per-atom descriptors -> .npz")
    p.add_argument("--frames", required=True)
    common(p)
    p.set_defaults(func=cmd_descriptors)

    p = sub.add_parser("predict", help="FLARE sparse GP fit + predictions -> .json")
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    common(p)
    p.add_argument("--power", type=float, default=2.0, help="NormalizedDotProduct exponent zeta")
    p.add_argument("--sigma", type=float, required=True, help="signal std (kernel prefactor sigma^2)")
    p.add_argument("--sigma-e", type=float, required=True, help="energy noise std (eV, per structure)")
    p.add_argument("--sigma-f", type=float, required=True, help="force noise std (eV/A)")
    p.add_argument("--sigma-s", type=float, required=True, help="stress noise std (eV/A^3)")
    p.add_argument("--sparse", required=True, help='JSON {"frame_index": [atom indices], ...}')
    p.add_argument("--optimise", "--optimize", action="store_true",
                   help="optimise hyperparameters with FLARE's L-BFGS-B likelihood optimisation")
    p.add_argument("--max-iterations", type=int, default=10, help="L-BFGS-B iterations (FLARE default 10)")
    p.add_argument("--positive-bounds", action="store_true",
                   help="L-BFGS-B bounds (1e-8, inf) on all four hyperparameters (FLARE default: unbounded)")
    p.add_argument("--kuu-jitter", type=float, default=None, help="override FLARE's Kuu_jitter (1e-8)")
    p.add_argument("--no-energy", action="store_true", help="do not train on energies")
    p.add_argument("--no-forces", action="store_true", help="do not train on forces")
    p.add_argument("--no-stress", action="store_true", help="do not train on stresses")
    p.set_defaults(func=cmd_predict)

    args = parser.parse_args(argv)
    if args.n_max < 1 or args.l_max < 0 or args.cutoff <= 0:
        parser.error("need --n-max >= 1, --l-max >= 0, --cutoff > 0")
    if args.l_max > L_MAX_LIMIT:
        raise SystemExit(f"flare_driver: --l-max {args.l_max} > {L_MAX_LIMIT}: FLARE's spherical harmonics stop at "
                         f"l = {L_MAX_LIMIT} (higher l would silently give zero descriptor components)")
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
