"""GPAW labeler: real plane-wave DFT on 1-2 atom cells at a low cutoff (seconds per frame).

Skipped only when Debian's gpaw is not installed (scripts/install_gpaw.sh installs it).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data.io import read_frames, write_frames
from mlffbench.data.labelers import make_labeler
from mlffbench.data.labelers.gpaw import LABEL_FAILED, GpawLabeler, gpaw_installed
from mlffbench.data.labelers.gpaw_driver import kpoint_grid
from mlffbench.errors import ConfigError, MlffbenchError

needs_gpaw = pytest.mark.skipif(not gpaw_installed(), reason="GPAW not installed (run scripts/install_gpaw.sh)")
TIGHT = {"energy": 1e-7, "density": 1e-6, "eigenstates": 1e-9}


def tiny(tmp_path, **kw) -> GpawLabeler:
    options = dict(ecut=250, kpts=[2, 2, 2], smearing=0.2, mpi_ranks=2, cache_dir=str(tmp_path / "cache"))
    options.update(kw)
    return make_labeler({"name": "gpaw", **options})


def two_atom_cell() -> Atoms:
    atoms = bulk("Cu", "bcc", a=2.95, cubic=True)  # 2 atoms
    atoms.positions[0] += [0.12, 0.05, -0.03]
    return atoms


def test_kpoint_grid_follows_vasp_kspacing_rule():
    # |b| = 2π/a for a cubic cell: N = ceil(2π/(a Δk))
    assert kpoint_grid(np.eye(3) * 7.2, 0.19) == [5, 5, 5]  # 2π/7.2/0.19 = 4.59
    assert kpoint_grid(np.diag([7.2, 7.2, 14.4]), 0.5) == [2, 2, 1]
    assert kpoint_grid(np.eye(3) * 100.0, 0.15) == [1, 1, 1]


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="gpaw.kspacing"):
        GpawLabeler(kspacing="dense")
    with pytest.raises(ConfigError, match="gpaw.smearing"):
        GpawLabeler(smearing=0)
    with pytest.raises(TypeError):
        make_labeler({"name": "gpaw", "ecutt": 300})  # DataConfig.check_labelers reports TypeError per key


@needs_gpaw
def test_label_units_signs_and_provenance(tmp_path):
    lab = tiny(tmp_path)
    squeezed, stretched = bulk("Cu", "fcc", a=3.35), bulk("Cu", "fcc", a=3.95)
    squeezed.info["frame_index"] = 7
    out = lab.label([squeezed, stretched])
    for frame in out:
        assert LABEL_FAILED not in frame.info
        assert frame.info[fr.LABELER].startswith("gpaw-22.") and ":PBE:" in frame.info[fr.LABELER]
        assert "pw-250eV:kpts-2x2x2:mp1-0.2eV:nospin" in frame.info[fr.LABELER]
        np.testing.assert_allclose(fr.label(frame, "forces"), 0.0, atol=1e-6)  # one atom: no net force
        stress = fr.label(frame, "stress")
        assert stress.shape == (6,) and np.allclose(stress[:3], stress[0], rtol=1e-6)  # cubic: isotropic
    assert out[0].info["frame_index"] == 7  # metadata kept
    # ASE sign: a squeezed crystal pushes outwards (negative stress), a stretched one pulls in (positive);
    # and the squeezed cell has the higher energy per atom only well away from the minimum (checked below).
    assert fr.label(out[0], "stress")[0] < -0.05 and fr.label(out[1], "stress")[0] > 0.0
    assert abs(fr.label(out[0], "energy") - out[0].info["energy_extrapolated"]) < 0.05  # eV; small at 0.2 eV
    # energies are per cell in eV: the PBE Cu cohesive scale (a few eV) relative to GPAW's atomic reference
    assert -6.0 < fr.label(out[1], "energy") < 2.0


@needs_gpaw
@pytest.mark.slow
def test_forces_are_minus_the_energy_gradient(tmp_path):
    """Forces are the derivative of the stored (free) energy: central difference on a displaced 2-atom cell."""
    lab = tiny(tmp_path, convergence=TIGHT)
    base = two_atom_cell()
    h = 0.01
    plus, minus = base.copy(), base.copy()
    plus.positions[0, 0] += h
    minus.positions[0, 0] -= h
    started = time.perf_counter()
    out = lab.label([base, plus, minus])  # one driver call; the displaced frames reuse wavefunctions
    seconds = time.perf_counter() - started
    forces = fr.label(out[0], "forces")
    numeric = -(fr.label(out[1], "energy") - fr.label(out[2], "energy")) / (2 * h)
    assert abs(forces[0, 0]) > 0.05  # a real force, not zero by symmetry
    print(f"GPAW force {forces[0, 0]:.5f} eV/Å, central difference {numeric:.5f} eV/Å, {seconds:.1f} s / 3 frames")
    assert forces[0, 0] == pytest.approx(numeric, abs=0.02, rel=0.05)
    assert out[1].info["dft_iterations"] < out[0].info["dft_iterations"]  # started from the previous wavefunctions
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=0.02)  # momentum conservation
    assert seconds < 120


@needs_gpaw
def test_cache_hit_and_restart_from_extxyz(tmp_path, monkeypatch):
    lab = tiny(tmp_path)
    first = lab.label([bulk("Cu", "fcc", a=3.6)])
    path = tmp_path / "f.extxyz"
    write_frames(path, first)
    (back,) = read_frames(path)

    def no_driver(*args, **kwargs):  # a cache hit must not start GPAW again
        raise AssertionError("GPAW was run for a cached frame")

    again_lab = tiny(tmp_path)  # a new labeler with the same settings and cache folder
    monkeypatch.setattr(again_lab, "_run_driver", no_driver)
    (again,) = again_lab.label([back])
    assert fr.label(again, "energy") == fr.label(first[0], "energy")
    # a different setting is a different key: the cache is not reused across smearings
    assert tiny(tmp_path, smearing=1.0).key(back) != again_lab.key(back)


@needs_gpaw
def test_unconverged_scf_is_a_recorded_failure(tmp_path):
    lab = tiny(tmp_path, maxiter=2)
    frames = [bulk("Cu", "fcc", a=3.6), bulk("Cu", "fcc", a=3.7)]
    out = lab.label(frames)  # no exception: every frame comes back, marked failed with the reason
    assert len(out) == 2
    for frame in out:
        assert "SCF did not converge in 2 iterations" in frame.info[LABEL_FAILED]
        assert not fr.has_label(frame, "energy") and not fr.has_label(frame, "forces")
    cached = [p for p in (tmp_path / "cache").rglob("*.json")]
    assert len(cached) == 2  # deterministic failures are cached: a re-run does not repeat them
    with pytest.raises(MlffbenchError, match="SCF did not converge"):
        atoms = frames[0].copy()
        atoms.calc = lab.calculator(["Cu"])
        atoms.get_potential_energy()


@needs_gpaw
def test_calculator_form_and_charge(tmp_path):
    lab = tiny(tmp_path, extra_electrons_per_atom=-1.0)
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = lab.calculator(["Cu"])
    e_charged = atoms.get_potential_energy()
    assert atoms.get_stress().shape == (6,)
    neutral = bulk("Cu", "fcc", a=3.6)
    neutral.calc = tiny(tmp_path).calculator(["Cu"])
    # one electron fewer per atom: the energy changes by about E_F-ish (eV), not a rounding error
    assert abs(e_charged - neutral.get_potential_energy()) > 0.5
    assert "extra-electrons--1-per-atom" in lab.provenance(["Cu"])
    assert os.listdir(tmp_path / "cache")


def test_force_change_components_radial_and_angular():
    from mlffbench.experiments.dft import force_change_components

    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[5, 5, 5], pbc=True)
    ref = fr.labelled(atoms, 0.0, [[1.0, 0, 0], [0, 2.0, 0]], None)
    longer = fr.labelled(atoms, 0.0, [[1.5, 0, 0], [0, 2.5, 0]], None)  # same directions, +0.5 eV/Å
    turned = fr.labelled(atoms, 0.0, [[0, 1.0, 0], [2.0, 0, 0]], None)  # same magnitudes, turned 90°
    a = force_change_components([ref], [longer])
    assert a["radial_tm23"] == pytest.approx(0.5) and a["angular_tm23"] == pytest.approx(0.5)
    assert a["perpendicular"] == pytest.approx(0.0) and a["turn_degrees"] == pytest.approx(0.0)
    b = force_change_components([ref], [turned])
    assert b["radial_tm23"] == pytest.approx(0.0) and b["turn_degrees"] == pytest.approx(90.0)
    assert b["angular_tm23"] == pytest.approx((np.sqrt(2) + np.sqrt(8)) / 2)
    assert b["parallel"] == pytest.approx(1.5) and b["perpendicular"] == pytest.approx(1.5)


def test_electron_swap_counts_follow_tm23():
    from mlffbench.experiments.dft import swapped_electrons

    assert swapped_electrons("Au", "Os") == -3.0 and swapped_electrons("Os", "Au") == 3.0  # 5d10 6s1 vs 5d6 6s2


@needs_gpaw
@pytest.mark.slow
def test_d_band_centre_from_projected_dos(tmp_path):
    from mlffbench.experiments.dft import d_band_centres

    spec = {"name": "gpaw", "ecut": 250, "kpts": [8, 8, 8], "cache_dir": str(tmp_path / "cache")}
    cu = d_band_centres([bulk("Cu", "fcc", a=3.63)], spec)
    ti = d_band_centres([bulk("Ti", "bcc", a=3.28)], spec)  # bcc keeps it one atom: a cheap early metal
    # (a 1-atom cell needs a dense k-mesh for E_F: 3x3x3 puts it 1.7 eV too low)
    # Cu's filled d band sits well below E_F (PBE about -2.7 eV); Ti's is mostly empty, centred near/above E_F
    print(f"d-band centre Cu {cu['mean']:.2f} eV, Ti(bcc) {ti['mean']:.2f} eV")
    assert -3.2 < cu["mean"] < -2.2, cu["mean"]
    assert ti["mean"] > cu["mean"] + 1.5, (ti["mean"], cu["mean"])
    dos = np.array(cu["dos"][0]["d_dos_per_atom"])
    energies = np.array(cu["dos"][0]["energies"])
    assert dos.min() >= -1e-9 and 8.5 < cu["dos"][0]["d_electrons_below_ef"] < 10.0  # Cu: about 9.5 d electrons
    assert energies[0] >= -10.0 and energies[-1] <= 10.0 and len(dos) == len(energies)


def test_wide_smearing_gets_enough_empty_bands():
    """GPAW's default band count stalls the SCF at 1-2 eV smearing (measured: Ti 115-327 iterations vs ~20):
    from 0.5 eV on, the labeler asks for twice the occupied bands unless nbands is given."""
    from mlffbench.data.labelers import make_labeler

    assert make_labeler({"name": "gpaw", "smearing": 0.2}).nbands is None  # GPAW's default, TM23's width
    assert make_labeler({"name": "gpaw", "smearing": 1.0}).nbands == "200%"
    assert make_labeler({"name": "gpaw", "smearing": 2.0, "nbands": 80}).nbands == 80
