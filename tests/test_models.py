"""The model contract and its two reference members (mlffbench.models), with real LAMMPS / EMT labels."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data.labelers import make_labeler
from mlffbench.errors import ConfigError, MlffbenchError
from mlffbench.models.base import Potential, load_potential
from mlffbench.models.reference import LabelerModel, MeanEnergyModel, MeanEnergyPotential
from mlffbench.models.registry import get_model_class, make_model, model_names


def rattled(symbol="Cu", seed=0, repeat=(2, 2, 2), amplitude=0.05) -> Atoms:
    atoms = bulk(symbol, "fcc", a={"Cu": 3.615, "Ni": 3.52}[symbol], cubic=True).repeat(repeat)
    atoms.rattle(amplitude, seed=seed)
    return atoms


def labelled_frames(n=4, labeler="lammps"):
    lab = make_labeler(labeler)
    return lab.label([rattled(seed=i) for i in range(n)])


def test_registry():
    assert {"acegp", "labeler", "mean_energy", "mace", "nequip", "chgnet"} <= set(model_names())
    assert model_names() == sorted(model_names())
    assert isinstance(make_model("labeler"), LabelerModel)
    assert get_model_class("mean_energy") is MeanEnergyModel
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        get_model_class("nope")


@pytest.mark.parametrize("labeler", ["lammps", "emt"])
def test_labeler_model_reproduces_labels(tmp_path, labeler):
    frames = labelled_frames(3, labeler)
    pot = make_model("labeler").fit(frames, None, {"labeler": {"name": labeler}}, tmp_path)
    predicted = pot.predict(frames)
    for p, f in zip(predicted, frames):
        assert fr.label(p, "energy") == pytest.approx(fr.label(f, "energy"), abs=1e-10)
        np.testing.assert_allclose(fr.label(p, "forces"), fr.label(f, "forces"), atol=1e-10)
        np.testing.assert_allclose(fr.label(p, "stress"), fr.label(f, "stress"), atol=1e-12)
        assert p.info == f.info  # metadata kept


def test_labeler_model_needs_spec(tmp_path):
    with pytest.raises(MlffbenchError, match="params.labeler"):
        LabelerModel().fit(labelled_frames(1), None, {}, tmp_path)


@pytest.mark.parametrize(
    "family, params",
    [("labeler", {"labeler": {"name": "lammps"}}), ("labeler", {"labeler": {"name": "emt"}}), ("mean_energy", {})],
)
def test_save_load_round_trip(tmp_path, family, params):
    train = labelled_frames(3)
    test = [rattled(seed=10 + i) for i in range(2)]
    pot = make_model(family).fit(train, None, params, tmp_path)
    path = tmp_path / "potential.json"
    pot.save(path)
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    loaded = load_potential(path)
    assert type(loaded) is type(pot) and loaded.family == family
    assert loaded.state() == pot.state()
    for a, b in zip(pot.predict(test), loaded.predict(test)):
        assert fr.label(a, "energy") == fr.label(b, "energy")
        np.testing.assert_array_equal(fr.label(a, "forces"), fr.label(b, "forces"))
        np.testing.assert_array_equal(fr.label(a, "stress"), fr.label(b, "stress"))
    pot.save(path)  # overwriting an existing file works and still round-trips
    assert load_potential(path).state() == pot.state()


def test_mean_energy_recovers_per_element_energies(tmp_path):
    e_true = {"Cu": -3.54, "Ni": -4.45}
    rng = np.random.default_rng(1)
    frames = []
    for i in range(12):
        atoms = rattled("Cu", seed=i)
        n_ni = int(rng.integers(0, len(atoms) + 1))
        symbols = np.array(atoms.get_chemical_symbols())
        symbols[rng.permutation(len(atoms))[:n_ni]] = "Ni"
        atoms.set_chemical_symbols(list(symbols))
        energy = sum(e_true[s] for s in atoms.get_chemical_symbols())
        frames.append(fr.labelled(atoms, energy, rng.normal(size=(len(atoms), 3)), rng.normal(size=6)))
    counts = {frozenset(f.get_chemical_symbols()) for f in frames}
    assert len(counts) > 1  # compositions vary, so the least squares problem is well posed
    pot = MeanEnergyModel().fit(frames, None, {}, tmp_path)
    assert set(pot.energy_per_element) == {"Cu", "Ni"}
    for el, e in e_true.items():
        assert pot.energy_per_element[el] == pytest.approx(e, abs=1e-9)
    for p, f in zip(pot.predict(frames), frames):
        assert fr.label(p, "energy") == pytest.approx(fr.label(f, "energy"), abs=1e-9)
        assert not np.any(fr.label(p, "forces")) and not np.any(fr.label(p, "stress"))


def test_mean_energy_errors(tmp_path):
    with pytest.raises(MlffbenchError, match="empty training set"):
        MeanEnergyModel().fit([], None, {}, tmp_path)
    pot = MeanEnergyPotential({"Cu": -3.5})
    with pytest.raises(MlffbenchError, match="Ni"):
        pot.evaluate(rattled("Ni"))


def test_potential_is_an_ase_calculator(tmp_path):
    atoms = rattled(seed=3)
    reference = atoms.copy()
    reference.calc = make_labeler("lammps").calculator(["Cu"])
    pot = LabelerModel().fit([], None, {"labeler": {"name": "lammps"}}, tmp_path)
    assert isinstance(pot, Potential)
    atoms.calc = pot
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), reference.get_stress(), atol=1e-14)
    # the calculator follows the atoms when they move
    atoms.positions[0] += 0.05
    reference.positions[0] += 0.05
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-12)

    mean = MeanEnergyPotential({"Cu": -3.5})
    atoms = rattled()
    atoms.calc = mean
    assert atoms.get_potential_energy() == pytest.approx(-3.5 * len(atoms))
    assert atoms.get_forces().shape == (len(atoms), 3) and not atoms.get_forces().any()
    assert atoms.get_stress().shape == (6,) and not atoms.get_stress().any()
