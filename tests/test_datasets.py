"""The data set as the unit of a run: the user's files (groups, units, splits, several species) through planning,
data jobs, fit-and-score jobs, the store and the report; bad input refused before anything is written."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlffbench import datasets
from mlffbench import frames as fr
from mlffbench.config import load_config
from mlffbench.data import splits
from mlffbench.data.io import write_frames
from mlffbench.engine.runner import MainJob
from mlffbench.errors import ConfigError, DataError

import cli_helpers
from cli_helpers import one_line_error

ACAC = Path(__file__).resolve().parents[2] / "shared" / "data" / "botnet" / "acac"


def alloy_frames(n: int, seed: int, config_type: str, elements=("Cu", "Au")) -> list:
    """EMT-labelled random fcc alloys (32 atoms), rattled and strained: energy, forces and stress."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", 3.7, cubic=True).repeat(2)
        atoms.symbols[:] = rng.choice(elements, len(atoms))
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        out.append(fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(),
                               config_type=config_type))
    return out


@pytest.fixture(scope="module")
def alloy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("alloy")
    write_frames(folder / "bulk.xyz", alloy_frames(10, 0, "bulk") + alloy_frames(10, 1, "strained"))
    return folder


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return cli_helpers.cli(*args, cwd=cwd, timeout=600)  # whole runs on shared cores


@pytest.fixture(scope="module")
def data_run(alloy, tmp_path_factory):
    """`mlffbench run --data` on a two-group Cu-Au file with the baseline and the oracle (EMT as labeler)."""
    run_dir = tmp_path_factory.mktemp("run") / "alloy"
    result = cli("run", "--data", alloy / "bulk.xyz", "--models", "mean_energy", "--name", "CuAu",
                 "--transfer", "bulk:strained", "--run-dir", run_dir, "--executor", "inprocess", "--no-progress")
    return run_dir, result


def test_run_data_prints_tables_per_group_and_element(data_run):
    run_dir, result = data_run
    assert result.returncode == 0, result.stderr
    assert f"Report: {run_dir}" in result.stdout and "summary.txt" in result.stdout  # the short end-of-run summary
    out = (run_dir / "summary.txt").read_text()  # ... and every full table
    assert "CuAu" in out and "bulk 10, strained 10" in out  # the data-set table: frames per group
    assert "group bulk" in out and "group strained" in out  # per-group rows
    assert "element Au" in out and "element Cu" in out  # per-element rows (TEA)
    assert "Learning curves" in out and "Transfer (group hold-out)" in out


def test_split_is_seeded_per_group_and_recorded(data_run, alloy):
    run_dir, _ = data_run
    conn = sqlite3.connect(run_dir / "run.sqlite")
    rows = {name: json.loads(idx) for name, idx in conn.execute("SELECT name, indices FROM splits")}
    results = [json.loads(r) for (r,) in conn.execute(
        "SELECT result FROM jobs WHERE kind='fit_score' AND name LIKE 'accuracy:%'")]
    conn.close()
    (acc,) = results
    recorded = rows[acc["split"]["name"]]
    frames = datasets.load({"folder": "datasets/CuAu"}, run_dir)
    # 10 % of each group of 10 frames is the test set, drawn with the run's seed: the same split again
    assert len(recorded["tests"]["test"]) == 2 and len(recorded["train"]) == 18
    assert sorted({frames[i].info["group"] for i in recorded["tests"]["test"]}) == ["bulk", "strained"]
    again = splits.random_by_group(frames, 0.1, seed=0)
    assert again.test.tolist() == recorded["tests"]["test"] and again.train.tolist() == recorded["train"]
    assert splits.random_by_group(frames, 0.1, seed=1).test.tolist() != recorded["tests"]["test"]
    assert set(acc["tests"]["test"]["by_element"]) == {"Au", "Cu"}
    assert set(acc["tests"]["test"]["by_group"]) == {"bulk", "strained"}
    holdout = rows["holdout_bulk"]
    assert len(holdout["train"]) == 10 and len(holdout["tests"]["strained"]) == 10


def test_rerun_resumes_and_report_has_a_section_per_data_set(data_run, alloy):
    run_dir, _ = data_run
    again = cli("run", "--data", alloy / "bulk.xyz", "--models", "mean_energy", "--name", "CuAu",
                "--transfer", "bulk:strained", "--run-dir", run_dir, "--executor", "inprocess", "--no-progress")
    assert again.returncode == 0, again.stderr
    conn = sqlite3.connect(run_dir / "run.sqlite")
    assert {a for (a,) in conn.execute("SELECT attempts FROM jobs")} == {1}  # nothing ran twice
    conn.close()
    report = cli("report", run_dir)
    assert report.returncode == 0, report.stderr
    html = (run_dir / "report" / "report.html").read_text()
    assert "Data set: CuAu" in html and 'id="element-filter"' in html and 'data-elements="Au Cu"' in html
    assert "Per element" in html and "Per group" in html


