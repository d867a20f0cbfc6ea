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
    # energies are the open gap (5.6 meV/atom vs 0.5): guard against regressions only
    assert ours.energy_mae < 8.0
