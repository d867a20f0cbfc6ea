"""The main job (mlffbench.engine.runner) end to end with real LAMMPS: results, reuse, failures, kill -9 resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import pytest
import yaml

from mlffbench.config import load_config
from mlffbench.data.io import read_frames
from mlffbench.engine.runner import MainJob, results_table
from mlffbench.engine.store import RunStore
from mlffbench.models.base import load_potential

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"elements": ["Cu"], "frames_per_temperature": 10, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
    "models": [{"name": "labeler"}, {"name": "mean_energy"}],
    "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
    "execution": {"executor": "inprocess"},
}

#: eV/Å; see test_labeler_model_has_zero_error (8-decimal extxyz positions/forces)
FORCE_TOL = 1e-6


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_main(cfg: dict, run_dir: Path, config_path: Path | None = None):
    """Run the main job on ``cfg`` in ``run_dir``; returns (jobs, seconds). Closes the store."""
    config_path = config_path or run_dir.parent / f"{run_dir.name}.yaml"
    config = load_config(write_config(config_path, cfg))
    start = time.perf_counter()
    jobs = MainJob(config, run_dir).run(progress=False)
    return jobs, time.perf_counter() - start


def by_name(jobs):
    return {job.name: job for job in jobs}


@pytest.fixture(scope="module")
def cu_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cu") / "run"
    jobs, seconds = run_main(TINY, run_dir)
    return run_dir, jobs, seconds


def test_all_jobs_done(cu_run):
    run_dir, jobs, _ = cu_run
    assert sorted(j.name for j in jobs) == ["accuracy:Cu:labeler", "accuracy:Cu:mean_energy", "data:Cu"]
    assert all(j.status == "done" and j.attempts == 1 and j.error is None for j in jobs), jobs
    for label in ("cold", "warm", "melt"):
        frames = read_frames(run_dir / "datasets" / "Cu" / "Cu" / f"Cu_{label}.extxyz", require=("energy", "forces", "stress"))
        assert len(frames) == 10
    store = RunStore(run_dir)
    assert store.counts() == {"done": 3, "running": 0, "failed": 0, "pending": 0}
    prov = store.provenance()
    assert prov["config"]["data"]["elements"] == ["Cu"] and prov["code_version"]
    assert prov["protocol_notes"]
    assert store.integrity_check() == "ok"
    store.close()


def test_labeler_model_has_zero_error(cu_run):
    _, jobs, _ = cu_run
    r = by_name(jobs)["accuracy:Cu:labeler"].result
    assert (r["n_train"], r["tests"]["test"]["n_test"]) == (24, 6)  # last 20 % of each 10-frame trajectory
    o = r["tests"]["test"]["overall"]
    # Zero up to the storage precision: extxyz keeps positions and forces with 8 decimals (io.write_frames),
    # so the labeler re-evaluated on the stored (rounded) positions differs by ~1e-8 eV/Å, not by < 1e-9.
    assert o["forces.mae"] < FORCE_TOL
    assert o["energy_per_atom.mae"] < 1e-8
    assert o["stress.mae"] < 1e-8
    assert o["forces.percent"] < 1e-4


def test_mean_energy_baseline(cu_run):
    _, jobs, _ = cu_run
    o = by_name(jobs)["accuracy:Cu:mean_energy"].result["tests"]["test"]["overall"]
    assert o["forces.percent"] == pytest.approx(100.0, abs=1e-9)  # zero forces: error = label scale
    assert o["stress.percent"] == pytest.approx(100.0, abs=1e-9)
    assert o["forces.mae"] > 0.01
    assert o["energy_per_atom.mae"] > 0


def test_by_group(cu_run):
    _, jobs, _ = cu_run
    for name in ("accuracy:Cu:labeler", "accuracy:Cu:mean_energy"):
        by_t = by_name(jobs)[name].result["tests"]["test"]["by_group"]
        assert set(by_t) == {"cold", "warm", "melt"}
    mean = by_name(jobs)["accuracy:Cu:mean_energy"].result["tests"]["test"]["by_group"]
    # hotter trajectories have larger forces, so the zero-force baseline errs more
    assert mean["cold"]["forces.mae"] < mean["warm"]["forces.mae"] < mean["melt"]["forces.mae"]


def test_rerun_does_no_new_work(cu_run):
    run_dir, first, first_seconds = cu_run
    data_files = sorted((run_dir / "datasets").rglob("*.extxyz"))
    mtimes = [p.stat().st_mtime_ns for p in data_files]
    jobs, seconds = run_main(TINY, run_dir, run_dir.parent / "again.yaml")
    assert [j.key for j in jobs] == [j.key for j in first]
    assert all(j.status == "done" and j.attempts == 1 for j in jobs)
    assert [j.result for j in jobs] == [j.result for j in first]  # read back, not recomputed
    assert [p.stat().st_mtime_ns for p in data_files] == mtimes
    assert seconds < first_seconds / 3, (seconds, first_seconds)


def test_changed_model_params_or_split_reuse_data(tmp_path):
    first, _ = run_main(TINY, tmp_path / "run")
    data_key = by_name(first)["data:Cu"].key

    changed = {**TINY, "models": [{"name": "labeler"}, {"name": "mean_energy", "label": "mean"}]}
    jobs, _ = run_main(changed, tmp_path / "run")
    new, old = by_name(jobs), by_name(first)
    assert new["data:Cu"].key == data_key and new["data:Cu"].attempts == 1
    assert new["accuracy:Cu:labeler"].key == old["accuracy:Cu:labeler"].key
    assert new["accuracy:Cu:labeler"].attempts == 1
    assert new["accuracy:Cu:mean"].key != old["accuracy:Cu:mean_energy"].key
    assert new["accuracy:Cu:mean"].status == "done" and new["accuracy:Cu:mean"].attempts == 1

    split = {**TINY, "split": {"test_last": 0.3}}
    jobs, _ = run_main(split, tmp_path / "run")
    new = by_name(jobs)
    assert new["data:Cu"].key == data_key and new["data:Cu"].attempts == 1
    for name in ("accuracy:Cu:labeler", "accuracy:Cu:mean_energy"):
        assert new[name].key != old[name].key and new[name].status == "done"
    r = new["accuracy:Cu:labeler"].result
    assert (r["n_train"], r["tests"]["test"]["n_test"]) == (21, 9)

    store = RunStore(tmp_path / "run")
    assert store.counts() == {"done": 6, "running": 0, "failed": 0, "pending": 0}  # 1 data + 2 + 1 + 2 score jobs
    store.close()

    changed_data = {**TINY, "data": {**TINY["data"], "frames_per_temperature": 11}}
    jobs, _ = run_main(changed_data, tmp_path / "run")
    assert by_name(jobs)["data:Cu"].key != data_key


MO_FAILING = {
    **TINY,
    "name": "mo",
    "data": {**TINY["data"], "elements": ["Mo"]},
    "models": [
        {"name": "labeler"},
        {"name": "labeler", "label": "emt", "params": {"labeler": {"name": "emt"}}},  # EMT has no Mo
        {"name": "mean_energy"},
    ],
}


def test_failing_model_is_recorded_and_others_finish(tmp_path):
    jobs, _ = run_main(MO_FAILING, tmp_path / "run")
    jobs = by_name(jobs)
    failed = jobs["accuracy:Mo:emt"]
    assert failed.status == "failed" and failed.result is None
    assert failed.error and "Mo" in failed.error and "\n" not in failed.error
    for name in ("data:Mo", "accuracy:Mo:labeler", "accuracy:Mo:mean_energy"):
        assert jobs[name].status == "done", jobs[name]
    assert jobs["accuracy:Mo:labeler"].result["tests"]["test"]["overall"]["forces.mae"] < FORCE_TOL
    store = RunStore(tmp_path / "run")
    log = store._conn.execute("SELECT log FROM jobs WHERE key=?", (failed.key,)).fetchone()[0]
    assert "Traceback" in log
    assert store.counts() == {"done": 3, "running": 0, "failed": 1, "pending": 0}
    store.close()
    table = results_table(list(jobs.values()))
    assert "failed" in table and "emt" in table


def test_failure_in_another_interpreter_keeps_its_reason_and_traceback(tmp_path):
    """A job run by a family env's worker (here: this interpreter through `python:`) fails with the worker's own
    one-line reason, not wrapped, and the stored log is the worker's traceback."""
    cfg = {**MO_FAILING, "models": [{"name": "labeler", "label": "emt", "params": {"labeler": {"name": "emt"}},
                                     "python": sys.executable}, {"name": "mean_energy"}]}
    jobs = by_name(run_main(cfg, tmp_path / "run")[0])
    failed, local = jobs["accuracy:Mo:emt"], run_main(MO_FAILING, tmp_path / "local")[0]
    assert failed.status == "failed" and not failed.error.startswith(("RuntimeError", "RemoteJobError"))
    assert failed.error == by_name(local)["accuracy:Mo:emt"].error  # the same reason as when run in-process
    store = RunStore(tmp_path / "run")
    log = store._conn.execute("SELECT log FROM jobs WHERE key=?", (failed.key,)).fetchone()[0]
    store.close()
    assert "Traceback" in log and "mlffbench/worker.py" in log
    assert jobs["accuracy:Mo:mean_energy"].status == "done"


