"""Ground-state relaxation with the labeler, prototypes, TM23 supercells and the seeded vacancy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mlffbench import elements as elements_db
from mlffbench.data import build
from mlffbench.data.labelers import make_labeler
from mlffbench.errors import MlffbenchError


@pytest.fixture(scope="module")
def lammps():
    return make_labeler("lammps")


@pytest.fixture(scope="module")
def cu_lammps(lammps):
    return build.relax_ground_state("Cu", lammps.calculator(["Cu"]))


# ---------------------------------------------------------------- relaxation


def test_relax_cu_lammps_gives_mishin_lattice_constant(cu_lammps):
    gs = cu_lammps
    assert gs.lattice == "fcc"
    assert gs.c is None
    assert gs.a == pytest.approx(3.615, abs=0.005)  # Mishin et al. 2001: a0 = 3.615 Å
    assert gs.residual_stress < 1e-5
    assert gs.energy_per_atom == pytest.approx(-3.54, abs=0.01)  # Mishin Cu cohesive energy 3.54 eV
    assert len(gs.atoms) == 4
    np.testing.assert_allclose(gs.atoms.cell.array, gs.a * np.eye(3), atol=1e-12)
    assert gs.atoms.calc is None


def test_relaxed_energy_is_a_minimum(lammps, cu_lammps):
    calc = lammps.calculator(["Cu"])
    for scale in (0.995, 1.005):
        atoms = build.prototype("Cu", "fcc", cu_lammps.a * scale)
        atoms.calc = calc
        assert atoms.get_potential_energy() / len(atoms) > cu_lammps.energy_per_atom + 1e-6


def test_relax_cu_emt():
    emt = make_labeler("emt")
    gs = build.relax_ground_state("Cu", emt.calculator(["Cu"]))
    assert gs.a == pytest.approx(3.59, abs=0.01)
    assert gs.residual_stress < 1e-5
    assert abs(gs.energy_per_atom) < 0.05  # EMT energies are relative to the fcc ground state


def test_relax_hcp_zr(lammps):
    gs = build.relax_ground_state("Zr", lammps.calculator(["Zr"]))
    assert gs.lattice == "hcp"
    assert 1.5 < gs.c / gs.a < 1.7
    assert gs.a == pytest.approx(3.23, abs=0.05)  # Mendelev-Ackland Zr: a = 3.234 Å
    assert gs.residual_stress < 1e-5
    assert len(gs.atoms) == 2
    lengths = gs.atoms.cell.lengths()
    assert lengths[:2] == pytest.approx([gs.a, gs.a])
    assert lengths[2] == pytest.approx(gs.c)


def test_relax_omega_ti_and_bcc_mo(lammps):
    ti = build.relax_ground_state("Ti", lammps.calculator(["Ti"]))
    assert ti.lattice == "omega" == elements_db.get("Ti").lattice
    assert len(ti.atoms) == 3
    assert 0.55 < ti.c / ti.a < 0.68
    assert ti.residual_stress < 1e-5
    mo = build.relax_ground_state("Mo", lammps.calculator(["Mo"]))
    assert mo.lattice == "bcc"
    assert mo.a == pytest.approx(3.169, abs=0.01)  # Zuo SNAP, fitted to PBE (PBE 3.16 Å; experiment 3.147)
    assert mo.residual_stress < 1e-5


def test_relax_explicit_lattice(lammps):
    """The lattice argument overrides the element's ground state (fcc Zr is a different, higher energy cell)."""
    fcc = build.relax_ground_state("Zr", lammps.calculator(["Zr"]), lattice="fcc")
    hcp = build.relax_ground_state("Zr", lammps.calculator(["Zr"]))
    assert fcc.lattice == "fcc" and len(fcc.atoms) == 4
    assert fcc.energy_per_atom > hcp.energy_per_atom
    # fcc and hcp have nearly the same volume per atom
    assert fcc.atoms.get_volume() / 4 == pytest.approx(hcp.atoms.get_volume() / 2, rel=0.03)


# ---------------------------------------------------------------- prototypes and guesses


@pytest.mark.parametrize("lattice,natoms", [("fcc", 4), ("bcc", 2), ("hcp", 2), ("omega", 3), ("simple_hexagonal", 1)])
def test_prototype_shapes(lattice, natoms):
    c = None if lattice in ("fcc", "bcc") else 3.0
    atoms = build.prototype("Cu", lattice, 3.5, c)
    assert len(atoms) == natoms
    assert atoms.pbc.all()
    lengths = atoms.cell.lengths()
    assert lengths[0] == pytest.approx(3.5)
    if c is not None:
        assert lengths[2] == pytest.approx(3.0)
        assert atoms.cell.angles()[2] == pytest.approx(120.0)
    # no two atoms closer than half the lattice constant
    dist = atoms.get_all_distances(mic=True) + np.eye(natoms) * 100
    assert dist.min() > 1.5


def test_prototype_unsupported_lattice():
    with pytest.raises(MlffbenchError, match="beta_Sn"):
        build.prototype("Sn", "beta_Sn", 5.8)
    with pytest.raises(Exception):
        build.relax_ground_state("Mn", make_labeler("emt").calculator(["Cu"]))  # EMT has no Mn parameters


