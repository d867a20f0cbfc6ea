"""mlffbench.calibration metrics and acegp's predictive uncertainties."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlffbench import calibration


def test_metrics_tell_calibrated_from_overconfident_and_ranked_from_not():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.5, 2.0, 4000)
    err = rng.normal(size=sigma.size) * sigma
    assert calibration.miscalibration_area(err, sigma) < 0.02
    assert calibration.miscalibration_area(err, sigma / 3) > 0.25  # σ three times too small
    assert calibration.nll(err, sigma) < calibration.nll(err, sigma / 3)
    assert calibration.rank_correlation(sigma, np.abs(err)) > 0.2
    assert abs(calibration.rank_correlation(rng.permutation(sigma), np.abs(err))) < 0.06
    assert calibration.auc([1, 2, 3], [4, 5]) == 1.0 and calibration.auc([1, 2], [1, 2]) == 0.5


def _frames(n: int, rattle: float, seed: int, scale: float = 1.0) -> list:
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", 3.6 * scale, cubic=True).repeat(2)
        atoms.rattle(rattle, seed=seed + k)
        atoms.calc = EMT()
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **labels)
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def potential(tmp_path_factory):
    from mlffbench.models.acegp.model import AceGPModel

    params = {"descriptor": "B2", "cutoff": 4.5, "n_max": 4, "l_max": 2, "sparse_per_frame": 2}
    return AceGPModel().fit(_frames(12, 0.05, 0), None, params, tmp_path_factory.mktemp("gp"))


def test_acegp_sigma_grows_out_of_distribution_and_separates_it(potential):
    inside, outside = _frames(6, 0.05, 100), _frames(6, 0.05, 200, scale=0.94) + _frames(6, 0.25, 300)
    u_in, u_out = potential.uncertainties(inside), potential.uncertainties(outside)
    s_in = [float(np.mean(u["atoms"])) for u in u_in]
    s_out = [float(np.mean(u["atoms"])) for u in u_out]
    assert calibration.auc(s_in, s_out) > 0.9
    scored = calibration.score(potential.predict(outside), outside, u_out)
    assert 0 <= scored["energy_miscalibration_area"] <= 0.5 and np.isfinite(scored["energy_nll"])
    assert len(scored["energy_curve"]["observed"]) == len(calibration.CURVE_POINTS)


def test_acegp_total_energy_sigma_counts_the_atoms_covariances(potential):
    """In a perfect crystal every atom has the same environment, so the local energies are fully correlated and
    the total-energy variance is N^2 times the local one (plus the label noise): the cross terms are there."""
    crystal = bulk("Cu", "fcc", 3.62, cubic=True).repeat(2)
    (u,) = potential.uncertainties([crystal])
    n, local = len(crystal), u["atoms"]
    assert np.ptp(local) < 1e-6 * local.max()  # the same up to the rounding of a difference of large terms
    h = potential.hyperparameters
    noise = h["sigma_e"] * n
    assert u["energy"] == pytest.approx(np.sqrt((n * local[0]) ** 2 + noise**2), rel=1e-5)


def test_energy_only_reference_frames_score_energy_calibration(potential):
    """A test set whose reference has energies only (a reaction path, a torsion scan) is scored on energies."""
    test = _frames(4, 0.1, 50)
    energy_only = []
    for atoms in test:
        a = atoms.copy()
        a.calc = SinglePointCalculator(a, energy=atoms.get_potential_energy())
        energy_only.append(a)
    predicted = potential.predict(energy_only)
    out = calibration.score(predicted, energy_only, potential.uncertainties(energy_only))
    assert out["n_frames"] == 4 and np.isfinite(out["energy_nll"])
    assert np.isnan(out["atom_sigma_force_error_spearman"])
