"""The command line as a user meets it: real processes, exit codes, one-line errors, printed tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlffbench.data.io import write_frames
from mlffbench.engine.store import RunStore

from cli_helpers import cli

SUBCOMMANDS = ("run", "generate", "status", "elements", "potentials", "check")
TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"elements": ["Cu"], "frames_per_temperature": 10, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
}


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("mlffbench: error:"), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# -- help -------------------------------------------------------------------------------------------


def test_console_script_help():
    script = Path(sys.executable).parent / "mlffbench"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for sub in SUBCOMMANDS:
        assert sub in result.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(sub):
    result = cli(sub, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: mlffbench {sub}")
    assert result.stderr == ""


# -- bad input: exit 2, one line naming file and key ------------------------------------------------------


@pytest.mark.parametrize(
    "config, needles",
    [
        ({"data": {"framez": 3}}, ["data.framez", "unknown key"]),
        ({"data": {"frames_per_temperature": "many"}}, ["data.frames_per_temperature", "many"]),
        ({"data": {"min_length": -1}}, ["data.min_length", "-1"]),
        ({"data": {"interval_fs": 12, "timestep_fs": 5}}, ["data.interval_fs", "timestep_fs"]),
        ({"models": [{"name": "nope"}]}, ["models[0].name", "nope"]),
        ({"split": {"test_last": 1.5}}, ["split.test_last"]),
        ({"models": [{"name": "mean_energy"}, {"name": "mean_energy"}]}, ["models", "unique"]),
        ({"models": [{"name": "acegp", "params": {"n_mx": 4}}]}, ["models[0].params", "n_mx"]),
        ({"models": [{"name": "acegp", "params": {"cutoff": -5}}]}, ["models[0].params", "cutoff"]),
        ({"models": [{"name": "acegp", "tasks": ["acuracy"]}]}, ["models[0].tasks[0]", "acuracy"]),
        ({"tasks": {"transfer": {"train": "hot"}}}, ["tasks.transfer.train", "hot"]),
        ({"tasks": {"transfer": {"test": []}}}, ["tasks.transfer.test"]),
        ({"tasks": {"learning_curve": {"sizes": [5]}}}, ["tasks.learning_curve.sizes"]),
        ({"tasks": {"learning_curve": {"sizes": [10, 500]}}}, ["tasks.learning_curve.sizes", "500"]),
        ({"tasks": {"learning_curve": {"sweep": {"l_max": [1, 2], "n_max": [3]}}}}, ["tasks.learning_curve.sweep"]),
        ({"tasks": {"learning_curve": {"sizes": [5, 10], "sweep": {"l_max": [1, "x"]}}},
          "models": [{"name": "acegp"}]}, ["learning_curve.sweep", "l_max"]),
        ({"execution": {"executor": "spark"}}, ["execution.executor", "spark"]),
        (["a", "list"], ["top level"]),
    ],
    ids=["unknown-key", "wrong-type", "impossible-value", "interval", "unknown-model", "bad-fraction",
         "duplicate-label", "param-typo", "param-value", "unknown-task", "transfer-label", "transfer-no-test", "one-size",
         "size-exceeds-pool", "two-sweeps", "sweep-value", "executor", "not-a-mapping"],
)
def test_bad_config(tmp_path, config, needles):
    path = write_yaml(tmp_path / "bad.yaml", config)
    line = assert_one_line_error(cli("run", path, "--run-dir", tmp_path / "run"), str(path), *needles)
    assert line
    assert not (tmp_path / "run").exists()  # nothing written for bad input


def test_missing_config_file(tmp_path):
    assert_one_line_error(cli("run", tmp_path / "nothere.yaml"), "nothere.yaml", "no such config file")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data:\n  elements: [Cu\n")
    assert_one_line_error(cli("run", path), str(path), "YAML")


@pytest.mark.parametrize("text, needle", [
    ("name: dup\nseed: 0\ndata:\n  elements: [Cu]\nseed: 1\n", "seed: duplicate key (line 2 and line 5)"),
    ("name: dup\nmodels:\n  - name: acegp\n    params:\n      n_max: 4\n      n_max: 5\n",
     "n_max: duplicate key (line 5 and line 6)"),
], ids=["top-level", "nested"])
def test_duplicate_yaml_key(tmp_path, text, needle):
    """PyYAML alone keeps the last of two equal keys; the config must refuse them, naming both lines."""
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    assert_one_line_error(cli("run", path, "--run-dir", tmp_path / "run"), f"{path}: {needle}")
    assert not (tmp_path / "run").exists()


def test_run_with_no_models_is_refused(tmp_path):
    """models: [] would generate data for every metal and train nothing without a word; generate still takes it."""
    path = write_yaml(tmp_path / "none.yaml", {**TINY, "models": []})
    assert_one_line_error(cli("run", path, "--run-dir", tmp_path / "run"), f"{path}: models: an empty list",
                          "mlffbench generate")
    assert not (tmp_path / "run").exists()


def test_status_on_non_run_dir(tmp_path):
    assert_one_line_error(cli("status", tmp_path), str(tmp_path), "not a run directory")
    assert not (tmp_path / RunStore.FILE).exists()


def test_check_missing_and_empty_file(tmp_path):
    assert_one_line_error(cli("check", tmp_path / "none.extxyz"), "none.extxyz")
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    assert_one_line_error(cli("check", empty), "empty.extxyz")


def test_check_good_file(tmp_path):
    from ase.build import bulk

    from mlffbench.frames import labelled

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    path = tmp_path / "good.extxyz"
    write_frames(path, [labelled(atoms, -14.0, [[0.0, 0.0, 0.0]] * 4, [0.0] * 6)] * 2)
    result = cli("check", path)
    assert result.returncode == 0, result.stderr
    assert "2 frames" in result.stdout and "8 atoms" in result.stdout


def cu_frames(n: int, stress_scale: float = 1.0, **info) -> list:
    """Expanded / compressed EMT Cu cells (a small EOS set) with their ASE-sign eV/Å³ stress times ``stress_scale``."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from mlffbench.frames import labelled

    out = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 * (0.97 + 0.01 * k), cubic=True)
        atoms.calc = EMT()
        out.append(labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(),
                            atoms.get_stress() * stress_scale, **info))
    return out


