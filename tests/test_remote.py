"""A saved potential served from another interpreter (mlffbench.models.remote) gives the same E/F/S as loading it
here, reports server-side errors as one line, and a dead server is a clear error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ase.build import bulk

from mlffbench.errors import MlffbenchError
from mlffbench.models.reference import LabelerPotential
from mlffbench.models.remote import RemotePotential


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "potential.json"
    LabelerPotential({"name": "emt"}).save(path)
    return path


def test_remote_equals_local(saved):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=3)
    local = atoms.copy()
    local.calc = LabelerPotential({"name": "emt"})
    remote = RemotePotential(sys.executable, saved)
    try:
        for step in range(2):  # the server stays up between calls
            atoms.positions[0, 0] += 0.01 * step
            local.positions[0, 0] += 0.01 * step
            atoms.calc = remote
            assert atoms.get_potential_energy() == pytest.approx(local.get_potential_energy(), abs=1e-12)
            np.testing.assert_allclose(atoms.get_forces(), local.get_forces(), atol=1e-12)
            np.testing.assert_allclose(atoms.get_stress(), local.get_stress(), atol=1e-14)
    finally:
        remote.close()


def test_server_errors_come_back_as_one_line(saved):
    remote = RemotePotential(sys.executable, saved)
    atoms = bulk("Mo", "bcc", a=3.15)  # EMT has no Mo parameters: the server raises, reports, keeps serving
    atoms.calc = remote
    with pytest.raises(MlffbenchError, match="remote potential: .*Mo"):
        atoms.get_potential_energy()
    cu = bulk("Cu", "fcc", a=3.6)
    cu.calc = remote
    assert np.isfinite(cu.get_potential_energy())
    remote.close()


def test_missing_potential_is_a_clear_error(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = RemotePotential(sys.executable, tmp_path / "nope.json")
    with pytest.raises(MlffbenchError, match="exited with status 1"):
        atoms.get_potential_energy()
