"""The native ACE sparse GP on real DFT (mlearn Cu, Zuo et al. 2020), against the Zuo SNAP and quadratic SNAP
scored by the same metrics code. Half the training set keeps CI fast; benchmarks/mlearn_acegp.py runs all of it."""

from pathlib import Path

import pytest

from mlffbench.models.acegp import AceGPModel
from mlffbench.reference_scores import read_mlearn, score_frames, snap_calculator

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} (shared mlearn data) is absent")


@needs_data
def test_cu_forces_beat_both_zuo_snaps_on_half_the_training_set():
    train, test = read_mlearn("Cu", "train")[::2], read_mlearn("Cu", "test")
    pot = AceGPModel().fit(train, None, {"sparse_per_frame": 3, "energy_shift": "composition", "n_max": 6,
                                         "l_max": 3}, None)
    ours = score_frames(pot, test)
    snaps = [score_frames(snap_calculator("Cu", kind), test) for kind in ("snap", "qsnap")]
    # measured: ours 0.0227 eV/Å, SNAP 0.0371, qSNAP 0.0241; stress 0.27 vs 0.84 / 1.47 GPa
    assert ours.force_mae < min(s.force_mae for s in snaps)
    assert ours.stress_mae < min(s.stress_mae for s in snaps)
    # with the FLARE kernel and ML hyperparameters energies lag (5.6 meV/atom vs 0.5; see the next test)
    assert ours.energy_mae < 8.0


@needs_data
@pytest.mark.slow
def test_cu_raw_dot_kernel_with_held_out_sigma_e_reaches_snap_level_energies():
    """The energy-accurate option (NOT FLARE/TM23): un-normalised dot-product term in the kernel + sigma_E chosen on
    held-out training frames with the other hyperparameters re-maximised. Half the Cu training set (~30 s)."""
    train, test = read_mlearn("Cu", "train")[::2], read_mlearn("Cu", "test")
    params = {"sparse_per_frame": 2, "energy_shift": "composition", "n_max": 8, "l_max": 3,
              "raw_dot_weight": 100, "sigma_e_choice": "validation_ml"}
    pot = AceGPModel().fit(train, None, params, None)
    ours = score_frames(pot, test)
    qsnap = score_frames(snap_calculator("Cu", "qsnap"), test)
    # measured: 0.76 meV/atom, 0.0131 eV/Å (the FLARE kernel with ML hyperparameters on this half set: ~5.6,
    # 0.023; full training set: 0.37, 0.0097; Zuo SNAP / qSNAP 0.53 / 0.56 meV/atom, 0.037 / 0.024 eV/Å)
    assert ours.energy_mae < 1.0
    assert ours.force_mae < 0.015 < qsnap.force_mae