def test_changed_file_is_refused_never_used(alloy, tmp_path):
    data = tmp_path / "a.xyz"
    data.write_bytes((alloy / "bulk.xyz").read_bytes())
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": [{"source": "files", "name": "a", "files": ["a.xyz"]}],
                                   "models": [{"name": "mean_energy"}], "execution": {"executor": "inprocess"}}))
    job = MainJob(load_config(cfg), tmp_path / "run")
    planned = job.plan()
    (data_job,) = [j for j in planned if j.kind == "data"]
    write_frames(data, alloy_frames(3, 7, "other"))  # the user edits the file after planning
    with pytest.raises(DataError, match="changed since the run was planned"):
        datasets.materialise(data_job.inputs, tmp_path / "run")
    # a canonical copy changed after its data job: every reader refuses it
    data.write_bytes((alloy / "bulk.xyz").read_bytes())
    datasets.materialise(data_job.inputs, tmp_path / "run")
    copy = tmp_path / "run" / "datasets" / "a" / "frames.extxyz"
    copy.write_text(copy.read_text().replace("strained", "strainex", 1))
    with pytest.raises(DataError, match="changed since its data job wrote it"):
        datasets.load({"folder": "datasets/a"}, tmp_path / "run")


@pytest.mark.parametrize("case, needles", [
    ("glob", ["matches no file", "nothing*.xyz"]),
    ("directory", ["is a directory"]),
    ("test-elements", ["elements ['Ni']", "no training file"]),
    ("mixed-periodic", ["non-periodic", "cannot mix"]),
    ("missing-group", ["tasks.transfer.train", "'hot'"]),
])
def test_bad_input_is_one_line_and_writes_nothing(alloy, tmp_path, case, needles):
    run_dir = tmp_path / "never"
    args = ["--data", alloy / "bulk.xyz"]
    if case == "glob":
        args = ["--data", tmp_path / "nothing*.xyz"]
    elif case == "directory":
        args = ["--data", alloy]
    elif case == "test-elements":
        write_frames(tmp_path / "t.xyz", alloy_frames(2, 3, "x", ("Cu", "Ni")))
        args += ["--test", tmp_path / "t.xyz"]
    elif case == "mixed-periodic":
        mol = molecule("H2O")
        mol.calc = EMT()
        write_frames(tmp_path / "m.xyz", [fr.labelled(mol, mol.get_potential_energy(), mol.get_forces(), None)])
        args += [tmp_path / "m.xyz"]
    elif case == "missing-group":
        args += ["--transfer", "hot:bulk"]
    one_line_error(cli("run", *args, "--models", "mean_energy", "--run-dir", run_dir), *needles)
    assert not run_dir.exists()


