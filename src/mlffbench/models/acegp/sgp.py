"""Sparse Gaussian process on local energies, trained on total energies, forces and stresses (FLARE's model).

Kernel between two atomic environments with descriptors d1, d2 (same central species, else 0):
    k(d1, d2) = sigma^2 (d1 . d2 / |d1| |d2|)^zeta.
The energy of a structure is the sum of local energies, forces and stresses are its derivatives, so every label's
covariance with a sparse environment u is a sum/derivative of k(d_i, u).

Training uses the projected-process (DTC) likelihood that FLARE maximises,
    log p(y) = log N(y | 0, K_fu K_uu^-1 K_uf + Lambda),
with Lambda diagonal: sigma_E^2, sigma_F^2, sigma_S^2 for energy, force and stress labels. It is computed from
m x m sufficient statistics only (m sparse environments): with K~ the unit-sigma kernels, K~_uu = L L^T,
V_g = L^-1 K~_uf,g for label group g,

    H_g = V_g V_g^T,  h_g = V_g y_g,  B = I + sigma^2 sum_g H_g / s_g^2,  w = sum_g h_g / s_g^2,
    log p = -1/2 sum_g y_g.y_g / s_g^2 + sigma^2/2 w^T B^-1 w - sum_g n_g log s_g - 1/2 log|B| - n/2 log 2pi.

B's eigenvalues are >= 1; it is factorised by QR of [I; sigma/s_g R_g] with R_g^T R_g = H_g (the role of FLARE's
QR of [Lambda^-1/2 K_fu; L^T]). The statistics accumulate frame by frame: memory is O(m^2), never O(m x labels),
and the likelihood and its analytic gradient cost O(m^3) per evaluation whatever the size of the training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np
from ase.stress import full_3x3_to_voigt_6_stress
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

from mlffbench.models.acegp.descriptors import Environments

GROUPS = ("energy", "forces", "stress")

#: How ``label_kernels`` gets u.dB/dr: "structured" contracts the sparse environments with the single-bond basis
#: per central species (``AceDescriptor.project_pairs``, B2 only), "dense" forms dB/dr (n_pairs x 3 x n_d) and
#: multiplies it by U (the previous path, and B1's). "auto": structured with several species, dense with one, where
#: the two cost the same flops (n_d ~ n_max (l_max+1)^2) and one big GEMM beats many small ones. Per 50-atom frame
#: at m = 1000, n_max 8, l_max 3 (1 thread): 1 species dense 80 ms / structured 155; 2 species 180 / 110; 4 species
#: 560 / 110. Same results to rounding (tests/test_acegp.py).
KERNEL_PATH = "auto"


def unit_rows(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows divided by their norm (rows of zeros, i.e. atoms without neighbours, stay zero) and the norms."""
    norms = np.linalg.norm(desc, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return desc / safe[:, None], norms


class SparseSet:
    """The sparse (inducing) environments: unit descriptors, central species and the Cholesky factor of K~_uu.

    ``raw_weight`` c > 0 adds an un-normalised dot-product term to the unit-sigma kernel (a deviation from
    FLARE/TM23, see ``model.py``): k~(x, u) = (x^.u^)^zeta + c (x.u / s^2)^raw_power, s = ``norm_scale`` (a typical
    descriptor norm, so c is dimensionless). The normalised term depends on descriptor directions only; the added
    term also sees the norms (the neighbour density), which the normalisation discards. ``norms`` holds |u|."""

    def __init__(self, dim: int, zeta: int, jitter: float, raw_weight: float = 0.0, raw_power: int = 1,
                 norm_scale: float = 1.0):
        self.zeta = zeta
        self.jitter = jitter
        self.raw_weight = float(raw_weight)
        self.raw_power = int(raw_power)
        self.norm_scale = float(norm_scale)
        self.U = np.zeros((0, dim))
        self.species = np.zeros(0, dtype=np.int64)
        self.norms = np.zeros(0)
        self.L = np.zeros((0, 0))
        self._pair_weights = None

    def __len__(self) -> int:
        return len(self.U)

    def _raw(self, cos: np.ndarray, norms_a, norms_b) -> np.ndarray:
        """t = x.u / s^2 from cosines (a, b) and the norms of both sides."""
        s2 = self.norm_scale**2
        return cos * np.asarray(norms_a)[:, None] * np.asarray(norms_b)[None, :] / s2

    def kernel(self, xhat: np.ndarray, species: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
        """Unit-sigma kernel (n, m) between environments (unit rows, their norms) and the sparse set."""
        cos = xhat @ self.U.T
        k = cos**self.zeta
        if self.raw_weight:
            k = k + self.raw_weight * self._raw(cos, _need(norms), self.norms) ** self.raw_power
        return np.where(species[:, None] == self.species[None, :], k, 0.0)

    def self_kernel(self, xhat: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
        """k~(x, x): 1 (0 for an atom without neighbours) + c (|x|^2/s^2)^raw_power."""
        k = (np.linalg.norm(xhat, axis=1) > 0).astype(float)
        if self.raw_weight:
            k = k + self.raw_weight * (_need(norms) ** 2 / self.norm_scale**2) ** self.raw_power
        return k

    def pair_weights(self, descriptor) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per central species s with sparse environments: (s, their rows, ``descriptor.pair_weights`` of them),
        cached until the set changes."""
        cached = self._pair_weights
        if cached is None or cached[0] is not self.U or cached[1] != descriptor:
            blocks = []
            for s in np.unique(self.species):
                rows = np.flatnonzero(self.species == s)
                blocks.append((int(s), rows, descriptor.pair_weights(self.U[rows])))
            self._pair_weights = cached = (self.U, descriptor, blocks)
        return cached[2]

    def whiten(self, k_um: np.ndarray) -> np.ndarray:
        """L^-1 K~_u* for a kernel block (m, k)."""
        return solve_triangular(self.L, k_um, lower=True, check_finite=False)

    @classmethod
    def of(cls, U: np.ndarray, species: np.ndarray, L: np.ndarray, zeta: int, raw: dict | None = None) -> "SparseSet":
        """A fitted sparse set from its arrays (no jitter needed: nothing is added to it); ``raw`` as
        ``AceGPPotential.raw``."""
        raw = raw or {}
        sparse = cls(U.shape[1], zeta, 0.0, raw.get("weight", 0.0), raw.get("power", 1), raw.get("norm_scale", 1.0))
        sparse.U, sparse.species, sparse.L = U, species, L
        sparse.norms = raw.get("sparse_norms", np.zeros(len(U)))
        return sparse

    def projection(self, xhat: np.ndarray, species: np.ndarray,
                   norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k~(x, x) and v = L^-1 k~_ux (m, n)."""
        return self.self_kernel(xhat, norms), self.whiten(self.kernel(xhat, species, norms).T)

    def residual_variance(self, xhat: np.ndarray, species: np.ndarray, norms: np.ndarray | None = None) -> np.ndarray:
        """k~(x, x) - k~_xu K~_uu^-1 k~_ux: FLARE's local uncertainty (unit sigma), used to pick sparse points."""
        if len(self) == 0:
            return self.self_kernel(xhat, norms)
        self_k, v = self.projection(xhat, species, norms)
        return self_k - np.einsum("mn,mn->n", v, v)

    def add(self, xhat: np.ndarray, species: np.ndarray, norms: np.ndarray | None = None) -> None:
        """Append environments, extending the Cholesky factor by one block (no refactorisation)."""
        if len(xhat) == 0:
            return
        m = len(self)
        if norms is None:
            norms = _need(norms) if self.raw_weight else np.zeros(len(xhat))  # only the raw term reads them
        k_nn = (xhat @ xhat.T) ** self.zeta
        if self.raw_weight:
            k_nn = k_nn + self.raw_weight * self._raw(xhat @ xhat.T, norms, norms) ** self.raw_power
        k_nn = np.where(species[:, None] == species[None, :], k_nn, 0.0)
        k_nn += self.jitter * np.eye(len(xhat))
        L = np.zeros((m + len(xhat), m + len(xhat)))
        L[:m, :m] = self.L
        if m:
            L21 = self.whiten(self.kernel(xhat, species, norms).T).T
            L[m:, :m] = L21
            k_nn = k_nn - L21 @ L21.T
        L[m:, m:] = cholesky(k_nn, lower=True, check_finite=False)
        self._pair_weights = None
        self.U = np.vstack([self.U, xhat])
        self.species = np.concatenate([self.species, species])
        self.norms = np.concatenate([self.norms, norms])
        self.L = L


def _need(norms):
    if norms is None:
        raise ValueError("descriptor norms are needed by a kernel with raw_weight > 0")
    return norms


def kernel_environments(descriptor, atoms) -> Environments:
    """The environments ``label_kernels`` needs for ``atoms``: the single-bond basis or dB/dr (``KERNEL_PATH``)."""
    structured = KERNEL_PATH == "structured" or (KERNEL_PATH == "auto" and descriptor.n_species > 1)
    if structured and descriptor.kind == "B2":
        return descriptor.environments(atoms, bonds=True)
    return descriptor.environments(atoms, gradients=True)


def label_kernels(env: Environments, sparse: SparseSet, max_block: int = 4_000_000):
    """Unit-sigma covariances (m, .) between the sparse set and the structure's energy, forces (3n), stress (6).

    ``env`` from ``kernel_environments`` (or ``environments`` with gradients or bonds): with the single-bond basis
    (``env.bonds``) u.dB/dr comes from ``AceDescriptor.project_pairs`` per central species, else from dB/dr."""
    zeta = sparse.zeta
    m = len(sparse)
    xhat, norms = unit_rows(env.desc)
    same = env.species[None, :] == sparse.species[:, None]
    cos = np.where(same, sparse.U @ xhat.T, 0.0)  # (m, n)
    k_energy = (cos**zeta).sum(axis=1)
    raw_grad = np.zeros((m, env.n_atoms))  # d(raw term)/d(u^.dB): zero without it
    if sparse.raw_weight:  # c t^p, t = x.u/s^2 = |x||u| cos/s^2; dt/dr = |u| (u^.dB/dr)/s^2
        c, p = sparse.raw_weight, sparse.raw_power
        t = np.where(same, sparse._raw(cos, sparse.norms, norms), 0.0)
        k_energy = k_energy + c * (t**p).sum(axis=1)
        raw_grad = c * p * t ** (p - 1) * (sparse.norms / sparse.norm_scale**2)[:, None]
        raw_grad = np.where(same, raw_grad, 0.0)
    inv_norm = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    n = env.n_atoms
    k_forces = np.zeros((m, n, 3))
    virial = np.zeros((m, 3, 3))
    if env.bonds is not None and env.descriptor is not None and env.descriptor.kind == "B2":
        d = env.descriptor
        radial = d.pair_gradient(env, xhat)  # x^_i . dB_i/dr_q
        for s, rows, W in sparse.pair_weights(d):
            k_f, vir = np.zeros((len(rows), n, 3)), np.zeros((len(rows), 3, 3))
            cos_s, same_s, raw_s = cos[rows], same[rows], raw_grad[rows]
            for q, proj in d.project_pairs(env, W, s):
                _scatter_pair_kernels(proj, radial[q], cos_s, inv_norm, same_s, raw_s, env.i[q], env.j[q],
                                      env.rij[q], zeta, k_f, vir)
            k_forces[rows] = k_f
            virial[rows] = vir
    else:
        n_pairs = len(env.i)
        step = max(1, max_block // max(1, 3 * m))
        for q0 in range(0, n_pairs, step):
            q1 = min(n_pairs, q0 + step)
            dd = env.ddesc[q0:q1]  # (P, 3, D)
            ii = env.i[q0:q1]
            proj = (sparse.U @ dd.reshape(-1, dd.shape[2]).T).reshape(m, q1 - q0, 3)
            radial = np.einsum("pad,pd->pa", dd, xhat[ii])
            _scatter_pair_kernels(proj, radial, cos, inv_norm, same, raw_grad, ii, env.j[q0:q1], env.rij[q0:q1],
                                  zeta, k_forces, virial)
    k_forces = k_forces.reshape(m, 3 * n)
    k_stress = full_3x3_to_voigt_6_stress(virial / env.volume) if env.volume > 0 else np.zeros((m, 6))
    return k_energy, k_forces, k_stress


@nb.njit(cache=True, parallel=True)
def _scatter_pair_kernels(proj, radial, cos, inv_norm, same, raw_grad, ii, jj, rij, zeta, k_forces, virial):
    """T[u, q] = dk(d_i, u)/dr_ij = zeta c^(zeta-1) (u.dd_q - c (x^_i.dd_q)) / |d_i| + raw_grad[u, i] u^.dd_q,
    c = x^_i.u; then F_i += T, F_j -= T and virial += T r_ij^T, all without (m, pairs) temporaries. Parallel over
    sparse points."""
    m = proj.shape[0]
    for u in nb.prange(m):
        for q in range(proj.shape[1]):
            i = ii[q]
            if not same[u, i]:
                continue
            c = cos[u, i]
            fac = inv_norm[i] * (zeta * c ** (zeta - 1) if zeta > 1 else 1.0)
            g = raw_grad[u, i]
            for a in range(3):
                t = fac * (proj[u, q, a] - c * radial[q, a]) + g * proj[u, q, a]
                k_forces[u, i, a] += t
                k_forces[u, jj[q], a] -= t
                for b in range(3):
                    virial[u, a, b] += t * rij[q, b]


@dataclass
class Statistics:
    """Sufficient statistics of the training labels for a fixed sparse set (see module docstring).

    H_g is kept as an upper-triangular factor R_g (R_g^T R_g = H_g), built by streaming QR (TSQR) of the whitened
    kernel rows, so that B is factorised by QR too and never formed: the likelihood stays exact to rounding even
    for huge signal-to-noise ratios or a rank-deficient K_uu (e.g. B1, zeta 1), the regime where forming
    I + sigma^2/s^2 V V^T in floating point invents data fit that is not there."""

    m: int
    R: np.ndarray = field(init=False)
    h: np.ndarray = field(init=False)
    yy: np.ndarray = field(init=False)
    n: np.ndarray = field(init=False)
    kmax: np.ndarray = field(init=False)

    def __post_init__(self):
        self.kmax = np.zeros(3)
        self.R = np.zeros((3, self.m, self.m))
        self.h = np.zeros((3, self.m))
        self.yy = np.zeros(3)
        self.n = np.zeros(3, dtype=np.int64)
        self._pending: list[list[np.ndarray]] = [[], [], []]

    def add(self, group: int, V: np.ndarray, y: np.ndarray, kmax: float = 0.0) -> None:
        """Add whitened kernel columns V (m, k) = L^-1 K~_u,labels, their labels y (k,) and max |K~| (unwhitened)."""
        if len(y) == 0:
            return
        self.kmax[group] = max(self.kmax[group], kmax)
        self._pending[group].append(V.T)
        self.h[group] += V @ y
        self.yy[group] += float(y @ y)
        self.n[group] += len(y)
        if sum(len(b) for b in self._pending[group]) >= 4 * self.m:
            self._fold(group)

    def _fold(self, group: int) -> None:
        if self._pending[group]:
            self.R[group] = _triangular(np.vstack([self.R[group], *self._pending[group]]))
            self._pending[group] = []

    def finish(self) -> "Statistics":
        for g in range(3):
            self._fold(g)
        return self


def _triangular(A: np.ndarray) -> np.ndarray:
    """R of A = QR, with a non-negative diagonal."""
    R = np.linalg.qr(A, mode="r")
    sign = np.where(np.diag(R) < 0, -1.0, 1.0)
    return R * sign[:, None]


def log_marginal_likelihood(x: np.ndarray, stats: Statistics, active: np.ndarray):
    """(log p, d log p / dx, upper factor R_B of B, u = B^-1 w) at x = log(sigma, s_E, s_F, s_S)."""
    p = math.exp(2 * x[0])
    q = np.exp(-2 * x[1:])
    m = stats.m
    blocks = [np.eye(m)]
    w = np.zeros(m)
    for g in range(3):
        if active[g]:
            blocks.append(math.sqrt(p * q[g]) * stats.R[g])
            w += q[g] * stats.h[g]
    R_B = _triangular(np.vstack(blocks))  # R_B^T R_B = B; diag >= 1
    u = cho_solve((R_B, False), w, check_finite=False)
    logdet = 2.0 * np.log(np.diag(R_B)).sum()
    n_total = int(stats.n[active].sum())
    lml = (-0.5 * float((q * stats.yy)[active].sum()) + 0.5 * p * float(w @ u)
           + 0.5 * float((stats.n * np.log(q))[active].sum()) - 0.5 * logdet - 0.5 * n_total * math.log(2 * math.pi))
    R_inv = solve_triangular(R_B, np.eye(m), lower=False, check_finite=False)  # B^-1 = R_inv R_inv^T
    grad = np.zeros(4)
    grad[0] = 2 * p * (0.5 * float(u @ u) - 0.5 * (m - float(np.sum(R_inv * R_inv))) / p)
    for g in range(3):
        if not active[g]:
            continue
        Ru = stats.R[g] @ u
        trace = float(np.sum((stats.R[g] @ R_inv) ** 2))  # tr(B^-1 H_g)
        d_q = (-0.5 * stats.yy[g] + p * float(stats.h[g] @ u) - 0.5 * p * p * float(Ru @ Ru)
               + 0.5 * stats.n[g] / q[g] - 0.5 * p * trace)
        grad[g + 1] = -2 * q[g] * d_q
    return lml, grad, R_B, u


#: L-BFGS-B works over z = (log sigma, log(sigma/s_E), log(sigma/s_F), log(sigma/s_S)). Each signal-to-noise
#: ratio is capped where rounding starts to look like data: whitened kernel values carry an absolute rounding
#: error ~ eps |K~_g| / min diag(L); once (sigma/s_g) times that error reaches ~0.1 the likelihood can "fit" labels
#: with numerical noise (seen with near-duplicate sparse environments in a rattled perfect crystal, where the line
#: search then runs to sigma_S -> 0). No physically meaningful optimum lies beyond the cap; reaching it is
#: reported (``at_bound``).
#: sigma (eV, the prior scale of a local energy) is capped at 1e4: with few sparse environments and many labels
#: the likelihood keeps rising towards the unregularised least-squares limit sigma -> inf; on mlearn Cu with one
#: sparse environment per frame (m = 262) it ran to sigma = 4e5 and dropped the energies (sigma_E -> 28 eV/atom,
#: test energy MAE 0.6 eV/atom), while at sigma <= 1e4 energies stay at 3.5-4.3 meV/atom.
SIGMA_BOUNDS = (1e-4, 1e4)
RATIO_FLOOR = 1e-6
ROUNDING_MARGIN = 0.1


def log_ratio_caps(stats: Statistics, L: np.ndarray) -> np.ndarray:
    """log of the cap on sigma/s_g per label group: ROUNDING_MARGIN / (eps |K~_g| / min diag(L)).

    Computed in logs: a group without labels (or with an all-zero kernel) has kmax 0 and no cap (+inf). (The linear
    form with kmax clamped to 1e-300 overflowed, 0.1 / (eps 1e-300) > 1.8e308, and warned on every fit without
    stress labels.)"""
    amplification = 1.0 / max(float(np.min(np.diag(L))), 1e-300) if len(L) else 1.0
    eps = np.finfo(float).eps
    kmax = np.asarray(stats.kmax, dtype=float)
    out = np.full(kmax.shape, np.inf)
    has = kmax > 0
    with np.errstate(over="ignore"):  # a cap beyond float range is no cap: its log is +inf as for an empty group
        # the same arithmetic as the linear caps before (bit-identical bounds, so fits stay bit-identical)
        out[has] = np.log(ROUNDING_MARGIN / (eps * kmax[has] * amplification))
    return out


def optimise_hyperparameters(x0: np.ndarray, stats: Statistics, active: np.ndarray, max_iter: int, gtol: float,
                             L: np.ndarray, fix_energy_noise: bool = False, held=(False, False, False)):
    """Maximise the log marginal likelihood with L-BFGS-B (inactive noises stay fixed); returns (x, result).

    ``fix_energy_noise`` / ``held`` (per group E, F, S): those noises stay at exp(x0[g + 1]) themselves (not their
    ratio to sigma) while the others are free. ``result.collapsed``: the groups whose signal-to-noise ratio ran to
    the rounding cap while another group's ran to the floor, the degenerate optimum that interpolates one label
    group (fewer labels than sparse environments, e.g. 6 stress components per frame) and drops another."""
    held = np.array(held, dtype=bool) | np.array([fix_energy_noise, False, False])
    held &= np.asarray(active, dtype=bool)
    free = np.concatenate([[True], active & ~held])
    log_caps = log_ratio_caps(stats, L)
    bounds = np.array([np.log(SIGMA_BOUNDS)] + [[math.log(RATIO_FLOOR), c] for c in log_caps])[free]

    def to_x(z):
        x = np.concatenate([[z[0]], z[0] - z[1:]])
        x[1:][held] = x0[1:][held]
        return x

    def objective(zf):
        z = z_init.copy()
        z[free] = zf
        lml, grad, _, _ = log_marginal_likelihood(to_x(z), stats, active)
        gz = np.concatenate([[grad[0] + grad[1:][free[1:]].sum()], -grad[1:]])
        return -lml, -gz[free]

    z_init = np.concatenate([[x0[0]], x0[0] - x0[1:]])
    res = minimize(objective, np.clip(z_init[free], bounds[:, 0], bounds[:, 1]), jac=True, method="L-BFGS-B",
                   bounds=bounds, options={"gtol": gtol, "maxiter": max_iter})
    z = z_init.copy()
    z[free] = res.x
    res.at_bound = bool(np.any(np.isclose(res.x, bounds[:, 0]) | np.isclose(res.x, bounds[:, 1])))
    ratios = z[1:]
    at_cap = free[1:] & np.isclose(ratios, np.where(np.isfinite(log_caps), log_caps, np.inf))
    at_floor = free[1:] & np.isclose(ratios, math.log(RATIO_FLOOR))
    res.collapsed = [GROUPS[g] for g in np.flatnonzero(at_cap)] if at_floor.any() else []
    return to_x(z), res