def test_inprocess_results_are_stored_as_each_job_finishes(tmp_path, monkeypatch):
    """In-process jobs run inside submit: each result must reach the store before the next job starts, so a kill
    mid-run loses no finished job (they used to be stored only after the whole batch)."""
    import mlffbench.engine.runner as runner

    run_dir, done_at_start = tmp_path / "run", []
    real_run_job = runner.run_job

    def counting_run_job(kind, inputs, run_dir_str, python):
        with sqlite3.connect(run_dir / "run.sqlite") as conn:
            done_at_start.append(conn.execute("SELECT count(*) FROM jobs WHERE status='done'").fetchone()[0])
        return real_run_job(kind, inputs, run_dir_str, python)

    monkeypatch.setattr(runner, "run_job", counting_run_job)
    jobs, _ = run_main(TINY, run_dir)
    assert all(job.status == "done" for job in jobs) and len(jobs) == 3
    assert done_at_start == [0, 1, 2]  # data, then each fit sees every earlier job already stored


def test_same_model_under_two_labels_gives_two_rows(tmp_path):
    """Config allows one model family twice under different labels; each label must get its own result."""
    cfg = {**TINY, "models": [{"name": "mean_energy", "label": "a"}, {"name": "mean_energy", "label": "b"}]}
    jobs, _ = run_main(cfg, tmp_path / "run")
    score = [j for j in jobs if j.kind == "fit_score"]
    assert sorted(j.name for j in score) == ["accuracy:Cu:a", "accuracy:Cu:b"]
    assert all(j.attempts == 1 for j in score)