def test_initial_guess_conserves_volume_between_prototypes():
    a_fcc, _ = build.initial_guess("Cu", "fcc")
    assert a_fcc == pytest.approx(3.61, abs=0.01)
    a_bcc, c = build.initial_guess("Cu", "bcc")
    assert c is None
    assert a_bcc**3 / 2 == pytest.approx(a_fcc**3 / 4)
    a, c = build.initial_guess("Cu", "hcp")
    assert math.sqrt(3) / 2 * a * a * c / 2 == pytest.approx(a_fcc**3 / 4)
    a, c = build.initial_guess("Zr", "hcp")
    assert c / a == pytest.approx(1.593, abs=0.01)


# ---------------------------------------------------------------- supercells


def _check_minimal(cell, min_length, repeats):
    lengths = np.linalg.norm(np.asarray(cell), axis=1)
    assert all(isinstance(r, int) and r >= 1 for r in repeats)
    for length, r in zip(lengths, repeats):
        assert r * length >= min_length - 1e-6, (lengths, repeats, min_length)
        if r > 1:
            assert (r - 1) * length < min_length, (lengths, repeats, min_length)


def test_supercell_repeats_rule_random_cells():
    rng = np.random.default_rng(42)
    for _ in range(300):
        cell = rng.normal(size=(3, 3)) * rng.uniform(0.5, 6.0)
        if abs(np.linalg.det(cell)) < 1e-3:
            continue
        min_length = rng.uniform(1.0, 15.0)
        _check_minimal(cell, min_length, build.supercell_repeats(cell, min_length))


def test_supercell_repeats_known_cases():
    assert build.supercell_repeats(3.615 * np.eye(3), 7.0) == (2, 2, 2)
    assert build.supercell_repeats(3.5 * np.eye(3), 7.0) == (2, 2, 2)  # exactly 7 Å is enough
    assert build.supercell_repeats(3.49 * np.eye(3), 7.0) == (3, 3, 3)
    assert build.supercell_repeats(8.0 * np.eye(3), 7.0) == (1, 1, 1)
    assert build.supercell_repeats(np.diag([2.0, 3.6, 7.5]), 7.0) == (4, 2, 1)
    # hexagonal: |a2| = a even though its x component is -a/2
    hcp = build.prototype("Zr", "hcp", 3.234, 5.168)
    assert build.supercell_repeats(hcp.cell, 7.0) == (3, 3, 2)
    # the length of a skewed vector counts, not its diagonal component
    skew = np.array([[3.0, 0, 0], [3.0, 3.0, 0], [0, 0, 4.0]])  # |a2| = 4.24
    assert build.supercell_repeats(skew, 7.0) == (3, 2, 2)


def test_supercell_repeats_for_tm23_ground_states(lammps):
    for symbol in ("Cu", "Zr", "Ti", "Mo"):
        gs = build.relax_ground_state(symbol, lammps.calculator([symbol]))
        repeats = build.supercell_repeats(gs.atoms.cell, 7.0)
        _check_minimal(gs.atoms.cell, 7.0, repeats)
        for r in itertools.product(*[range(1, x + 1) for x in repeats]):
            if r != repeats:  # every smaller choice leaves some vector short
                assert any(ri * li < 7.0 for ri, li in zip(r, gs.atoms.cell.lengths()))


def test_tm23_cell_removes_one_atom(cu_lammps):
    ground = cu_lammps.atoms
    cell, removed, repeats = build.tm23_cell(ground, 7.0, np.random.default_rng(0))
    assert repeats == (2, 2, 2)
    perfect = ground.repeat(repeats)
    assert len(cell) == len(perfect) - 1 == 31
    assert 0 <= removed < len(perfect)
    np.testing.assert_allclose(cell.cell.array, perfect.cell.array)
    np.testing.assert_allclose(cell.positions, np.delete(perfect.positions, removed, axis=0))
    assert cell.get_chemical_symbols() == ["Cu"] * 31
    assert len(ground) == 4  # the ground state is not modified


def test_tm23_cell_is_seeded(cu_lammps):
    ground = cu_lammps.atoms
    first = build.tm23_cell(ground, 7.0, np.random.default_rng(123))
    second = build.tm23_cell(ground, 7.0, np.random.default_rng(123))
    assert first[1] == second[1]
    np.testing.assert_array_equal(first[0].positions, second[0].positions)
    removed = {build.tm23_cell(ground, 7.0, np.random.default_rng(seed))[1] for seed in range(20)}
    assert len(removed) > 3  # the vacancy site does depend on the seed


def test_tm23_cell_hexagonal(lammps):
    gs = build.relax_ground_state("Zr", lammps.calculator(["Zr"]))
    cell, removed, repeats = build.tm23_cell(gs.atoms, 7.0, np.random.default_rng(5))
    assert repeats == (3, 3, 2)
    assert len(cell) == 2 * 18 - 1
    assert all(length >= 7.0 for length in cell.cell.lengths())
