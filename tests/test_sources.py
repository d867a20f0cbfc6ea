"""Issue 25 items 6 and 7: the user's files are the truth on every re-run (a source cut, truncated or deleted after
a finished run is found, said or refused in one line), a finished run can be inspected read-only, and a result
edited inside run.sqlite is refused rather than shown. Each test makes its own tiny finished run through the CLI
(12 EMT Cu frames in two files, mean_energy, accuracy only: about a second)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from mlffbench.cli import main
from mlffbench.engine.store import RunStore, open_existing
from mlffbench.report.collect import load_run

from cli_helpers import one_line, snapshot


def emt_frames(n: int, seed: int) -> list:
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed + i)
        atoms.calc = EMT()
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **labels)
        out.append(atoms)
    return out


def make_run(tmp_path: Path, models=("mean_energy",)) -> tuple[Path, Path]:
    """(config, run directory) of a finished run on data/p.xyz and data/q.xyz (6 frames each, a glob)."""
    (tmp_path / "data").mkdir()
    for name, seed in (("p", 0), ("q", 100)):
        ase.io.write(tmp_path / "data" / f"{name}.xyz", emt_frames(6, seed), format="extxyz")
    config = write(tmp_path, models)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--run-dir", str(run_dir), "--no-progress"]) == 0
    return config, run_dir


def write(tmp_path: Path, models) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "name": "src", "datasets": [{"source": "files", "name": "d", "files": ["data/*.xyz"]}],
        "models": [{"name": "mean_energy", "label": m} for m in models],
        "tasks": {"accuracy": True}, "execution": {"executor": "inprocess"}}))
    return config




def rerun(config: Path, run_dir: Path) -> int:
    return main(["run", str(config), "--run-dir", str(run_dir), "--no-progress"])


# -- item 6: sources after a finished run ---------------------------------------------------------------------


def test_source_truncated_mid_number_is_refused_naming_file_and_frame(tmp_path, capsys):
    config, run_dir = make_run(tmp_path)
    capsys.readouterr()
    q = tmp_path / "data" / "q.xyz"
    q.write_bytes(q.read_bytes()[:-10])  # `truncate -s -10`: the last force cut to "-0.0x"; ASE alone reads it
    before = snapshot(run_dir)
    assert rerun(config, run_dir) == 2
    one_line(capsys.readouterr().err, f"{q}: frame 5:", "truncated")
    assert snapshot(run_dir) == before


def test_source_cut_to_fewer_frames_replans_and_an_added_model_trains_on_the_new_frames(tmp_path, capsys):
    config, run_dir = make_run(tmp_path)
    capsys.readouterr()
    q = tmp_path / "data" / "q.xyz"
    ase.io.write(q, ase.io.read(q, ":3"), format="extxyz")  # a clean cut: 3 of 6 whole frames
    assert rerun(write(tmp_path, ("mean_energy", "added")), run_dir) == 0
    out, err = capsys.readouterr()
    (line,) = [x for x in err.splitlines() if str(q) in x]
    assert "source file changed since the earlier run in this directory (6 -> 3 frames)" in line
    assert "data:d is a new data set" in line
    run = load_run(run_dir)  # the report: only the new version, both models on 9 frames
    assert sorted(r["label"] for r in run.results["accuracy"]) == ["added", "mean_energy"]
    assert all(r["n_train"] + r["tests"]["test"]["n_test"] == 9 for r in run.results["accuracy"])
    assert main(["status", str(run_dir)]) == 0
    assert "superseded: 2 job(s)" in capsys.readouterr().out


def test_source_deleted_is_refused_but_the_run_can_still_be_reported(tmp_path, capsys):
    config, run_dir = make_run(tmp_path)
    capsys.readouterr()
    q = tmp_path / "data" / "q.xyz"
    q.unlink()  # the glob data/*.xyz still asks for it: planning would otherwise quietly use p.xyz alone
    before = snapshot(run_dir)
    assert rerun(config, run_dir) == 2
    one_line(capsys.readouterr().err, str(q), "gone (deleted or moved)", "--run-dir")
    assert snapshot(run_dir) == before
    (tmp_path / "data" / "p.xyz").unlink()
    assert main(["status", str(run_dir)]) == 0
    assert main(["report", str(run_dir), "--no-parity", "--out", str(tmp_path / "r.html")]) == 0


# -- item 7: read-only inspection, tamper evidence -----------------------------------------------------------


def test_reader_opens_the_store_read_only_and_creates_nothing(tmp_path):
    _, run_dir = make_run(tmp_path)
    before = snapshot(run_dir)
    store = open_existing(run_dir)
    try:
        assert len(list(store.jobs())) == 2
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._conn.execute("DELETE FROM jobs")
    finally:
        store.close()
    assert snapshot(run_dir) == before  # no -wal, -shm or -journal left beside it


def test_status_on_a_read_only_mount(tmp_path):
    """A real read-only file system: a bind mount with -o ro in a user+mount namespace (works as root too, where
    chmod would not stop writes); skipped where namespaces are not allowed."""
    _, run_dir = make_run(tmp_path)
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("no user/mount namespaces here")
    cli = f"{sys.executable} -m mlffbench"
    script = (f"mount --bind -o ro {run_dir} {run_dir} && touch {run_dir}/x 2>/dev/null && exit 9; "
              f"{cli} status {run_dir} && {cli} report {run_dir} --no-parity --out {tmp_path}/r.html && "
              f"{cli} report {run_dir} --no-parity")  # the default place is inside the read-only run
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("done: 2,") and (tmp_path / "r.html").is_file()
    one_line(done.stderr, "cannot write the report (Read-only file system", "give --out")


def _edit_accuracy(run_dir: Path) -> None:
    db = sqlite3.connect(run_dir / RunStore.FILE)
    key, text = db.execute("SELECT key, result FROM jobs WHERE name LIKE 'accuracy:%'").fetchone()
    result = json.loads(text)
    result["tests"]["test"]["overall"]["forces.mae"] /= 10  # a flattering number, structurally valid
    db.execute("UPDATE jobs SET result=? WHERE key=?", (json.dumps(result), key))
    db.commit()
    db.close()


def test_edited_result_is_refused_by_readers_and_recomputed_by_a_rerun(tmp_path, capsys):
    config, run_dir = make_run(tmp_path)
    capsys.readouterr()
    _edit_accuracy(run_dir)
    for args in (["status", run_dir], ["report", run_dir, "--no-parity", "--out", tmp_path / "r.html"]):
        assert main(list(map(str, args))) == 2
        one_line(capsys.readouterr().err, f"{run_dir}: job accuracy:d:mean_energy: result edited after it was "
                                          "written")
    assert rerun(config, run_dir) == 0  # the coordinator may repair: it says so and runs that job again
    assert "job accuracy:d:mean_energy: result edited after it was written (checksum mismatch); discarded, the " \
           "job runs again" in capsys.readouterr().err
    assert main(["status", str(run_dir)]) == 0


def test_old_store_without_checksums_reads_unverified_said_once(tmp_path, capsys):
    config, run_dir = make_run(tmp_path)
    db = sqlite3.connect(run_dir / RunStore.FILE)
    db.execute("ALTER TABLE jobs DROP COLUMN checksum")  # the schema of an older mlffbench
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["status", str(run_dir)]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert "2 job result(s) were written by an older mlffbench without a checksum" in line
    assert rerun(config, run_dir) == 0  # the coordinator migrates: the column is added, the rows kept
    db = sqlite3.connect(run_dir / RunStore.FILE)
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE checksum IS NULL AND status='done'").fetchone() == (2,)
    db.close()
    assert np.isfinite(load_run(run_dir).results["accuracy"][0]["tests"]["test"]["overall"]["forces.mae"])
