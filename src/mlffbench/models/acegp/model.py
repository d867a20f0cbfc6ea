"""The ``acegp`` model family: ACE B1/B2 descriptors + sparse GP (FLARE's model, TM23 Methods IV.C.1).

Params (config keys under ``models[].params``; defaults in ``DEFAULTS``):
  descriptor B1|B2, cutoff (Å), n_max, l_max (B1: 0), power (zeta, 1 or 2),
  sigma, sigma_e, sigma_f, sigma_s: initial hyperparameters (TM23: 2.0, 0.001 eV/atom, 0.05 eV/Å, 0.005 eV/Å^3),
  energy_noise: per_atom (sigma_e applies to E/N, TM23's unit) | per_structure (FLARE's convention: total E),
  optimise, max_iter, gtol: L-BFGS-B on the log marginal likelihood (TM23: gtol 1e-4, 200 iterations),
  sigma_e_choice: ml (TM23: all four hyperparameters by maximum likelihood) | fixed (sigma_E held at its initial
  value, the other three by maximum likelihood) | validation (after the ML fit, sigma_E re-chosen on a grid to
  minimise the energy MAE of a seeded validation_fraction of the TRAINING frames, predicted by a model built on
  the rest, among grid values whose validation MAEs of the groups in validation_keep (subset of [forces, stress])
  stay within validation_tolerance (relative) of those at the ML sigma_E; see ``choose_sigma_e``) | validation_ml
  (the same held-out choice, but at each grid sigma_E the other three hyperparameters are re-maximised by
  likelihood, as in fixed, on the sub-fit and then on the full set: lets sigma_S relax when tight energies and the
  stress labels disagree, which on mlearn they do: with energies held to 0.1 meV/atom the Cu normal-stress errors
  become a uniform -2.8 GPa offset). Why: with many force labels and few energies the ML sigma_E is large (~15
  meV/atom on mlearn Cu; surface cells then sit 60-90 meV/atom off) and test energies are 5-10x worse than with
  sigma_E = 1 meV/atom.
  sparse_method max_variance|random|cur, sparse_per_frame (TM23: 1; Table S3 tries 1-3),
  train_on: subset of [energy, forces, stress], energy_shift: auto (default: composition when the training frames
  hold several species, else none) | none (FLARE) | composition (per-species least-squares constant removed
  before training and added back: without it a GP on multi-species DFT totals, e.g. -9391 eV per acetylacetone,
  fits the totals as noise), jitter (on unit-sigma K_uu), seed,
  preset: tm23 takes cutoff/n_max/l_max of the training metal from TM23 Tables S14-S17 (explicit keys win),
  raw_dot_weight c (default 0 = FLARE/TM23), raw_dot_power p (1 or 2): NOT FLARE/TM23. For c > 0 the kernel is
  k = sigma^2 [(d1^.d2^)^zeta + c (d1.d2 / s^2)^p], s the mean training descriptor norm: the normalised dot product
  sees only descriptor directions and discards the norm (the neighbour density), which on mlearn Cu leaves a volume
  trend in the energies of strained bulk cells; the un-normalised term (p 1: linear in the raw B2, as SNAP is
  linear in the bispectrum) restores it. Forces and stress stay exact derivatives. Measured on the mlearn sets
  (benchmarks/README.md): c 10, p 1 with sigma_e_choice validation_ml reaches the Zuo SNAP energies on Cu, Ni, Li
  and Mo with lower force MAEs than the FLARE kernel.

Deviation from FLARE, stated in ``Potential.info['deviations']``: hyperparameters are optimised over their
logarithms (keeps them positive; same optimum); frames are processed in one batch after selecting the sparse set
with FLARE's variance rule rather than in FLARE's on-the-fly loop with periodic re-optimisation; with
raw_dot_weight > 0 also the kernel (``RAW_DEVIATION``).
"""

from __future__ import annotations

import numbers

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from scipy.linalg import solve_triangular

from mlffbench import frames as fr
from mlffbench.errors import ConfigError, DataError
from mlffbench.models.acegp.descriptors import KINDS, AceDescriptor
from mlffbench.models.acegp.selection import METHODS, select
from mlffbench.models.acegp.tm23_params import tm23_best
from mlffbench.models.acegp.sgp import (
    GROUPS,
    SparseSet,
    Statistics,
    kernel_environments,
    label_kernels,
    log_marginal_likelihood,
    optimise_hyperparameters,
    unit_rows,
)
from mlffbench.models.base import Model, Potential, decode_array, encode_array

