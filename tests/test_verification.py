"""mlffbench.verification: each check passes on a correct calculator (ASE's EMT) and fails, with its number, on a
calculator broken in exactly the way the check is for."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from mlffbench.verification import run_checks


class Broken(Calculator):
    """EMT with one defect: forces scaled (non-conservative), stress sign flipped, an energy that depends on the
    atom order or on where the cell sits, or noise on every call."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, defect: str):
        super().__init__()
        self.defect, self.emt, self.rng = defect, EMT(), np.random.default_rng(0)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms.copy()
        a.calc = self.emt
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
        if self.defect == "forces":
            f = 1.1 * f
        elif self.defect == "stress":
            s = -s
        elif self.defect == "order":  # the energy depends on which atom comes first
            e += 1e-2 * float(a.positions[0] @ [1.0, 2.0, 3.0])
        elif self.defect == "noise":  # like a threaded float32 sum: a few ulps that differ call to call
            e += 1e-6 * self.rng.normal()
            f = f + 1e-6 * self.rng.normal(size=f.shape)
        self.results = {"energy": e, "free_energy": e, "forces": f, "stress": s}


def alloy():
    atoms = bulk("Cu", "fcc", 3.6, cubic=True).repeat(2)
    atoms[3].symbol = "Ni"
    atoms.rattle(0.05, seed=1)
    return atoms


def by_name(checks):
    return {c.name: c for c in checks}


@pytest.fixture(scope="module")
def emt_checks():
    return by_name(run_checks(EMT(), alloy(), seed=0))


def test_a_correct_potential_passes_every_check(emt_checks):
    assert {n: c.status for n, c in emt_checks.items() if c.status != "pass"} == {}
    assert emt_checks["forces_fd"].value < 1e-5 and emt_checks["determinism"].value == 0.0


@pytest.mark.parametrize("defect,check", [("forces", "forces_fd"), ("stress", "stress_fd"),
                                          ("order", "permutation"), ("noise", "determinism")])
def test_each_defect_fails_its_check(defect, check, emt_checks):
    checks = by_name(run_checks(Broken(defect), alloy(), seed=0))
    assert checks[check].status == "fail" and checks[check].value > checks[check].tolerance
    assert emt_checks[check].status == "pass"


def test_a_hard_cutoff_fails_smoothness_and_a_molecule_has_no_stress_check():
    atoms = bulk("Cu", "fcc", 3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    # ASE's Lennard-Jones without smoothing: energy shifted to 0 at rc, the force jumps there (by 0.19 eV/Å)
    hard = by_name(run_checks(LennardJones(sigma=2.3, epsilon=0.4, rc=3.5, smooth=False), atoms, seed=0))
    assert hard["smoothness_dimer"].status == "fail" and "force kink" in hard["smoothness_dimer"].detail
    assert "3.4" in hard["smoothness_dimer"].detail or "3.5" in hard["smoothness_dimer"].detail  # where it jumps
    smooth = by_name(run_checks(LennardJones(sigma=2.3, epsilon=0.4, rc=3.5, ro=2.5, smooth=True), atoms, seed=0))
    assert smooth["smoothness_dimer"].status == "pass"
    mol = by_name(run_checks(EMT(), molecule("CH3CH2OH"), seed=0))
    assert mol["stress_fd"].status == "n/a" and mol["extensivity"].status == "pass"
    assert "two copies" in mol["extensivity"].detail