def test_planning_refuses_what_cannot_run_with_a_reason(alloy, tmp_path):
    """Observables need a reference calculator and one element; the oracle model needs a labeler: n/a, no job."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "datasets": [{"source": "files", "name": "a", "files": [str(alloy / "bulk.xyz")]}],
        "models": [{"name": "labeler"}, {"name": "mean_energy"}],
        "tasks": {"accuracy": True, "observables": {"names": ["eos"]}, "size_extensivity": {}}}))
    job = MainJob(load_config(cfg), tmp_path / "never")
    names = {j.name for j in job.plan()}
    assert names == {"data:a", "accuracy:a:mean_energy"}
    reasons = {(x["task"], x["model"]): x["reason"] for x in job.not_run}
    assert "no reference calculator" in reasons[("observables", "*")]
    assert "comes from files" in reasons[("size_extensivity", "*")]
    assert "no reference calculator" in reasons[("accuracy", "labeler")]


def test_generated_and_files_data_sets_in_one_run_keep_their_own_splits(alloy, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"elements": ["Cu"], "frames_per_temperature": 10, "labeler": "emt"},
        "datasets": [{"source": "files", "name": "alloy", "files": [str(alloy / "bulk.xyz")],
                      "split": {"kind": "random", "test_fraction": 0.3}}],
        "split": {"test_last": 2},
        "models": [{"name": "mean_energy"}]}))
    planned = datasets.plan(load_config(cfg))
    assert [(d.name, d.base_split) for d in planned] == [
        ("Cu", {"kind": "last", "test_last": 2}), ("alloy", {"kind": "random", "test_fraction": 0.3})]
    cu, alloy_set = planned
    assert cu.element == "Cu" and alloy_set.element is None and alloy_set.elements == ("Au", "Cu")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"datasets": [{"source": "files", "name": "Cu", "files": [str(alloy / "bulk.xyz")]},
                                                {"source": "generate", "elements": ["Cu"], "labeler": "emt"}]}))
    with pytest.raises(ConfigError, match=r"data-set name\(s\) \['Cu'\] used twice"):
        datasets.plan(load_config(bad))


@pytest.mark.skipif(not ACAC.is_dir(), reason="../shared/data/botnet/acac not present")
def test_molecule_test_files_without_forces_score_energies(tmp_path):
    """acac: train on 300 K MD, test on the proton-transfer path (energies only): energies scored, no stress."""
    train = tmp_path / "train.xyz"
    train.write_text("".join(_xyz_frames(ACAC / "train_300K.xyz", 12)))
    run_dir = tmp_path / "run"
    result = cli("run", "--data", train, "--test", ACAC / "test_H_transfer.xyz", "--models", "mean_energy",
                 "--name", "acac", "--run-dir", run_dir, "--executor", "inprocess", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "test_H_transfer.xyz has energies only" in (run_dir / "summary.txt").read_text()
    conn = sqlite3.connect(run_dir / "run.sqlite")
    (raw,) = conn.execute("SELECT result FROM jobs WHERE name='accuracy:acac:mean_energy'").fetchone()
    conn.close()
    test = json.loads(raw)["tests"]["test"]
    assert test["n_test"] == 15 and test["overall"]["energy_per_atom.n"] == 15
    assert test["overall"]["forces.n"] == 0 and test["overall"]["stress.n"] == 0


def _xyz_frames(path: Path, n: int) -> list[str]:
    lines = path.read_text().splitlines(keepends=True)
    atoms = int(lines[0])
    return lines[: n * (atoms + 2)]


def test_compare_ranks_only_runs_on_the_same_frames_and_split(data_run, alloy, tmp_path):
    run_dir, _ = data_run
    same = cli("compare", run_dir, run_dir, "--out", tmp_path / "same.html")
    assert same.returncode == 0 and "ranked by the mean force % error over the 1 data set" in same.stdout
    write_frames(tmp_path / "other.xyz", alloy_frames(10, 9, "bulk"))
    other = tmp_path / "other"
    assert cli("run", "--data", tmp_path / "other.xyz", "--models", "mean_energy", "--name", "CuAu", "--run-dir",
               other, "--executor", "inprocess", "--no-progress").returncode == 0
    result = cli("compare", run_dir, other, "--out", tmp_path / "c.html")
    assert result.returncode == 0, result.stderr
    assert "not ranked: these rows share no data set with the same frames and split" in result.stdout


def test_crash_test_runs_from_test_frames_and_records_failure(alloy, tmp_path):
    """No reference needed: MD of the trained model from test frames; a failure is a result (time, last frame)."""
    def crash_run(name: str, settings: dict):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({
            "datasets": [{"source": "files", "name": "a", "files": [str(alloy / "bulk.xyz")], "labeler": "emt"}],
            "models": [{"name": "labeler"}], "execution": {"executor": "inprocess"},
            "tasks": {"accuracy": True, "crash_test": {"frames": 2, "steps": 100, "temperature_K": 300, **settings}}}))
        jobs = MainJob(load_config(cfg), tmp_path / name).run(progress=False)
        (crash,) = [j for j in jobs if j.name.startswith("crash_test:")]
        assert crash.status == "done", crash.error
        return crash.result

    ok = crash_run("ok", {})
    assert [r["survived"] for r in ok["runs"]] == [True, True] and ok["runs"][0]["simulated_ps"] == 0.1
    strict = crash_run("strict", {"max_force": 1e-4})  # EMT forces on rattled cells exceed this at once
    run = strict["runs"][0]
    assert not run["survived"] and run["reason"].startswith("max force") and run["time_to_failure_ps"] == 0.0
    assert (tmp_path / "strict" / run["last_good_frame"]).is_file()


def test_reference_structures_are_loaded_and_checked(tmp_path):
    """A data set's reference structures (the built-in HEA's ideal cells for the EOS) load through the package
    API the observables task uses, and a changed file is a DataError naming it."""
    import ase.io
    from ase.build import bulk

    from mlffbench import datasets
    from mlffbench.datasets.base import write_manifest
    from mlffbench.errors import DataError

    folder = tmp_path / "datasets" / "alloy"
    folder.mkdir(parents=True)
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("Ni", "fcc", a=3.5, cubic=True)]
    ase.io.write(folder / "frames.extxyz", cells, format="extxyz")
    ase.io.write(folder / "ideal.extxyz", cells, format="extxyz")
    write_manifest(folder, "alloy", [("frames.extxyz", 2)], "config_type", ["a", "b"], structures="ideal.extxyz")
    got = datasets.load_structures({"folder": "datasets/alloy"}, tmp_path)
    assert [a.get_chemical_formula() for a in got] == ["Cu4", "Ni4"]
    (folder / "ideal.extxyz").write_text((folder / "ideal.extxyz").read_text().replace("3.6", "3.7", 1))
    with pytest.raises(DataError, match="ideal.extxyz"):
        datasets.load_structures({"folder": "datasets/alloy"}, tmp_path)