DEFAULTS: dict[str, Any] = {
    "descriptor": "B2",
    "cutoff": 5.0,
    "n_max": 8,
    "l_max": 3,
    "power": 2,
    "sigma": 2.0,
    "sigma_e": 0.001,
    "sigma_f": 0.05,
    "sigma_s": 0.005,
    "energy_noise": "per_atom",
    "optimise": True,
    "max_iter": 200,
    "gtol": 1e-4,
    "sigma_e_choice": "ml",
    "validation_fraction": 0.1,
    "validation_tolerance": 0.02,
    "validation_keep": ["forces"],
    "sparse_method": "max_variance",
    "sparse_per_frame": 1,
    "train_on": ["energy", "forces", "stress"],
    "energy_shift": "auto",
    "jitter": 1e-8,
    "seed": 0,
    "species": None,
    "preset": None,
    "raw_dot_weight": 0.0,
    "raw_dot_power": 1,
}

SIGMA_E_CHOICES = ("ml", "fixed", "validation", "validation_ml")
#: sigma_E candidates (eV/atom, or eV with energy_noise per_structure) for sigma_e_choice validation.
SIGMA_E_GRID = np.logspace(-5, -1.5, 15)

DEVIATIONS = (
    "hyperparameters optimised over log(sigma, sigma_E, sigma_F, sigma_S) (FLARE: raw values)",
    "sparse set chosen by FLARE's variance rule in one pass, then one batch fit (FLARE: on-the-fly loop)",
)
SHIFT_DEVIATION = ("energies referenced per species by least squares on the training set before the GP fit "
                   "(energy_shift composition; FLARE/TM23: none)")
COLLAPSE_NOTE = ("the likelihood ran to a degenerate optimum (these labels interpolated to the rounding cap while "
                 "another group was dropped, as with more sparse environments than labels of a group); their noises "
                 "are held at the initial values and the rest re-optimised")
RAW_DEVIATION = ("kernel adds raw_dot_weight * (d1.d2 / s^2)^raw_dot_power (un-normalised descriptors) to FLARE's "
                 "normalised dot product (FLARE/TM23: normalised term only)")


def resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Defaults + user params, each checked; an unknown key or bad value is a ConfigError naming it."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"acegp: unknown param(s) {sorted(unknown)} (known: {sorted(DEFAULTS)})")
    p = {**DEFAULTS, **params}
    if p["descriptor"] == "B1":
        p["l_max"] = 0 if "l_max" not in params else p["l_max"]
    for key in ("cutoff", "sigma", "sigma_e", "sigma_f", "sigma_s", "gtol", "jitter"):
        if not isinstance(p[key], (int, float)) or not p[key] > 0:
            raise ConfigError(f"acegp: params.{key} must be a positive number, not {p[key]!r}")
    for key in ("n_max", "l_max", "power", "max_iter", "sparse_per_frame", "seed"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 0:
            raise ConfigError(f"acegp: params.{key} must be a non-negative integer, not {p[key]!r}")
    if p["power"] < 1:
        raise ConfigError("acegp: params.power must be >= 1")
    if p["energy_noise"] not in ("per_atom", "per_structure"):
        raise ConfigError(f"acegp: params.energy_noise must be per_atom or per_structure, not {p['energy_noise']!r}")
    if p["sigma_e_choice"] not in SIGMA_E_CHOICES:
        raise ConfigError(f"acegp: params.sigma_e_choice must be one of {SIGMA_E_CHOICES}, not {p['sigma_e_choice']!r}")
    if not isinstance(p["raw_dot_weight"], (int, float)) or isinstance(p["raw_dot_weight"], bool) \
            or not 0 <= p["raw_dot_weight"] < float("inf"):
        raise ConfigError(f"acegp: params.raw_dot_weight must be a finite number >= 0, not {p['raw_dot_weight']!r}")
    if p["raw_dot_power"] not in (1, 2) or isinstance(p["raw_dot_power"], bool):
        raise ConfigError(f"acegp: params.raw_dot_power must be 1 or 2, not {p['raw_dot_power']!r}")
    for key in ("validation_fraction", "validation_tolerance"):
        if not isinstance(p[key], (int, float)) or isinstance(p[key], bool) or not 0 <= p[key] < 1:
            raise ConfigError(f"acegp: params.{key} must be a number in [0, 1), not {p[key]!r}")
    if not isinstance(p["validation_keep"], (list, tuple)) or set(p["validation_keep"]) - {"forces", "stress"}:
        raise ConfigError(f"acegp: params.validation_keep must be a subset of [forces, stress], not "
                          f"{p['validation_keep']!r}")
    if p["descriptor"] not in KINDS:
        raise ConfigError(f"acegp: params.descriptor must be one of {list(KINDS)}, not {p['descriptor']!r}")
    if p["sparse_method"] not in METHODS:
        raise ConfigError(f"acegp: params.sparse_method must be one of {list(METHODS)}, not {p['sparse_method']!r}")
    species = p["species"]
    if species is not None and (not isinstance(species, (list, tuple)) or not species or any(
            isinstance(z, bool) or not isinstance(z, numbers.Integral) or not 0 < z < len(chemical_symbols)
            for z in species)):
        raise ConfigError(f"acegp: params.species must be a list of atomic numbers, not {species!r}")
    if p["preset"] not in (None, "tm23"):
        raise ConfigError(f"acegp: params.preset must be tm23 or absent, not {p['preset']!r}")
    if p["energy_shift"] not in ("auto", "none", "composition"):
        raise ConfigError(f"acegp: params.energy_shift must be auto, none or composition, not {p['energy_shift']!r}")
    bad = set(p["train_on"]) - set(GROUPS)
    if bad or not p["train_on"]:
        raise ConfigError(f"acegp: params.train_on must be a non-empty subset of {list(GROUPS)}, not {p['train_on']!r}")
    return p


class AceGPPotential(Potential):
    """Trained ACE sparse GP: E = sum_i e(d_i), e(d) = sum_u alpha_u k~(d, u) (+ optional per-species shift).

    ``raw`` (only with params.raw_dot_weight > 0): {"weight": c, "power": p, "norm_scale": s, "sparse_norms": |u|}
    of the added un-normalised term c (d.u / s^2)^p of k~ (see ``sgp.SparseSet``)."""

    family = "acegp"

    def __init__(self, descriptor: AceDescriptor, zeta: int, hyperparameters: dict, sparse_U: np.ndarray,
                 sparse_species: np.ndarray, alpha: np.ndarray, L: np.ndarray, R_B: np.ndarray,
                 shift: np.ndarray, info: dict | None = None, raw: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.raw = raw if raw and raw.get("weight", 0.0) > 0 else None
        self.descriptor = descriptor
        self.zeta = zeta
        self.hyperparameters = dict(hyperparameters)
        self.sparse_U = sparse_U
        self.sparse_species = sparse_species
        self.alpha = alpha
        self.L = L
        self.R_B = R_B
        self.shift = shift
        self.info = info or {}
        self._mapped = self._map()
        self._raw_mapped = self._map_raw()

    def _map(self):
        """zeta 1: e = w_s . x^; zeta 2: e = x^T M_s x^ (FLARE's 'mapped' form): cost independent of m.

        zeta 2 maps species s only where that is cheaper than the sum over its m_s sparse environments,
        M_s x^ = sum_u alpha_u u (u . x^): 2 D^2 against 4 m_s D flops per atom (and n_species D^2 numbers of memory:
        with 4 species at n_max 8, D = 2112 and m_s ~ 250, the sum is 8x cheaper); the others hold (U_s, alpha_s).
        One species always maps (FLARE's form, and bit-identical predictions to earlier versions)."""
        n_s, D = self.descriptor.n_species, self.descriptor.dim
        if self.zeta == 1:
            out = np.zeros((n_s, D))
            np.add.at(out, self.sparse_species, self.alpha[:, None] * self.sparse_U)
            return out
        if self.zeta == 2:
            out = []
            for s in range(n_s):
                sel = self.sparse_species == s
                out.append((self.sparse_U[sel] * self.alpha[sel, None]).T @ self.sparse_U[sel]
                           if D <= 2 * int(sel.sum()) or n_s == 1 else (self.sparse_U[sel], self.alpha[sel]))
            return out
        return None

    def _map_raw(self):
        """The un-normalised term summed over the sparse set: p 1: c w_s . d; p 2: c d^T M_s d."""
        if self.raw is None:
            return None
        n_s, D = self.descriptor.n_species, self.descriptor.dim
        r = self.raw
        raw_U = self.sparse_U * (np.asarray(r["sparse_norms"]) / r["norm_scale"] ** 2)[:, None]  # u / s^2
        out = np.zeros((n_s, D) if r["power"] == 1 else (n_s, D, D))
        for s in range(n_s):
            sel = self.sparse_species == s
            weighted = raw_U[sel] * self.alpha[sel, None]
            out[s] = weighted.sum(axis=0) if r["power"] == 1 else weighted.T @ raw_U[sel]
        return r["weight"] * out

    def local_energies(self, xhat: np.ndarray, norms: np.ndarray, species: np.ndarray):
        """Local energies e_i (without shift) and de_i/dd_i (n, D)."""
        e, grad = self._normalised_energies(xhat, norms, species)
        if self.raw is None:
            return e, grad
        x = xhat * norms[:, None]
        if self.raw["power"] == 1:
            W = self._raw_mapped[species]
            return e + np.einsum("nd,nd->n", x, W), grad + W
        Mx = np.zeros_like(x)
        for s in range(self.descriptor.n_species):
            sel = species == s
            Mx[sel] = x[sel] @ self._raw_mapped[s]
        return e + np.einsum("nd,nd->n", x, Mx), grad + 2 * Mx

    def _normalised_energies(self, xhat: np.ndarray, norms: np.ndarray, species: np.ndarray):
        inv = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)[:, None]
        if self.zeta == 1:
            W = self._mapped[species]
            e = np.einsum("nd,nd->n", xhat, W)
            return e, (W - e[:, None] * xhat) * inv
        if self.zeta == 2:
            Mx = np.zeros_like(xhat)
            for s in range(self.descriptor.n_species):
                sel = species == s
                if isinstance(self._mapped[s], tuple):
                    U_s, alpha_s = self._mapped[s]
                    Mx[sel] = ((xhat[sel] @ U_s.T) * alpha_s) @ U_s
                else:
                    Mx[sel] = xhat[sel] @ self._mapped[s]
            e = np.einsum("nd,nd->n", xhat, Mx)
            return e, 2 * (Mx - e[:, None] * xhat) * inv
        z = self.zeta
        cos = np.where(species[:, None] == self.sparse_species[None, :], xhat @ self.sparse_U.T, 0.0)
        e = cos**z @ self.alpha
        coef = z * cos ** (z - 1) * self.alpha[None, :]
        return e, (coef @ self.sparse_U - (z * e)[:, None] * xhat) * inv

    def evaluate(self, atoms: Atoms):
        env = self.descriptor.environments(atoms)
        xhat, norms = unit_rows(env.desc)
        e, grad = self.local_energies(xhat, norms, env.species)
        t = self.descriptor.pair_gradient(env, grad)
        forces, stress = env.forces_and_virial(t)
        return float(e.sum() + self.shift[env.species].sum()), forces, stress

    def local_variances(self, atoms: Atoms, kind: str = "dtc") -> np.ndarray:
        """Per-atom predictive variance of the local energy (eV^2).

        ``dtc``: posterior variance sigma^2 (k~ - |v|^2 + v^T B^-1 v), v = L^-1 k~_u; ``nystrom``: its prior part
        sigma^2 (k~ - |v|^2), FLARE's local uncertainty (independent of the labels)."""
        env = self.descriptor.environments(atoms)
        xhat, norms = unit_rows(env.desc)
        self_k, v = SparseSet.of(self.sparse_U, self.sparse_species, self.L, self.zeta, self.raw).projection(
            xhat, env.species, norms)
        var = self_k - np.einsum("mn,mn->n", v, v)
        if kind == "dtc":
            r = solve_triangular(self.R_B, v, trans="T", lower=False, check_finite=False)
            var = var + np.einsum("mn,mn->n", r, r)
        elif kind != "nystrom":
            raise ValueError(f"kind must be 'dtc' or 'nystrom', not {kind!r}")
        return self.hyperparameters["sigma"] ** 2 * np.maximum(var, 0.0)

    def uncertainties(self, frames: Sequence[Atoms]) -> list[dict]:
        """Per frame: the GP's predictive std of the total energy, ``energy`` (eV: the exact DTC variance of the sum
        of the local energies, cross-covariances of the atoms included, plus the energy label noise), and of each
        atom's local energy, ``atoms`` (eV, ``local_variances``), the uncertainty FLARE's active learning uses."""
        sparse = SparseSet.of(self.sparse_U, self.sparse_species, self.L, self.zeta, self.raw)
        h = self.hyperparameters
        out = []
        for atoms in frames:
            env = self.descriptor.environments(atoms)
            xhat, norms = unit_rows(env.desc)
            self_k, v = sparse.projection(xhat, env.species, norms)
            r = solve_triangular(self.R_B, v, trans="T", lower=False, check_finite=False)
            local = self_k - np.einsum("mn,mn->n", v, v) + np.einsum("mn,mn->n", r, r)
            cos = xhat @ xhat.T  # prior covariance of the local energies, k~(x_i, x_j)
            k = cos**self.zeta
            if self.raw:
                k = k + self.raw["weight"] * (cos * np.outer(norms, norms) / self.raw["norm_scale"] ** 2) ** \
                    self.raw["power"]
            k = np.where(env.species[:, None] == env.species[None, :], k, 0.0)
            v_e, r_e = v.sum(axis=1), r.sum(axis=1)
            total = float(k.sum() - v_e @ v_e + r_e @ r_e)
            noise = h["sigma_e"] * (len(atoms) if h.get("energy_noise", "per_atom") == "per_atom" else 1.0)
            out.append({"energy": float(np.sqrt(h["sigma"] ** 2 * max(total, 0.0) + noise**2)),
                        "atoms": np.sqrt(h["sigma"] ** 2 * np.maximum(local, 0.0))})
        return out

    def state(self) -> dict:
        return {
            "descriptor": self.descriptor.to_dict(), "zeta": self.zeta, "hyperparameters": self.hyperparameters,
            "sparse_U": encode_array(self.sparse_U), "sparse_species": encode_array(self.sparse_species),
            "alpha": encode_array(self.alpha), "L": encode_array(self.L), "R_B": encode_array(self.R_B),
            "shift": encode_array(self.shift), "info": self.info,
            **({"raw": {**self.raw, "sparse_norms": encode_array(np.asarray(self.raw["sparse_norms"]))}}
               if self.raw else {}),
        }

    @classmethod
    def from_state(cls, state: dict) -> "AceGPPotential":
        raw = state.get("raw")
        if raw:
            raw = {**raw, "sparse_norms": decode_array(raw["sparse_norms"])}
        return cls(AceDescriptor.from_dict(state["descriptor"]), int(state["zeta"]), state["hyperparameters"],
                   decode_array(state["sparse_U"]), decode_array(state["sparse_species"]),
                   decode_array(state["alpha"]), decode_array(state["L"]), decode_array(state["R_B"]),
                   decode_array(state["shift"]), state.get("info", {}), raw)


def composition_shift(frames: Sequence[Atoms], descriptor: AceDescriptor) -> np.ndarray:
    """Per-species energy constant by least squares of total energies on species counts."""
    counts = np.array([np.bincount(descriptor.species_index(f), minlength=descriptor.n_species) for f in frames])
    energies = np.array([fr.label(f, "energy") for f in frames], dtype=float)
    return np.linalg.lstsq(counts.astype(float), energies, rcond=None)[0]


def _frame_labels(frame: Atoms, index: int, train_on: Sequence[str]):
    out = {}
    for name in train_on:
        value = fr.label(frame, name)
        if value is not None:
            out[name] = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if not out:
        raise DataError(f"training frame {index} carries none of the labels {list(train_on)}")
    return out


@dataclass
class Prepared:
    """Everything a fit needs besides the hyperparameters: the expensive part (descriptors, sparse set, label
    statistics), so several hyperparameter choices can be solved from one pass over the data."""

    params: dict
    descriptor: AceDescriptor
    sparse: SparseSet
    stats: Statistics
    shift: np.ndarray
    chosen: list
    timings: dict

    @property
    def initial(self) -> np.ndarray:
        p = self.params
        return np.log([p["sigma"], p["sigma_e"], p["sigma_f"], p["sigma_s"]])

    def solve(self, x: np.ndarray, optimisation: dict | None = None) -> AceGPPotential:
        """The potential for hyperparameters x = log(sigma, sigma_E, sigma_F, sigma_S)."""
        active = self.stats.n > 0
        lml, _, R_B, u = log_marginal_likelihood(x, self.stats, active)
        sigma, s_e, s_f, s_s = (float(v) for v in np.exp(x))
        alpha = sigma**2 * solve_triangular(self.sparse.L, u, trans="T", lower=True, check_finite=False)
        info = {
            "n_sparse": len(self.sparse), "descriptor_dim": self.descriptor.dim, "n_parameters": int(alpha.size),
            "log_marginal_likelihood": float(lml), "labels": dict(zip(GROUPS, self.stats.n.tolist())),
            "optimisation": optimisation or {"performed": False}, "timings": dict(self.timings),
            "params": self.params, "deviations": list(DEVIATIONS) + ([RAW_DEVIATION] if self.sparse.raw_weight else [])
            + ([SHIFT_DEVIATION] if self.params["energy_shift"] == "composition" else []),
            "sparse_atoms": [c.tolist() for c in self.chosen],
        }
        hyps = {"sigma": sigma, "sigma_e": s_e, "sigma_f": s_f, "sigma_s": s_s,
                "energy_noise": self.params["energy_noise"]}
        raw = ({"weight": self.sparse.raw_weight, "power": self.sparse.raw_power,
                "norm_scale": self.sparse.norm_scale, "sparse_norms": self.sparse.norms}
               if self.sparse.raw_weight else None)
        return AceGPPotential(self.descriptor, self.params["power"], hyps, self.sparse.U, self.sparse.species,
                              alpha, self.sparse.L, R_B, self.shift, info, raw)

    def optimise(self, fix_energy_noise: bool = False) -> AceGPPotential:
        """Maximise the log marginal likelihood from the initial hyperparameters (sigma_E held at its initial value
        when ``fix_energy_noise``), then solve."""
        p = self.params
        t0 = time.perf_counter()
        x, res = optimise_hyperparameters(self.initial, self.stats, self.stats.n > 0, p["max_iter"], p["gtol"],
                                          self.sparse.L, fix_energy_noise)
        held = []
        if res.collapsed:  # a degenerate optimum: hold the interpolated groups' noises at their initial values
            held = list(res.collapsed)
            x, res = optimise_hyperparameters(self.initial, self.stats, self.stats.n > 0, p["max_iter"], p["gtol"],
                                              self.sparse.L, fix_energy_noise, [g in held for g in GROUPS])
        self.timings["hyperparameters_s"] = time.perf_counter() - t0
        return self.solve(x, {"performed": True, "iterations": int(res.nit), "converged": bool(res.success),
                              "at_bound": res.at_bound, "message": str(res.message),
                              "sigma_e": "fixed" if fix_energy_noise else "ml",
                              **({"noise_held": held, "why": COLLAPSE_NOTE} if held else {})})


def validation_split(n_frames: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) frame indices, sorted; seeded; at least one frame on each side."""
    n_valid = min(n_frames - 1, max(1, int(round(fraction * n_frames))))
    order = np.random.default_rng(seed).permutation(n_frames)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def _validation_errors(kernels, alpha: np.ndarray) -> tuple[float, float, float]:
    """Energy (eV/atom), force (eV/Å) and stress MAEs of weights alpha on precomputed validation kernels."""
    e, f, s = [], [], []
    for k_e, k_f, k_s, y in kernels:
        e.append(abs(k_e @ alpha - y["energy"]) / y["n_atoms"])
        f.append(np.abs(k_f.T @ alpha - y["forces"])[y["forces_ok"]])
        s.append(np.abs(k_s.T @ alpha - y["stress"])[y["stress_ok"]])
    mean = lambda parts: float(np.mean(np.concatenate(parts))) if sum(map(len, parts)) else 0.0
    return float(np.mean(e)), mean(f), mean(s)


def choose_sigma_e(train: Sequence[Atoms], prepared: Prepared, x_ml: np.ndarray, params: dict) -> tuple[np.ndarray, dict]:
    """sigma_e_choice validation: hyperparameters x_ml with sigma_E replaced by the grid value (or the ML value)
    with the lowest energy MAE on a seeded validation subset of the training frames, predicted by a model prepared
    on the other training frames with the other three hyperparameters at x_ml, among the values whose validation
    MAEs of the groups in validation_keep exceed those at the ML sigma_E by at most validation_tolerance
    (relative). Only training
    frames are used; the result is deterministic given params.seed."""
    p = prepared.params
    fit_idx, valid_idx = validation_split(len(train), p["validation_fraction"], p["seed"])
    sub = AceGPModel().prepare([train[i] for i in fit_idx], {**params, "species": list(prepared.descriptor.species)})
    kernels = []
    for i in valid_idx:
        frame = train[i]
        env = kernel_environments(sub.descriptor, frame)
        forces = np.asarray(fr.label(frame, "forces"), dtype=float).ravel()
        stress = fr.label(frame, "stress")
        stress = np.full(6, np.nan) if stress is None or env.volume <= 0 else np.asarray(stress, dtype=float)
        y = {"energy": float(fr.label(frame, "energy")) - sub.shift[env.species].sum(), "n_atoms": env.n_atoms,
             "forces": np.nan_to_num(forces), "forces_ok": np.isfinite(forces),
             "stress": np.nan_to_num(stress), "stress_ok": np.isfinite(stress)}
        kernels.append((*label_kernels(env, sub.sparse), y))
    candidates = np.concatenate([[float(np.exp(x_ml[1]))], SIGMA_E_GRID])
    refit = p["sigma_e_choice"] == "validation_ml"
    errors = []
    for s_e in candidates:
        x = x_ml.copy()
        x[1] = np.log(s_e)
        if refit and s_e != candidates[0]:  # candidate 0 is the ML optimum itself: nothing to re-maximise
            x = optimise_hyperparameters(x, sub.stats, sub.stats.n > 0, p["max_iter"], p["gtol"], sub.sparse.L,
                                         fix_energy_noise=True)[0]
        errors.append(_validation_errors(kernels, sub.solve(x).alpha))
    errors = np.array(errors)
    tol = 1.0 + p["validation_tolerance"]
    ok = np.ones(len(candidates), dtype=bool)
    for group in p["validation_keep"]:
        col = 1 if group == "forces" else 2
        ok &= errors[:, col] <= tol * errors[0, col]
    best = int(np.flatnonzero(ok)[np.argmin(errors[ok, 0])])
    x = x_ml.copy()
    x[1] = np.log(candidates[best])
    report = {"sigma_e": p["sigma_e_choice"], "sigma_e_ml": float(candidates[0]), "sigma_e_chosen": float(candidates[best]),
              "validation_frames": valid_idx.tolist(), "grid": candidates.tolist(),
              "validation_mae": {"energy_ev_per_atom": errors[:, 0].tolist(), "forces": errors[:, 1].tolist(),
                                 "stress": errors[:, 2].tolist()}}
    return x, report


class AceGPModel(Model):
    name = "acegp"
    potential_class = AceGPPotential
    cutoff_params = {"cutoff": DEFAULTS["cutoff"]}
    species_param = "species"

    @classmethod
    def cutoffs(cls, params: dict) -> dict[str, float]:
        if params.get("preset") == "tm23" and "cutoff" not in params:
            return {}  # the TM23 table's cutoff of the training metal, chosen at fit time
        return super().cutoffs(params)

    @classmethod
    def check_params(cls, params: dict) -> None:
        resolve_params(params)

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None, params: dict, workdir=None,
            progress=None) -> AceGPPotential:
        prepared = self.prepare(train, params, progress)
        p = prepared.params
        if not p["optimise"]:
            return prepared.solve(prepared.initial)
        if p["sigma_e_choice"] == "fixed":
            return prepared.optimise(fix_energy_noise=True)
        potential = prepared.optimise()
        if p["sigma_e_choice"] in ("validation", "validation_ml"):
            return validated(train, prepared, potential, params)
        return potential

    def prepare(self, train: Sequence[Atoms], params: dict, progress=None) -> Prepared:
        """Descriptors, sparse selection and the label statistics of the training frames."""
        if not train:
            raise DataError("acegp: empty training set")
        p = resolve_params(params)
        species = tuple(p["species"] or sorted({int(z) for f in train for z in f.numbers}))
        if p["preset"] == "tm23":
            if len(species) != 1:
                raise ConfigError("acegp: preset tm23 needs single-element training data")
            best = tm23_best(p["descriptor"], p["power"], chemical_symbols[species[0]])
            p = resolve_params({**params, **{k: v for k, v in best.items() if k not in params}})
        descriptor = AceDescriptor(p["descriptor"], float(p["cutoff"]), p["n_max"], p["l_max"], species)
        timings = {}
        labels = [_frame_labels(f, k, p["train_on"]) for k, f in enumerate(train)]
        if p["energy_shift"] == "auto":  # several species present: reference them (TM23/FLARE elemental: none)
            present = {int(z) for f in train for z in f.numbers}
            p = {**p, "energy_shift": "composition" if len(present) > 1 else "none"}
        shift = (composition_shift(train, descriptor) if p["energy_shift"] == "composition"
                 else np.zeros(descriptor.n_species))

        t0 = time.perf_counter()
        # Frame descriptors are streamed (memory O(one frame), not frames x atoms x dim: 0.85 GB for 1000 frames of
        # 50 atoms at 4 species, n_max 8) except for CUR, which needs them all at once. s (norm_scale): mean norm of
        # the training environments, so raw_dot_weight is dimensionless (k~ ~ 1 + c for typical d); the raw term
        # needs it during the selection, hence a first pass for the norms only.
        seen_norms: list[np.ndarray] = []
        frame_envs = _frame_environments(descriptor, train, seen_norms)
        if p["sparse_method"] == "cur":
            frame_envs = list(frame_envs)
            norm_scale = _norm_scale(seen_norms)
        elif p["raw_dot_weight"]:
            norm_scale = _norm_scale([unit_rows(descriptor.environments(f).desc)[1] for f in train])
        else:
            norm_scale = None  # unused by the selection: taken from the streamed norms afterwards
        sparse = SparseSet(descriptor.dim, p["power"], p["jitter"], p["raw_dot_weight"], p["raw_dot_power"],
                           1.0 if norm_scale is None else norm_scale)
        chosen = select(p["sparse_method"], frame_envs, sparse, p["sparse_per_frame"], p["seed"])
        if norm_scale is None:
            sparse.norm_scale = _norm_scale(seen_norms)
        del frame_envs, seen_norms
        timings["sparse_selection_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        stats = Statistics(len(sparse))
        for k, frame in enumerate(train):
            env = kernel_environments(descriptor, frame)
            k_e, k_f, k_s = label_kernels(env, sparse)
            lab = labels[k]
            if "energy" in lab:
                y = lab["energy"][0] - shift[env.species].sum()
                scale = 1.0 / env.n_atoms if p["energy_noise"] == "per_atom" else 1.0
                stats.add(0, sparse.whiten(k_e[:, None] * scale), np.array([y * scale]), np.abs(k_e).max() * scale)
            if "forces" in lab:
                ok = np.isfinite(lab["forces"])
                stats.add(1, sparse.whiten(k_f[:, ok]), lab["forces"][ok], np.abs(k_f).max(initial=0.0))
            if "stress" in lab and env.volume > 0:
                ok = np.isfinite(lab["stress"])
                stats.add(2, sparse.whiten(k_s[:, ok]), lab["stress"][ok], np.abs(k_s).max(initial=0.0))
            if progress is not None:
                progress(k + 1, len(train))
        stats.finish()
        timings["kernels_s"] = time.perf_counter() - t0
        return Prepared(p, descriptor, sparse, stats, shift, chosen, timings)


def _frame_environments(descriptor: AceDescriptor, frames: Sequence[Atoms], seen_norms: list):
    """(unit descriptors, species, norms) of each frame, computed when asked for; the norms also go to seen_norms."""
    for frame in frames:
        env = descriptor.environments(frame)
        xhat, norms = unit_rows(env.desc)
        seen_norms.append(norms)
        yield xhat, env.species, norms


def _norm_scale(norms_per_frame: list) -> float:
    norms = np.concatenate(norms_per_frame)
    return float(norms[norms > 0].mean()) if (norms > 0).any() else 1.0


def validated(train: Sequence[Atoms], prepared: Prepared, ml: AceGPPotential, params: dict) -> AceGPPotential:
    """The full-data model with sigma_E chosen by ``choose_sigma_e`` around the ML potential ``ml``."""
    x_ml = np.log([ml.hyperparameters[k] for k in ("sigma", "sigma_e", "sigma_f", "sigma_s")])
    t0 = time.perf_counter()
    x, report = choose_sigma_e(train, prepared, x_ml, params)
    opt = {**ml.info["optimisation"], **report}
    if prepared.params["sigma_e_choice"] == "validation_ml" and report["sigma_e_chosen"] != report["sigma_e_ml"]:
        p = prepared.params
        x, res = optimise_hyperparameters(x, prepared.stats, prepared.stats.n > 0, p["max_iter"], p["gtol"],
                                          prepared.sparse.L, fix_energy_noise=True)
        opt.update(iterations=int(res.nit), converged=bool(res.success), at_bound=res.at_bound,
                   message=str(res.message))
    prepared.timings["sigma_e_validation_s"] = time.perf_counter() - t0
    return prepared.solve(x, opt)
