"""Uncertainty calibration of a model's predicted standard deviations against its observed errors.

For a model that predicts a Gaussian σ with each label (acegp: the GP's predictive std of the total energy and of
each atom's local energy, :meth:`AceGPPotential.uncertainties`):

* calibration curve: for each probability p the fraction of test labels whose error lies inside the central
  p-interval of N(0, σ²), |err| <= σ Φ⁻¹((1 + p) / 2), against p; perfectly calibrated = the diagonal;
* miscalibration area: the mean |observed - expected| over p in (0, 1) (0 ideal, 0.5 worst; Tran et al. 2020);
  below the diagonal = overconfident (σ too small);
* negative log-likelihood of the errors under N(0, σ²), per label (lower is better; in the label's units);
* Spearman rank correlation of σ with |err| (ranking: does a larger σ mean a larger error?);
* out-of-distribution AUC: the probability that a frame of an unseen group (melt, trained on cold) has a larger
  mean per-atom σ than an in-distribution test frame (0.5 = σ does not separate them; 1 = perfectly).

Energy calibration is per atom (errors and σ of the total energy divided by the atom count); the per-atom σ of
the local energy has no force counterpart, so forces enter through its rank correlation with each atom's force
error (|ΔF_i|) and through the AUC.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, spearmanr

from mlffbench import frames as fr

GRID = np.linspace(0.005, 0.995, 199)
CURVE_POINTS = np.linspace(0.1, 0.9, 9)


def observed_fraction(errors, sigmas, p) -> np.ndarray:
    z = np.abs(np.asarray(errors, dtype=float)) / np.asarray(sigmas, dtype=float)
    bound = norm.ppf((1 + np.asarray(p, dtype=float)) / 2)
    return (z[:, None] <= bound[None, :]).mean(axis=0)


def miscalibration_area(errors, sigmas) -> float:
    return float(np.mean(np.abs(observed_fraction(errors, sigmas, GRID) - GRID)))


def nll(errors, sigmas) -> float:
    e, s = np.asarray(errors, dtype=float), np.asarray(sigmas, dtype=float)
    return float(np.mean(0.5 * np.log(2 * np.pi * s**2) + e**2 / (2 * s**2)))


def rank_correlation(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def auc(inside, outside) -> float:
    """P(score of an outside item > score of an inside one), ties counted half (Mann-Whitney)."""
    a, b = np.asarray(inside, dtype=float), np.asarray(outside, dtype=float)
    if not a.size or not b.size:
        return float("nan")
    greater = (b[:, None] > a[None, :]).sum() + 0.5 * (b[:, None] == a[None, :]).sum()
    return float(greater / (a.size * b.size))


def score(predicted: list, test: list, uncertainties: list[dict]) -> dict:
    """The calibration numbers of one test set (frames predicted with their ``uncertainties``)."""
    natoms = np.array([len(f) for f in test], dtype=float)
    e_err = np.array([p.get_potential_energy() - r.get_potential_energy() for p, r in zip(predicted, test)]) / natoms
    e_sigma = np.array([u["energy"] for u in uncertainties]) / natoms
    atom_sigma = np.concatenate([np.asarray(u["atoms"], dtype=float) for u in uncertainties])
    # forces only where the reference has them (a reaction path or torsion scan may carry energies alone)
    with_f = [i for i, r in enumerate(test) if fr.has_label(r, "forces")]
    f_err = np.concatenate([np.linalg.norm(predicted[i].get_forces() - test[i].get_forces(), axis=1)
                            for i in with_f]) if with_f else np.zeros(0)
    f_sigma = (np.concatenate([np.asarray(uncertainties[i]["atoms"], dtype=float) for i in with_f]) if with_f
               else np.zeros(0))
    frame_sigma = [float(np.mean(u["atoms"])) for u in uncertainties]
    return {"n_frames": len(test), "n_atoms": int(natoms.sum()),
            "energy_miscalibration_area": miscalibration_area(e_err, e_sigma),
            "energy_nll": nll(e_err, e_sigma),  # eV/atom units inside the log
            "energy_sigma_error_spearman": rank_correlation(e_sigma, np.abs(e_err)),
            "energy_mean_sigma": float(np.mean(e_sigma)), "energy_rmse": float(np.sqrt(np.mean(e_err**2))),
            "energy_curve": {"expected": CURVE_POINTS.tolist(),
                             "observed": observed_fraction(e_err, e_sigma, CURVE_POINTS).tolist()},
            "atom_sigma_force_error_spearman": rank_correlation(f_sigma, f_err),
            "atom_mean_sigma": float(np.mean(atom_sigma)), "frame_sigma": frame_sigma}


def ood_auc(scored: dict, inside: str) -> dict:
    """{test set: AUC of its frames' mean σ against the in-distribution set ``inside``} for every other set."""
    base = scored[inside]["frame_sigma"]
    return {name: auc(base, s["frame_sigma"]) for name, s in scored.items() if name != inside}
