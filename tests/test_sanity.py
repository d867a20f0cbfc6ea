"""Valid input is accepted (declared high-pressure stress); what silently flatters is caught before any job
(``mlffbench.data.sanity``): test frames repeating training frames, per-atom energies, force sums, force units."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

from mlffbench import frames as fr
from mlffbench.config import FilesConfig
from mlffbench.data import sanity
from mlffbench.data.io import read_frames, write_frames
from mlffbench.datasets import files
from mlffbench.errors import ConfigError, DataError

from cli_helpers import cli, one_line_error




def labelled(atoms, calc, group):
    atoms.calc = calc
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info["config_type"] = group
    return atoms


def emt_cu(n=6, reps=(1, 1, 1), group="md", seed=0):
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(reps)
        atoms.rattle(0.05, seed=seed + k)
        out.append(labelled(atoms, EMT(), group))
    return out


@pytest.fixture(scope="module")
def w_sizes():
    """bcc W cells of 2, 16 and 54 atoms labelled by the shipped W potential (LAMMPS): energies of about
    -11 eV/atom, so per-cell and per-atom energies differ by the factor N (EMT's are near zero per atom)."""
    from mlffbench.data.labelers import make_labeler

    calc = make_labeler("lammps").calculator(["W"])
    out = []
    for k, reps in enumerate([1, 1, 1, 2, 2, 2, 3, 3]):
        atoms = bulk("W", "bcc", a=3.165, cubic=True).repeat(reps)
        atoms.rattle(0.05, seed=k)
        out.append(labelled(atoms, calc, f"n{len(atoms)}"))
    return out


def per_atom(frames):
    out = []
    for f in frames:
        g = f.copy()
        g.calc = SinglePointCalculator(g, energy=f.calc.results["energy"] / len(f), forces=f.calc.results["forces"])
        out.append(g)
    return out


# --- item 4: a declared stress unit is never second-guessed ------------------------------------------


def test_declared_bar_accepts_eos_frames_beyond_1000_gpa_end_to_end(tmp_path):
    """FitSNAP-style file: stress in bar, compression positive, an EOS group compressed past 1000 GPa. Declared, it
    plans, its data job writes the canonical copy and every job can load it; undeclared, the guard names the flag."""
    eos = [labelled(bulk("Cu", "fcc", a=3.6 * s, cubic=True), EMT(), "eos") for s in np.linspace(0.66, 1.04, 6)]
    frames = eos + emt_cu(4)
    truth = [f.calc.results["stress"].copy() for f in frames]  # eV/Å³, ASE sign
    assert max(np.abs(t).max() for t in truth) / GPa > 1000
    for f in frames:
        f.info["stress"] = -f.calc.results["stress"] / GPa * 1e4  # bar, compression positive
        f.calc = SinglePointCalculator(f, energy=f.calc.results["energy"], forces=f.calc.results["forces"])
    path = tmp_path / "Cu_fitsnap.xyz"
    write_frames(path, frames)
    with pytest.raises(DataError, match="looks like bar.*--stress-unit bar"):
        read_frames(path)
    entry = FilesConfig(name="cu", files=[str(path)], stress_unit="bar", stress_convention="compressive")
    ds = files.plan(entry, seed=0)
    files.materialise(ds.data_inputs, tmp_path / "run" / "datasets" / "cu")
    from mlffbench.datasets import load

    copy = load({"folder": "datasets/cu"}, tmp_path / "run")  # as every job reads it
    np.testing.assert_allclose([fr.label(f, "stress") for f in copy], truth, rtol=1e-6, atol=1e-9)


# --- item 5a: duplicates --------------------------------------------------------------------------------


def test_duplicates_between_train_and_test_refused_with_counts_per_group(tmp_path):
    train = emt_cu(4, group="md") + emt_cu(3, reps=(2, 1, 1), group="big", seed=10)
    repeat = [f.copy() for f in (train[1], train[5], train[6])]
    for r, f in zip(repeat, (train[1], train[5], train[6])):
        r.calc = SinglePointCalculator(r, **f.calc.results)
    repeat[0].positions[0] += repeat[0].cell[2]  # wrapped elsewhere: still the same frame
    write_frames(tmp_path / "train.xyz", train)
    write_frames(tmp_path / "test.xyz", emt_cu(2, seed=50) + repeat)
    entry = FilesConfig(name="cu", files=[str(tmp_path / "train.xyz")], test_files=[str(tmp_path / "test.xyz")])
    with pytest.raises(DataError, match=r"^cu: 3 of 5 test frames repeat training frames .* by group: big 2, md 1; "
                                        r".*--allow-duplicates \(allow_duplicates: true"):
        files.plan(entry, seed=0)
    entry.allow_duplicates = True
    assert any("3 of 5 test frames repeat" in n for n in files.plan(entry, seed=0).notes)


def test_near_duplicates_within_tolerance_only():
    (a,) = emt_cu(1)
    close, apart = a.copy(), a.copy()
    close.positions += 5e-7
    apart.positions[3] += [2e-6, 0, 0]
    assert sanity.duplicates([a], [close, apart]) == [(0, 0)]


def test_byte_identical_copy_under_another_name_is_refused(tmp_path):
    write_frames(tmp_path / "a.xyz", emt_cu(5))
    shutil.copyfile(tmp_path / "a.xyz", tmp_path / "b.xyz")
    result = cli("run", "--data", tmp_path / "a.xyz", "--test", tmp_path / "b.xyz", "--models", "mean_energy",
                 "--run-dir", tmp_path / "run")
    one_line_error(result, "5 of 5 test frames repeat training frames", f"every frame of {tmp_path / 'b.xyz'} "
                   f"repeats {tmp_path / 'a.xyz'}", "--allow-duplicates")
    assert not (tmp_path / "run").exists()


def test_repeats_inside_training_are_a_warning(tmp_path, capsys):
    frames = emt_cu(5)
    write_frames(tmp_path / "a.xyz", frames + frames[:2])
    write_frames(tmp_path / "t.xyz", emt_cu(2, seed=50))
    ds = files.plan(FilesConfig(name="cu", files=[str(tmp_path / "a.xyz")], test_files=[str(tmp_path / "t.xyz")]),
                    seed=0)
    assert any("cu: 2 training frames repeat other training frames" in n for n in ds.notes)
    assert "mlffbench: warning: cu: 2 training frames repeat" in capsys.readouterr().err


# --- item 5b: per-atom energies -------------------------------------------------------------------------


def test_per_atom_energies_are_an_error_and_declared_are_converted(tmp_path, w_sizes):
    path = tmp_path / "w.xyz"
    write_frames(path, per_atom(w_sizes))
    with pytest.raises(DataError, match=r"w\.xyz: energies look per atom.*--energy per-atom \(energy: per-atom"):
        files.plan(FilesConfig(name="w", files=[str(path)]), seed=0)
    ds = files.plan(FilesConfig(name="w", files=[str(path)], energy="per-atom"), seed=0)
    assert ds.provenance["energy_converted_from_per_atom"] == [str(path)]
    files.materialise(ds.data_inputs, tmp_path / "run" / "datasets" / "w")
    from mlffbench.datasets import load

    copy = load({"folder": "datasets/w"}, tmp_path / "run")
    np.testing.assert_allclose([fr.label(f, "energy") for f in copy], [f.calc.results["energy"] for f in w_sizes],
                               rtol=1e-9)
    assert copy[0].info["energy_note"].startswith("per-atom energy in the source")


def test_per_cell_energies_of_varying_size_pass(tmp_path, w_sizes):
    write_frames(tmp_path / "w.xyz", w_sizes)
    assert sanity.per_atom_files([("w.xyz", read_frames(tmp_path / "w.xyz"))]) == []


def test_per_atom_file_beside_per_cell_files_is_an_error(tmp_path, w_sizes):
    write_frames(tmp_path / "cells.xyz", w_sizes)
    write_frames(tmp_path / "atoms16.xyz", per_atom(w_sizes[3:6]))  # one size: only the other file tells
    result = cli("check", tmp_path / "cells.xyz", tmp_path / "atoms16.xyz")
    assert result.returncode == 2
    line = [x for x in result.stderr.splitlines() if "error" in x]
    assert len(line) == 1 and f"{tmp_path / 'atoms16.xyz'}: energies look per atom" in line[0]
    assert f"energy: {{{tmp_path / 'atoms16.xyz'}: per-atom}}" in line[0]


def test_energy_key_is_validated():
    with pytest.raises(ConfigError, match=r"d\.energy: 'per-molecule' is not one of per-cell, per-atom"):
        FilesConfig(name="x", files=["a.xyz"], energy="per-molecule").check("d")


# --- items 5c, 5d: forces -------------------------------------------------------------------------------


def test_force_sum_far_from_zero_is_a_warning_naming_frames():
    frames = emt_cu(3, reps=(2, 2, 2))
    frames[1].calc.results["forces"][:8] += 0.2  # 1.6 eV/Å net on the cell: not these atoms' forces
    (note,) = sanity.force_warnings("cu.xyz", frames)
    assert note.startswith("cu.xyz: in 1 of 3 periodic frames the forces sum far from zero") and "frames 1 (" in note


def test_forces_in_kcal_per_mol_are_a_warning_naming_the_unit():
    frames = []
    for k in range(3):  # hot, strongly displaced cells: a few eV/Å, real; read as kcal/mol/Å they are 23x
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        atoms.rattle(0.12, seed=k)
        frames.append(labelled(atoms, EMT(), "hot"))
    assert sanity.force_warnings("cu.xyz", frames) == []
    for f in frames:
        f.calc.results["forces"] = f.calc.results["forces"] / 0.0433641  # eV/Å -> kcal/mol/Å
    (note,) = sanity.force_warnings("cu.xyz", frames)
    assert note.startswith("cu.xyz: the largest force is above 50 eV/Å in 3 of 3 frames") and "kcal/mol/Å" in note


# --- item 7: check names the CLI flag -------------------------------------------------------------------


def test_check_unknown_format_names_the_format_flag(tmp_path):
    path = tmp_path / "file.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n0000")
    one_line_error(cli("check", path), "file.png: cannot tell the file format", "--format")


def test_run_data_flags_reach_the_files_entry():
    from mlffbench.cli import build_parser, data_config

    args = build_parser().parse_args(["run", "--data", "a.xyz", "--energy", "per-atom", "--allow-duplicates"])
    (entry,) = data_config(args).datasets
    assert (entry.energy, entry.allow_duplicates) == ("per-atom", True)