def test_check_reports_what_the_files_hold(tmp_path):
    good = tmp_path / "good.extxyz"
    write_frames(good, cu_frames(3, config_type="eos"))
    entry = {"structure": {"lattice": {"matrix": [[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]]},
                           "sites": [{"species": [{"element": "Cu"}], "xyz": [0, 0, 0]}]},
             "outputs": {"energy": -3.5, "forces": [[0, 0, 0]], "stress": [1, 1, 1, 0, 0, 0]}}
    mlearn = tmp_path / "Cu_Test.json"
    mlearn.write_text(json.dumps([entry, entry]))
    result = cli("check", good, mlearn)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{good} (extxyz): 3 frames, 12 atoms, elements Cu, periodic" in out
    assert "labels: energy 3, forces 3, stress 3 (stress read as eV/A3, tensile" in out
    assert "groups (config_type): eos 3" in out
    assert f"{mlearn} (mlearn): 2 frames, 2 atoms" in out
    assert "stress 2 (stress read as kbar, compressive: positive = compression" in out
    assert "groups (group): Cu_Test 2" in out
    assert "stress note (2 frames): shear order of outputs.stress unknown" in out


def fitsnap_style_file(tmp_path) -> Path:
    """Stress in bar, positive = compressive, as FitSNAP's extxyz training files hold it."""
    from mlffbench.units import BAR

    path = tmp_path / "Ta.extxyz"
    write_frames(path, cu_frames(5, stress_scale=-1 / BAR))
    return path


def test_check_undeclared_bar_stress_is_one_line(tmp_path):
    path = fitsnap_style_file(tmp_path)
    assert_one_line_error(cli("check", path), str(path), "frame 0", "GPa is implausible", "--stress-unit bar",
                          "stress_unit: bar", "--stress-convention compressive")


def test_check_declared_stress_units(tmp_path):
    path = fitsnap_style_file(tmp_path)
    result = cli("check", path, "--stress-unit", "bar", "--stress-convention", "compressive", "--format", "extxyz")
    assert result.returncode == 0, result.stderr
    assert "stress 5 (stress read as bar, compressive" in result.stdout


