"""validate_frames / check_file: every bad frame is a one-line DataError naming the source and the frame."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data.io import check_file, read_frames, write_frames
from mlffbench.data.validate import check_stress_plausible, validate_frames
from mlffbench.errors import DataError

SRC = "some/file.xyz"


def frame(symbol: str = "Cu", **info) -> Atoms:
    atoms = bulk(symbol, "fcc", 3.6, cubic=True).repeat(2)
    n = len(atoms)
    return fr.labelled(atoms, -3.5 * n, np.zeros((n, 3)), np.zeros(6), **info)


def frames(n: int = 3) -> list[Atoms]:
    return [frame() for _ in range(n)]


def bad(frames_, match: str, **kw):
    """validate_frames must raise a one-line DataError naming SRC and matching ``match``."""
    with pytest.raises(DataError) as err:
        validate_frames(frames_, SRC, **kw)
    message = str(err.value)
    assert message.startswith(f"{SRC}: ") and "\n" not in message
    assert match in message, message
    return message


def test_good_frames_pass_and_are_returned():
    good = frames()
    assert validate_frames(iter(good), SRC, require=("energy", "forces", "stress")) == good


def test_empty():
    bad([], "no frames")


def test_nan_forces():
    fs = frames()
    fs[2].calc.results["forces"][5, 1] = np.nan
    bad(fs, "frame 2: forces contain NaN/inf")


def test_inf_energy_and_nan_positions_and_inf_stress():
    fs = frames()
    fs[1].calc.results["energy"] = np.inf
    bad(fs, "frame 1: energy is not a finite number")
    fs = frames()
    fs[0].positions[3, 0] = np.nan
    bad(fs, "frame 0: positions contain NaN/inf")
    fs = frames()
    fs[0].calc.results["stress"][2] = -np.inf
    bad(fs, "frame 0: stress contains inf")


def test_nan_stress_needs_a_note():
    fs = frames(1)
    fs[0].calc.results["stress"][3] = np.nan
    bad(fs, "frame 0: stress contains NaN")
    fs[0].info["stress_note"] = "yz unknown"
    validate_frames(fs, SRC)


def test_missing_required_label():
    fs = frames()
    fs[1].calc.results.pop("energy")
    validate_frames(fs, SRC, require=())
    bad(fs, "frame 1: missing label(s) energy", require=("energy", "forces"))
    fs = [Atoms("Cu2", positions=[[0, 0, 0], [2, 0, 0]])]  # no calculator at all
    bad(fs, "frame 0: missing label(s) energy, forces")


def test_shape_mismatch():
    fs = frames()
    fs[1].calc.results["forces"] = np.zeros((len(fs[1]) - 1, 3))
    bad(fs, "frame 1: forces have shape (31, 3), expected (32, 3)")
    fs = frames()
    fs[0].calc.results["stress"] = np.zeros(5)
    bad(fs, "frame 0: stress has shape (5,)")
    fs = frames()
    fs[0].calc.results["stress"] = np.zeros((3, 3))  # a 3x3 tensor is fine
    validate_frames(fs, SRC)


def test_atoms_too_close():
    fs = frames()
    fs[2].positions[7] = fs[2].positions[3] + [0.1, 0.2, 0.0]
    message = bad(fs, "frame 2: atoms 3 and 7 are 0.224 Å apart")
    assert "min_distance 0.5" in message
    validate_frames(fs, SRC, min_distance=0.2)
    validate_frames(fs, SRC, min_distance=None)


def test_too_close_across_the_periodic_boundary():
    atoms = Atoms("Cu2", positions=[[0.05, 1, 1], [3.9, 1, 1]], cell=[4, 4, 4], pbc=True)
    bad([fr.labelled(atoms, 0.0, np.zeros((2, 3)), None)], "are 0.150 Å apart")


def test_zero_and_negative_volume_cells():
    fs = frames(1)
    fs[0].cell[2] = fs[0].cell[0]  # two equal cell vectors
    bad(fs, "frame 0: periodic cell has zero volume")
    fs = frames(1)
    fs[0].set_cell(-np.asarray(fs[0].cell), scale_atoms=False)
    bad(fs, "negative (left-handed cell) volume")
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])  # no cell, not periodic: fine
    validate_frames([fr.labelled(molecule, 0.0, np.zeros((2, 3)), None)], SRC)


def test_unknown_element_and_unexpected_elements():
    fs = frames()
    fs[1].numbers[4] = 0  # 'X', the dummy atom
    bad(fs, "frame 1: unknown chemical element (atomic number 0) at atom 4")
    fs = frames() + [frame("Ni")]
    validate_frames(fs, SRC, elements=["Cu", "Ni"])
    bad(fs, "frame 3: elements ['Ni'] are not among the expected ['Cu']", elements=["Cu"])


def test_check_file_reads_and_validates(tmp_path):
    fs = frames()
    fs[1].calc.results.pop("forces")
    path = tmp_path / "x.xyz"
    write_frames(path, fs)
    with pytest.raises(DataError, match=f"{path}: frame 1: missing label"):
        check_file(path)
    assert len(check_file(path, require=("energy",), elements=["Cu"])) == 3


def test_read_frames_validates_structure(tmp_path):
    fs = frames()
    fs[0].calc.results["forces"][0, 0] = np.nan
    path = tmp_path / "nan.xyz"
    write_frames(path, fs)
    with pytest.raises(DataError, match=f"{path}: frame 0: forces contain NaN/inf"):
        read_frames(path)
    fs = frames()
    fs[1].positions[1] = fs[1].positions[0]
    write_frames(path, fs)
    with pytest.raises(DataError, match=f"{path}: frame 1: atoms 0 and 1 are 0.000 Å apart"):
        read_frames(path)


def test_fast_enough_for_thousands_of_frames():
    atoms = bulk("Cu", "fcc", 3.6, cubic=True).repeat((3, 3, 2))  # 72 atoms
    atoms.rattle(0.05, seed=0)
    many = [fr.labelled(atoms, 0.0, np.zeros((len(atoms), 3)), np.zeros(6))] * 1000
    start = time.perf_counter()
    validate_frames(many, SRC)
    assert time.perf_counter() - start < 10.0


def test_stress_label_needs_a_fully_periodic_cell():
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    bad([fr.labelled(molecule, 0.0, np.zeros((2, 3)), np.zeros(6))],
        "frame 0: stress label on a non-periodic frame (a molecule has no stress), pbc F F F")
    slab = frame()
    slab.pbc = [True, True, False]
    bad([slab], "frame 0: stress label on a partly periodic frame, pbc T T F; stress needs a fully periodic cell")
    slab.calc.results.pop("stress")
    validate_frames([slab], SRC)


def test_pbc_must_be_the_same_for_every_frame():
    fs = frames()
    fs[1].calc.results.pop("stress")
    fs[1].pbc = [True, True, False]
    bad(fs, "frame 1: pbc T T F differs from frame 0's T T T")


def test_implausible_stress_where_the_format_fixes_the_unit():
    fs = frames(2)
    fs[1].calc.results["stress"][0] = -2.0  # eV/Å³: -320 GPa
    with pytest.raises(DataError, match=r"frame 1: stress component -320 GPa is implausible \(\|σ\| > 160 GPa\)$"):
        check_stress_plausible(fs, SRC)
    check_stress_plausible(fs[:1], SRC)
