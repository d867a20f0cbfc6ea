"""Issue 17: a file a finished job wrote (data, saved model) that changed is detected, named in one line and
re-created with everything that used it; model params that cannot fit the data are refused at planning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from test_datasets import alloy_frames
from test_runner import TINY, by_name, run_main, write_config

from mlffbench import datasets
from mlffbench.config import load_config
from mlffbench.data.io import read_frames, write_frames
from mlffbench.engine import artefacts
from mlffbench.engine.jobs import execute
from mlffbench.engine.runner import MainJob
from mlffbench.engine.store import RunStore
from mlffbench.errors import ConfigError, DataError
from mlffbench.models.base import load_potential

COLD = Path("datasets/Cu/Cu/Cu_cold.extxyz")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A finished TINY run (Cu, 10 frames per temperature, labeler and mean_energy), copied by each test."""
    run_dir = tmp_path_factory.mktemp("pristine") / "run"
    jobs, _ = run_main(TINY, run_dir)
    return run_dir, by_name(jobs)


def copy_run(pristine, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(pristine[0], run_dir)
    return run_dir


def changed_lines(err: str, path: Path) -> list[str]:
    return [line for line in err.splitlines() if str(path) in line]


def test_results_record_every_file_written(pristine):
    run_dir, jobs = pristine
    data = jobs["data:Cu"].result["artefacts"]
    assert data[COLD.as_posix()]["frames"] == 10 and "datasets/Cu/manifest.json" in data
    for name in ("accuracy:Cu:labeler", "accuracy:Cu:mean_energy"):
        job_id = jobs[name].inputs["job_id"]  # the saved potential and the test-set predictions it scored
        assert set(jobs[name].result["artefacts"]) == {f"models/{job_id}/potential.json",
                                                       f"models/{job_id}/predictions.npz"}
        assert not artefacts.problems(run_dir, jobs[name].result["artefacts"])


def test_data_cut_at_frame_boundary_then_added_model_reruns_data_and_its_users(pristine, tmp_path, capsys):
    run_dir = copy_run(pristine, tmp_path)
    original = (run_dir / COLD).read_bytes()
    write_frames(run_dir / COLD, read_frames(run_dir / COLD)[:5])  # a clean cut: 5 of 10 whole frames
    cfg = {**TINY, "models": [*TINY["models"], {"name": "mean_energy", "label": "added"}]}
    jobs = by_name(run_main(cfg, run_dir)[0])
    (line,) = changed_lines(capsys.readouterr().err, run_dir / COLD)
    assert "size" in line and "data:Cu" in line and "2 finished job(s)" in line, line
    assert (run_dir / COLD).read_bytes() == original  # regenerated, same seed: the same frames
    assert jobs["data:Cu"].attempts == 2
    assert all(j.status == "done" for j in jobs.values())
    assert jobs["accuracy:Cu:added"].result["n_train"] == 24  # trained on the full set, not on the cut one
    for name in ("accuracy:Cu:labeler", "accuracy:Cu:mean_energy"):  # its users ran again, on the same frames
        assert jobs[name].attempts == 2
        assert jobs[name].result["tests"] == pristine[1][name].result["tests"]


@pytest.mark.parametrize("how", ["delete", "cut-mid-frame", "edit-same-size"])
def test_changed_data_file_is_regenerated(pristine, tmp_path, capsys, how):
    run_dir = copy_run(pristine, tmp_path)
    path = run_dir / COLD
    original = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "cut-mid-frame":
        path.write_bytes(original[: len(original) // 2])
    else:  # one digit changed: same size, same frame count; only the hash tells
        atom = original.index(b"\n", original.index(b"\n") + 1) + 1  # the first atom's line
        digit = next(k for k in range(atom, len(original)) if original[k:k + 1] in b"012345689")
        path.write_bytes(original[:digit] + b"7" + original[digit + 1:])
    jobs = by_name(run_main(TINY, run_dir)[0])
    (line,) = changed_lines(capsys.readouterr().err, path)
    assert {"delete": "missing", "cut-mid-frame": "size", "edit-same-size": "sha256"}[how] in line, line
    assert path.read_bytes() == original
    assert jobs["data:Cu"].attempts == 2 and jobs["accuracy:Cu:mean_energy"].attempts == 2
    assert all(j.status == "done" for j in jobs.values())


def test_garbage_model_is_refit_and_reported_by_name(pristine, tmp_path, capsys):
    from mlffbench.predictions import NoPredictions
    from mlffbench.report.collect import load_run
    from mlffbench.report.predictions import stored_test_set

    run_dir = copy_run(pristine, tmp_path)
    job = pristine[1]["accuracy:Cu:mean_energy"]
    model = run_dir / f"models/{job.inputs['job_id']}/potential.json"
    model.write_bytes(b"\xff\xfe garbage" * 10)
    stored = run_dir / f"models/{job.inputs['job_id']}/predictions.npz"
    stored.write_bytes(stored.read_bytes()[:-7] + b"garbage")  # same size: only the sha256 tells

    # the report reads the stored predictions, never the model: a changed file is one line naming it
    run = load_run(run_dir)
    (result,) = [r for r in run.results["accuracy"] if r["label"] == "mean_energy"]
    with pytest.raises(NoPredictions, match=f"{stored}: content changed"):
        stored_test_set(run_dir, result)
    from mlffbench.report import build_report

    build_report(run_dir, parity=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings and all(str(stored) in w for w in warnings), warnings

    jobs = by_name(run_main(TINY, run_dir)[0])
    (line,) = changed_lines(capsys.readouterr().err, model)
    assert "accuracy:Cu:mean_energy" in line and "0 finished job(s)" in line, line
    assert jobs["accuracy:Cu:mean_energy"].attempts == 2 and jobs["data:Cu"].attempts == 1
    assert jobs["accuracy:Cu:labeler"].attempts == 1
    load_potential(model)  # saved afresh


def test_file_changed_during_a_run_fails_the_job_that_reads_it(pristine, tmp_path):
    """The coordinator hands a job the records of the jobs it uses; the job checks them before it starts."""
    run_dir = copy_run(pristine, tmp_path)
    store = RunStore(run_dir)
    fit = store.get(pristine[1]["accuracy:Cu:mean_energy"].key)
    verify = artefacts.of_jobs(store, [pristine[1]["data:Cu"].key], run_dir)
    store.close()
    manifest = run_dir / "datasets/Cu/manifest.json"
    manifest.write_text(manifest.read_text() + " ")
    with pytest.raises(DataError, match=f"{manifest}: size"):
        execute("fit_score", {**fit.inputs, artefacts.VERIFY: verify}, run_dir)


# -- model params against the data, at planning -------------------------------------------------------------


@pytest.fixture(scope="module")
def cu_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cu") / "cu.xyz"
    write_frames(path, alloy_frames(4, 0, "bulk", elements=("Cu",)))
    return path


def files_config(tmp_path: Path, cu_file: Path, model: dict) -> Path:
    return write_config(tmp_path / "c.yaml", {"datasets": [{"source": "files", "name": "cu", "files": [str(cu_file)]}],
                                             "models": [model], "execution": {"executor": "inprocess"}})


@pytest.mark.parametrize("model, needles", [
    ({"name": "acegp", "params": {"sparse_method": "bogus"}}, ["params.sparse_method", "bogus"]),
    ({"name": "acegp", "params": {"descriptor": "B3"}}, ["params.descriptor", "B3"]),
    ({"name": "acegp", "label": "ace", "params": {"species": [28]}}, ["ace", "params.species", "['Cu']"]),
    ({"name": "flare", "label": "fl", "params": {"species": ["Ni"]}}, ["fl", "params.species", "['Cu']"]),
    ({"name": "acegp", "label": "ace", "params": {"cutoff": 1.5}}, ["ace", "params.cutoff = 1.5", "shortest"]),
    ({"name": "mace", "params": {"r_max": 2.0}}, ["mace", "params.r_max = 2", "shortest"]),
    ({"name": "nep", "params": {"cutoff_angular": 1.0}}, ["nep", "params.cutoff_angular = 1", "shortest"]),
])
def test_params_that_cannot_fit_the_data_are_refused_at_planning(tmp_path, cu_file, capsys, model, needles):
    from mlffbench.cli import main

    config = files_config(tmp_path, cu_file, model)
    assert main(["run", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "run").exists()


def test_species_mismatch_on_generated_data_is_refused_at_planning(tmp_path):
    cfg = {**TINY, "models": [{"name": "acegp", "label": "ace", "params": {"species": [28]}}]}
    with pytest.raises(ConfigError, match=r"models\[0\] \(ace\): params.species .*\['Cu'\].*'Cu'"):
        MainJob(load_config(write_config(tmp_path / "c.yaml", cfg)), tmp_path / "run").plan()


def test_cutoff_on_generated_data_is_checked_at_fit_time(pristine, tmp_path):
    """Generated data: the shortest distance is known only once the frames exist; the fit fails in one line."""
    run_dir = copy_run(pristine, tmp_path)
    fit = pristine[1]["accuracy:Cu:mean_energy"]
    inputs = {**fit.inputs, "model": "acegp", "label": "ace", "params": {"cutoff": 1.0}}
    with pytest.raises(ConfigError, match=r"^ace: params.cutoff = 1 Å is not above the shortest .*\(2\.\d+ Å\)"):
        execute("fit_score", inputs, run_dir)
    assert datasets.load(fit.inputs["dataset"], run_dir)  # nothing else touched


def test_source_file_changed_is_a_new_data_set(tmp_path, cu_file, capsys):
    data = tmp_path / "cu.xyz"
    data.write_bytes(cu_file.read_bytes())
    config = files_config(tmp_path, data, {"name": "mean_energy"})
    first = by_name(MainJob(load_config(config), tmp_path / "run").run(progress=False))
    write_frames(data, alloy_frames(4, 1, "bulk", elements=("Cu",)))
    again = by_name(MainJob(load_config(config), tmp_path / "run").run(progress=False))
    (line,) = changed_lines(capsys.readouterr().err, data)
    assert "source file changed" in line and "data:cu is a new data set" in line
    assert again["data:cu"].key != first["data:cu"].key and again["data:cu"].status == "done"
    assert yaml.safe_load(config.read_text())  # the config is unchanged: only the file is