def test_check_several_files_one_line_per_bad_file(tmp_path):
    good = tmp_path / "good.extxyz"
    write_frames(good, cu_frames(1))
    bad = tmp_path / "bad.extxyz"
    bad.write_text(good.read_text().replace("energy=", 'energy="-7.0 eV" old_energy=', 1))
    result = cli("check", bad, good, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"mlffbench: error: {bad}: frame 0: energy is not a number: '-7.0 eV'",
                                          f"mlffbench: error: {tmp_path}: is a directory, not a data file"]
    assert f"{good} (extxyz): 1 frames, 4 atoms" in result.stdout


def test_check_bad_labels_and_mixed_pbc_one_line_each(tmp_path):
    """energy=abc, a non-symmetric 9-number stress, periodic and non-periodic frames in one file: one line each."""
    import numpy as np
    from ase import Atoms

    from mlffbench import frames as fr
    from test_io import emt_cells, make_frames, write_xyz

    abc = write_xyz(tmp_path / "abc.xyz", emt_cells(scales=(1.0, 1.0)), energy=["-7.0", "abc"])
    asym = write_xyz(tmp_path / "asym.xyz", emt_cells(scales=(1.0,)),
                     stress=lambda s: np.arange(1.0, 10.0).reshape(3, 3) * 1e-3)
    frames = make_frames(3)
    frames[2] = fr.labelled(Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]]), -1.0, np.zeros((2, 3)), None)
    write_frames(mixed := tmp_path / "mixed.xyz", frames)
    result = cli("check", abc, asym, mixed)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert [line.split(": frame")[0] for line in result.stderr.splitlines()] == [
        f"mlffbench: error: {abc}", f"mlffbench: error: {asym}", f"mlffbench: error: {mixed}"], result.stderr
    for needle in ("energy is not a number: 'abc'", "stress is not symmetric", "pbc F F F differs"):
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize("element, needle", [("Xx", "Xx"), ("Os", "Os")])
def test_generate_bad_element(tmp_path, element, needle):
    result = cli("generate", "--elements", element, "--out", tmp_path / "out")
    assert_one_line_error(result, needle)
    assert not (tmp_path / "out").exists()


def test_run_unlabelable_element(tmp_path):
    path = write_yaml(tmp_path / "os.yaml", {**TINY, "data": {**TINY["data"], "elements": ["Os"]}})
    assert_one_line_error(cli("run", path, "--run-dir", tmp_path / "run"), "Os")
    assert not (tmp_path / "run" / RunStore.FILE).exists()


# -- informational commands -----------------------------------------------------------------------------


def test_elements():
    result = cli("elements", "Cu")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].split()[0] == "Cu" and "1358" in lines[1].split()


def test_potentials():
    result = cli("potentials")
    assert result.returncode == 0, result.stderr
    defaults = result.stdout.split("\n\nother shipped")[0].splitlines()[1:]
    rows = {line.split()[0]: line for line in defaults if line.strip()}
    assert "Cu_mishin1" in rows["Cu"] and "Os" not in rows
    assert "Mo_snap" in rows["Mo"] and "pass 9/9" in rows["Mo"] and "Nb_uf3" in rows["Nb"]  # the label-check column
    assert "Ir" not in rows and "Rh" not in rows  # the Baskes MEAM fails the label check: not a default
    others = result.stdout.split("\n\nother shipped")[1].split("\n\nbuilt-in recipes")[0]
    ir = next(line for line in others.splitlines() if line.startswith("Ir "))
    assert "FAIL smoothness_dimer: force kink" in ir
    not_covered = [line for line in result.stdout.splitlines() if line.startswith("not covered")]
    assert len(not_covered) == 1 and "Os (" in not_covered[0] and "Ir (only the Baskes" in not_covered[0]


# -- run, re-run, status ---------------------------------------------------------------------------------


