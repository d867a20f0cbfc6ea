"""Size extensivity task (MS25 System Size Cross Validation): a larger-cell data set per metal as its own data job,
an ACE GP trained on each cell size and tested on both, ratios; validation."""

from __future__ import annotations

import pytest
import yaml

from mlffbench.config import load_config
from mlffbench.data.io import read_frames
from mlffbench.engine.runner import MainJob, results_table
from mlffbench.errors import ConfigError
from mlffbench.tasks import cost, size_extensivity

CFG = {
    "name": "size",
    "seed": 0,
    "data": {"elements": ["Cu"], "frames_per_temperature": 20, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
    "models": [{"name": "acegp", "label": "b2", "params": {"n_max": 4, "l_max": 2}}],
    "tasks": {"accuracy": True, "size_extensivity": {"large_min_length": 10.0, "frames_per_temperature": 10}},
    "execution": {"executor": "inprocess"},
}


def load(tmp_path, cfg):
    path = tmp_path / "size.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.fixture(scope="module")
def size_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("size")
    run_dir = tmp / "run"
    jobs = MainJob(load(tmp, CFG), run_dir).run(progress=False)
    return run_dir, {j.name: j for j in jobs}


def test_two_data_sets_in_their_own_folders(size_run):
    run_dir, jobs = size_run
    assert all(j.status == "done" for j in jobs.values()), [(j.name, j.error) for j in jobs.values()]
    small, large = jobs["data:Cu"], jobs["data:Cu@large"]
    assert small.key != large.key and large.inputs["name"] == "Cu@large"
    assert small.result["cell"]["natoms"] == 31  # TM23 7 Å Cu cell minus the vacancy
    assert large.result["cell"]["natoms"] > 3 * small.result["cell"]["natoms"]
    for label in ("cold", "warm", "melt"):
        assert len(read_frames(run_dir / "datasets" / "Cu" / "Cu" / f"Cu_{label}.extxyz")) == 20
        frames = read_frames(run_dir / "datasets" / "Cu@large" / "Cu" / f"Cu_{label}.extxyz", require=("energy", "forces"))
        assert len(frames) == 10 and len(frames[0]) == large.result["cell"]["natoms"]
    # the size jobs wait for both data sets; the accuracy job only for the main one
    assert jobs["size_extensivity:Cu:b2:train=small"].inputs["variants"]["large"]["data_key"] == large.key
    assert "variants" not in jobs["accuracy:Cu:b2"].inputs


def test_both_directions_scored_with_ratios(size_run):
    _, jobs = size_run
    results = [j.result for j in jobs.values() if j.kind == "fit_score" and j.result["task"] == "size_extensivity"]
    assert len(results) == 2
    for r in results:
        assert r["n_train"] == 24  # the large set's training frames: 3 x (10 - 2)
        assert set(r["tests"]) == {"small", "large"}
        assert r["tests"]["small"]["n_test"] == 12 and r["tests"]["large"]["n_test"] == 6
    rows = size_extensivity.summarise(results)
    assert [(r.train, r.test) for r in rows] == [("small", "small"), ("small", "large"), ("large", "large"),
                                                ("large", "small")]
    by = {(r.train, r.test): r for r in rows}
    assert by["small", "small"].train_atoms == 31 and by["small", "large"].test_atoms > 100
    cross = by["small", "large"]
    assert cross.force_ratio == pytest.approx(cross.force_mae / by["large", "large"].force_mae)
    assert cross.energy_ratio == pytest.approx(cross.energy_mae / by["large", "large"].energy_mae)
    assert by["large", "small"].force_ratio == pytest.approx(by["large", "small"].force_mae / by["small", "small"].force_mae)
    assert by["small", "small"].force_ratio is None
    for r in rows:  # a local model, sensible errors both ways (forces within 3x of the in-domain model)
        assert 0 < r.force_percent < 60 and (r.force_ratio is None or 0.3 < r.force_ratio < 3)
    text = results_table(list(jobs.values()))
    assert "Size extensivity" in text and "small -> large" in text and "Cost per task" in text
    tasks = {c.task for c in cost.summarise([j.result for j in jobs.values() if j.kind == "fit_score"])}
    assert tasks == {"accuracy", "size_extensivity"}


@pytest.mark.parametrize("change, needles", [
    ({"large_min_length": 7.0}, ["tasks.size_extensivity.large_min_length", "data.min_length"]),
    ({"frames_per_temperature": 0}, ["tasks.size_extensivity.frames_per_temperature"]),
    ({"train_frames": 30}, ["tasks.size_extensivity.train_frames", "30"]),  # large pool: 24
    ({"frames_per_temperature": 1}, ["tasks.size_extensivity.frames_per_temperature", "large cells"]),
    ({"large_min_length": "big"}, ["tasks.size_extensivity.large_min_length", "big"]),
])
def test_validation(tmp_path, change, needles):
    cfg = {**CFG, "tasks": {"size_extensivity": {**CFG["tasks"]["size_extensivity"], **change}}}
    with pytest.raises(ConfigError) as err:
        MainJob(load(tmp_path, cfg), tmp_path / "never").plan()
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert not (tmp_path / "never").exists()