# -- kill -9 and resume -------------------------------------------------------------------------------

#: the main job's shape at a smaller size: Dask LocalCluster, the ACE GP on all three tasks, four metals
KILL_CFG = {
    "name": "kill",
    "seed": 0,
    "data": {"elements": ["Cu", "Ni", "Ag", "W"], "frames_per_temperature": 30, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
    "models": [{"name": "acegp", "label": "ace-B2", "params": {"n_max": 4, "l_max": 2}},
               {"name": "mean_energy", "tasks": ["accuracy"]}],
    "tasks": {"transfer": {"train": "cold", "test": ["warm", "melt"]},
              "learning_curve": {"sizes": [12, 36], "replicates": 1}},
    "execution": {"executor": "dask", "workers": 2},
}


def _done_jobs(run_dir: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{run_dir / RunStore.FILE}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM jobs WHERE status='done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return 0


def _cli_run(config: Path, run_dir: Path, kill_at_done: int | None = None, delay: float = 0.0) -> int:
    """Run the CLI; with ``kill_at_done``, kill -9 it ``delay`` s after the store shows that many finished jobs
    (moments tied to progress, not wall time, so they land mid-run on a fast or a loaded machine alike)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlffbench", "run", str(config), "--run-dir", str(run_dir), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    if kill_at_done is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
        return proc.returncode
    deadline = time.monotonic() + 600
    while proc.poll() is None and _done_jobs(run_dir) < kill_at_done and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return proc.returncode


def _final_state(run_dir: Path) -> tuple[dict, dict]:
    """Scores (timings excluded: they differ between runs) and data file bytes of a finished run."""
    import json

    conn = sqlite3.connect(run_dir / RunStore.FILE)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT name, status, result FROM jobs WHERE kind='fit_score'").fetchall()
    conn.close()
    assert rows and all(status == "done" for _, status, _ in rows), rows
    scores = {name: json.loads(result)["tests"] for name, _, result in rows}
    data = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted((run_dir / "datasets").rglob("*.extxyz"))}
    return scores, data


@pytest.mark.slow
def test_kill9_resume_matches_uninterrupted_run(tmp_path):
    """kill -9 the main job (coordinator and its Dask workers) at five random moments, resuming each time."""
    import random

    config = write_config(tmp_path / "kill.yaml", KILL_CFG)
    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"

    _cli_run(config, reference_dir)
    n_jobs = 4 + 4 * (1 + 1 + 2 + 1)  # data + fit jobs (checked below)

    rng = random.Random(0)
    killed, left_running = 0, 0
    for at in sorted(rng.sample(range(1, n_jobs - 2), 5)):  # five random moments through the run
        rc = _cli_run(config, resumed_dir, at, rng.uniform(0.0, 0.3))
        killed += rc == -signal.SIGKILL
        if (resumed_dir / RunStore.FILE).exists():
            conn = sqlite3.connect(resumed_dir / RunStore.FILE)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            left_running += conn.execute("SELECT COUNT(*) FROM jobs WHERE status='running'").fetchone()[0]
            conn.close()
    assert killed >= 4, f"only {killed} of 5 kills landed before the run finished"
    assert left_running >= 1  # at least one kill hit a job mid-way, so the resume path was exercised
    _cli_run(config, resumed_dir)

    ref_scores, ref_data = _final_state(reference_dir)
    got_scores, got_data = _final_state(resumed_dir)
    assert len(ref_scores) == 4 * (1 + 1 + 2 + 1) and len(ref_data) == 12
    assert got_scores == ref_scores
    assert got_data.keys() == ref_data.keys()
    for name in ref_data:
        assert got_data[name] == ref_data[name], name

    # every data file parses as complete data; temporaries of killed writes (if any) are never data files
    for path in (resumed_dir / "datasets").rglob("*"):
        if path.is_file() and path.suffix == ".extxyz":
            frames = read_frames(path, require=("energy", "forces", "stress"))
            assert len(frames) == 30
            assert len(ase.io.read(path, ":", format="extxyz")) == 30
        elif path.name == "manifest.json":  # complete, and every file it names has the recorded hash
            from mlffbench.datasets.base import read_manifest, sha256
            for entry in read_manifest(path.parent)["files"]:
                assert sha256(path.parent / entry["file"]) == entry["sha256"], path
        elif path.is_file():
            assert path.name == "cell.json" or path.name.endswith(".tmp"), path
    for path in resumed_dir.rglob("*.tmp"):
        assert not path.name.endswith((".extxyz", ".xyz", ".json"))
    for path in (resumed_dir / "models").rglob("potential.json"):
        load_potential(path)  # every saved model is complete


@pytest.mark.parametrize("args, needles", [
    (["--elements", "Xx"], ["data.elements[0]", "Xx"]),
    (["--elements", "Cu,,W"], ["--elements", "item 2 of 'Cu,,W' is empty"]),  # not silently Cu,W
    (["--workers", "-1"], ["execution.workers", "-1"]),
])
def test_cli_override_errors_name_the_config(tmp_path, capsys, args, needles):
    """--elements/--workers are applied on top of a config: their one-line error names that config file."""
    from mlffbench.cli import main

    config = write_config(tmp_path / "tiny.yaml", TINY)
    assert main(["run", str(config), "--run-dir", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err and "override" in err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "run").exists()