def test_run_then_status(tmp_path):
    path = write_yaml(tmp_path / "tiny.yaml", TINY)
    run_dir = tmp_path / "run"
    result = cli("run", path, "--run-dir", run_dir, "--no-progress")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Cu" in out and "labeler" in out and "mean_energy" in out
    assert "jobs: done 3" in out
    assert "Traceback" not in result.stderr

    status = cli("status", run_dir)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0] == "done: 3, running: 0, failed: 0, pending: 0"
    status_all = cli("status", run_dir, "--all")
    assert status_all.returncode == 0
    for name in ("data:Cu", "accuracy:Cu:labeler", "accuracy:Cu:mean_energy"):
        assert name in status_all.stdout

    again = cli("run", path, "--run-dir", run_dir, "--no-progress")
    assert again.returncode == 0 and "jobs: done 3" in again.stdout
    # the same tables come out of the stored results
    assert again.stdout.split("\nAccuracy")[1] == out.split("\nAccuracy")[1]

    data_file = run_dir / "datasets" / "Cu" / "Cu" / "Cu_warm.extxyz"
    check = cli("check", data_file, "--require", "energy,forces,stress")
    assert check.returncode == 0 and "10 frames" in check.stdout


def test_run_with_failing_model_exits_1_and_prints_table(tmp_path):
    cfg = {
        **TINY, "name": "mo",
        "data": {**TINY["data"], "elements": ["Mo"]},
        "models": [{"name": "labeler"}, {"name": "labeler", "label": "emt", "params": {"labeler": {"name": "emt"}}},
                   {"name": "mean_energy"}],
    }
    path = write_yaml(tmp_path / "mo.yaml", cfg)
    run_dir = tmp_path / "run"
    result = cli("run", path, "--run-dir", run_dir, "--no-progress")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Failed jobs: 1: accuracy:Mo:emt" in result.stdout  # the summary names it; the tables are in summary.txt
    table = (run_dir / "summary.txt").read_text().split("\nAccuracy")[1]
    rows = {line.split()[1]: line for line in table.splitlines() if line.startswith("Mo ")}
    assert set(rows) == {"labeler", "mean_energy"}
    assert "100.00" in rows["mean_energy"]
    (failed,) = [line for line in table.splitlines() if "(failed) accuracy:Mo:emt" in line]
    assert "Mo" in failed.split("emt", 1)[1]  # the reason names the element EMT cannot label
    assert "jobs: done 3, failed 1" in result.stdout

    status = cli("status", run_dir)
    assert status.returncode == 0
    assert status.stdout.splitlines()[0] == "done: 3, running: 0, failed: 1, pending: 0"
    assert "accuracy:Mo:emt" in status.stdout and "EMT" in status.stdout


# -- report onto a full disk -----------------------------------------------------------------------------


def test_report_onto_a_full_disk(tmp_path):
    """A real ENOSPC: --out on a tmpfs sized so the HTML fits and the JSON does not (a user and mount namespace, so
    no root is needed). One line saying what to do, exit 2, and nothing left there: no *.tmp, no lone new HTML."""
    import shutil

    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (user and mount namespaces) is not permitted here: no tmpfs to fill")
    cfg = {**TINY, "models": [{"name": "mean_energy"}], "execution": {"executor": "inprocess"}}
    run_dir = tmp_path / "run"
    assert cli("run", write_yaml(tmp_path / "tiny.yaml", cfg), "--run-dir", run_dir, "--no-progress").returncode == 0
    ok = cli("report", run_dir, "--no-parity", "--out", tmp_path / "ok" / "r.html")
    assert ok.returncode == 0, ok.stderr
    page = 4096
    html_pages = -(-(tmp_path / "ok" / "r.html").stat().st_size // page)
    assert (tmp_path / "ok" / "r.json").stat().st_size > page  # so one spare page cannot hold it
    full = tmp_path / "full"
    full.mkdir()
    script = (f"mount -t tmpfs -o size={(html_pages + 1) * page} tmpfs {full} && "
              f"{sys.executable} -m mlffbench report {run_dir} --no-parity --out {full}/r.html; rc=$?; "
              f"ls -A {full}; exit $rc")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    line = assert_one_line_error(result, f"{full}/r.json: no space left to write the report", "free space")
    assert "nothing was written" in line
    assert result.stdout == ""  # ls -A inside the namespace: the tmpfs is empty (no r.html, no *.tmp)
