"""Grid search task (TM23 SI S7, Tables S14-S17): validation, selection rule, a tiny ACE GP grid on real LAMMPS
data with the retrain job, resume, failed grid points, and the cost table."""

from __future__ import annotations

import copy
import json
import math

import pytest
import yaml

from mlffbench.config import load_config
from mlffbench.engine.runner import MainJob, results_table
from mlffbench.engine.store import RunStore
from mlffbench.errors import ConfigError
from mlffbench.models.base import load_potential
from mlffbench.tasks import cost, grid

GRID = {"params": {"cutoff": [3.5, 5.0], "n_max": [2, 4]}, "train_frames": 12, "test_frames": 8}
CFG = {
    "name": "grid",
    "seed": 0,
    "data": {"elements": ["Cu"], "frames_per_temperature": 20, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
    "models": [{"name": "acegp", "label": "b2", "params": {"l_max": 2}}],
    "tasks": {"accuracy": False, "grid": GRID},
    "execution": {"executor": "inprocess"},
}


def with_grid(**changes) -> dict:
    cfg = copy.deepcopy(CFG)
    cfg["tasks"]["grid"].update(changes)
    return cfg


def run(tmp_path, cfg, run_dir):
    path = tmp_path / f"{run_dir.name}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return {job.name: job for job in MainJob(load_config(path), run_dir).run(progress=False)}


def plan(tmp_path, cfg):
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return MainJob(load_config(path), tmp_path / "never").plan()


# -- validation ----------------------------------------------------------------------------------------


def assert_config_error(tmp_path, cfg: dict, needles) -> None:
    """Loading ``cfg`` fails with one line naming the file and every needle."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.parametrize("grid_cfg, needles", [
    ({"params": {}}, ["tasks.grid.params", "at least one"]),
    ({"params": {"n_max": []}}, ["tasks.grid.params.n_max", "at least one value"]),
    ({"params": {"cutoff": [4, 4.0]}}, ["tasks.grid.params.cutoff", "distinct"]),
    ({"params": {"n_max": [2]}, "by_model": {"nope": {"n_max": [3]}}}, ["tasks.grid.by_model.nope", "b2"]),
    ({"params": {"n_max": [2]}, "select": "mae"}, ["tasks.grid.select", "mae"]),
    ({"params": {"n_max": [2]}, "train_frames": 0}, ["tasks.grid.train_frames"]),
    ({"params": {"n_max": [2]}, "retrain": "yes"}, ["tasks.grid.retrain"]),
    ({"params": {"n_max": [2]}, "seed": 1}, ["tasks.grid.seed", "unknown key"]),
])
def test_config_errors_name_the_key(tmp_path, grid_cfg, needles):
    assert_config_error(tmp_path, {**CFG, "tasks": {"accuracy": False, "grid": grid_cfg}}, needles)


@pytest.mark.parametrize("cfg, needles", [
    (with_grid(params={"n_max": [4, -1]}), ["tasks.grid.params (models[0])", "n_max", "-1"]),
    (with_grid(params={"n_mx": [4]}), ["tasks.grid.params (models[0])", "n_mx"]),
    (with_grid(train_frames=40, test_frames=9), ["tasks.grid", "48 training frames"]),  # 3 x (20 - 4)
    ({**with_grid(select="likelihood"), "models": [{"name": "mean_energy"}]}, ["tasks.grid.select", "mean_energy"]),
])
def test_planning_checks_grid_points_and_sizes(tmp_path, cfg, needles):
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, cfg)
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert not (tmp_path / "never").exists()


def test_plan_shape_and_keys(tmp_path):
    jobs = {j.name: j for j in plan(tmp_path, CFG)}
    points = [j for j in jobs.values() if j.inputs.get("point", {}).get("grid")]
    assert len(points) == 4 and "grid:Cu:b2:cutoff=3.5:n_max=2" in jobs
    best = jobs["grid:Cu:b2:best=force_mae"]
    assert set(best.after) == {p.key for p in points} and best.inputs["after"] == list(best.after)
    assert best.inputs["split"] == {"kind": "last", "test_last": CFG["split"]["test_last"]}
    assert best.depends == (jobs["data:Cu"].key,)
    again = {j.name: j.key for j in plan(tmp_path, CFG)}
    assert again == {name: j.key for name, j in jobs.items()}  # deterministic keys
    # the retrain is keyed by what it waits for: another grid gives another retrain key, same data key
    other = {j.name: j.key for j in plan(tmp_path, with_grid(params={"cutoff": [3.5, 5.0], "n_max": [2, 6]}))}
    assert other["grid:Cu:b2:best=force_mae"] != best.key and other["data:Cu"] == jobs["data:Cu"].key
    assert other["grid:Cu:b2:cutoff=3.5:n_max=2"] == jobs["grid:Cu:b2:cutoff=3.5:n_max=2"].key
    by_model = with_grid(by_model={"b2": {"n_max": [3]}})
    assert sum(1 for j in plan(tmp_path, by_model) if j.inputs.get("point", {}).get("grid")) == 2


# -- selection rule ------------------------------------------------------------------------------------


def fake(point: dict, mae: float, lml: float | None) -> dict:
    return {"point": {"grid": point}, "tests": {"test": {"overall": {"forces.mae": mae, "forces.percent": 10 * mae}}},
            "model_info": {} if lml is None else {"log_marginal_likelihood": lml}}


def test_choose_follows_tm23_rule():
    a, b, c = fake({"n": 1}, 0.2, 50.0), fake({"n": 2}, 0.1, 10.0), fake({"n": 3}, 0.3, 90.0)
    by_mae = grid.choose([a, None, b, c], "force_mae")
    assert by_mae.params == {"n": 2} and by_mae.force_mae == 0.1  # MAE decides when the two disagree
    assert by_mae.likelihood_params == {"n": 3} and by_mae.agree is False
    assert (by_mae.n_points, by_mae.n_failed) == (3, 1)
    assert grid.choose([a, b, c], "likelihood").params == {"n": 3}
    tie = grid.choose([fake({"n": 1}, 0.1, 5.0), fake({"n": 2}, 0.1, 7.0)], "force_mae")
    assert tie.params == {"n": 2} and tie.agree is True  # equal MAE: larger likelihood
    assert grid.choose([fake({"n": 1}, 0.1, None), fake({"n": 2}, 0.1, None)], "force_mae").params == {"n": 1}
    assert grid.choose([fake({"n": 1}, math.nan, 1.0), fake({"n": 2}, 0.5, 0.0)], "force_mae").params == {"n": 2}
    with pytest.raises(RuntimeError, match="none of the 2 grid points"):
        grid.choose([None, None], "force_mae")
    with pytest.raises(RuntimeError, match="likelihood"):
        grid.choose([fake({"n": 1}, 0.1, None)], "likelihood")


# -- a tiny grid on real data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """First without the retrain (an interrupted search, in effect), then with it: the grid jobs are reused."""
    tmp = tmp_path_factory.mktemp("grid")
    first = run(tmp, with_grid(retrain=False), tmp / "run")
    second = run(tmp, CFG, tmp / "run")
    return tmp, first, second


def test_grid_points_done_and_reused(grid_run):
    _, first, second = grid_run
    assert all(j.status == "done" for j in second.values()), [(j.name, j.error) for j in second.values()]
    assert len(first) == 1 + 4 and len(second) == 1 + 4 + 1
    for name, job in first.items():
        assert second[name].key == job.key and second[name].attempts == 1  # skipped, not rerun
        assert second[name].result == job.result


def test_retrain_uses_the_minimum_force_mae_point(grid_run):
    _, _, jobs = grid_run
    points = [j.result for j in jobs.values() if j.kind == "fit_score" and "grid" in j.result["point"]]
    assert all(p["n_train"] == 12 and p["tests"]["test"]["n_test"] == 8 for p in points)
    maes = {tuple(sorted(p["point"]["grid"].items())): p["tests"]["test"]["overall"]["forces.mae"] for p in points}
    assert len(set(maes.values())) == 4  # the grid points are different models
    best_point = dict(min(maes, key=maes.get))
    best = jobs["grid:Cu:b2:best=force_mae"].result
    assert best["selection"]["params"] == best_point
    assert {k: best["params"][k] for k in best_point} == best_point and best["params"]["l_max"] == 2
    assert best["n_train"] == 48 and best["tests"]["test"]["n_test"] == 12  # the full split, scored as accuracy
    lmls = {tuple(sorted(p["point"]["grid"].items())): p["model_info"]["log_marginal_likelihood"] for p in points}
    assert best["selection"]["likelihood_params"] == dict(max(lmls, key=lmls.get))
    # the saved model was trained with the chosen params
    run_dir = grid_run[0] / "run"
    potential = load_potential(run_dir / "models" / jobs["grid:Cu:b2:best=force_mae"].inputs["job_id"] / "potential.json")
    assert potential.descriptor.cutoff == pytest.approx(best_point["cutoff"])
    assert json.loads(json.dumps(potential.info["params"]))["n_max"] == best_point["n_max"]


def test_grid_table_and_cost_rows(grid_run):
    _, _, jobs = grid_run
    results = [j.result for j in jobs.values() if j.kind == "fit_score"]
    (row,) = grid.summarise(results)
    best = jobs["grid:Cu:b2:best=force_mae"].result
    assert row.choice.params == best["selection"]["params"] and row.retrained["n_train"] == 48
    assert row.retrained["force_mae"] == best["tests"]["test"]["overall"]["forces.mae"]
    text = results_table(list(jobs.values()))
    assert "Grid search" in text and "Cost per task" in text
    (c,) = cost.summarise(results)
    assert (c.task, c.model, c.jobs) == ("grid", "b2", 5)
    assert c.fit_s_median > 0 and c.predict_us_per_atom > 0 and c.peak_rss_mb > 10
    assert c.descriptor_dim[0] < c.descriptor_dim[1]  # n_max 2 vs 4
    assert c.n_parameters is not None and c.hardware and "cpu" in c.hardware[0]


def test_rerun_does_no_new_work(grid_run):
    tmp, _, second = grid_run
    again = run(tmp, CFG, tmp / "run")
    assert {n: (j.key, j.attempts, j.result) for n, j in again.items()} == \
        {n: (j.key, j.attempts, j.result) for n, j in second.items()}


def test_failed_points_are_skipped_and_all_failed_fails_the_retrain(tmp_path):
    """EMT cannot label Mo: that grid point fails, the retrain takes the LAMMPS one; with only EMT it fails."""
    cfg = {**CFG, "data": {**CFG["data"], "elements": ["Mo"], "frames_per_temperature": 10},
           "models": [{"name": "labeler"}],
           "tasks": {"accuracy": False, "grid": {"params": {"labeler": [{"name": "emt"}, {"name": "lammps"}]},
                                                  "train_frames": 4, "test_frames": 4}}}
    jobs = run(tmp_path, cfg, tmp_path / "run")
    failed = [j for j in jobs.values() if j.status == "failed"]
    assert [j.name for j in failed] == ["grid:Mo:labeler:labeler={'name': 'emt'}"]
    best = jobs["grid:Mo:labeler:best=force_mae"]
    assert best.status == "done" and best.result["params"]["labeler"] == {"name": "lammps"}
    assert best.result["selection"]["n_failed"] == 1
    assert best.result["tests"]["test"]["overall"]["forces.mae"] < 1e-6

    only_emt = copy.deepcopy(cfg)
    only_emt["tasks"]["grid"]["params"]["labeler"] = [{"name": "emt"}]
    jobs = run(tmp_path, only_emt, tmp_path / "run")
    best = jobs["grid:Mo:labeler:best=force_mae"]
    assert best.status == "failed" and "none of the 1 grid points" in best.error
    store = RunStore(tmp_path / "run")
    assert store.integrity_check() == "ok"
    store.close()


def test_builtin_grid_configs_and_notes():
    from mlffbench.engine.runner import protocol_notes

    tm23 = load_config("tm23")
    assert tm23.tasks.grid.axes("B2-z2") == grid.TM23_ACE_GRID["B2"]
    assert tm23.tasks.grid.axes("B1-z1") == grid.TM23_ACE_GRID["B1"]
    notes = protocol_notes(tm23)
    assert any(n.startswith("grid search: 200 training / 100 test") for n in notes)
    assert not any(n.startswith("grid search B") for n in notes)  # the SI S7 bounds: no deviation to state
    small = load_config("grid")
    assert small.tasks.grid.retrain and "quick" not in small.name
    assert any(n.startswith("grid search ace-B2: cutoff [4.0, 5.0, 6.0]") for n in protocol_notes(small))
    assert load_config("quick").tasks.grid is None and load_config("quick").tasks.size_extensivity is None


# -- finite-size test (TM23 Fig 8): the grid on its own larger-cell data set ---------------------------

LARGE = {"params": {"cutoff": [3.5, 5.0]}, "train_frames": 8, "test_frames": 4, "data": "large",
         "large_min_length": 10.0, "large_frames_per_temperature": 16, "large_temperatures": ["melt"]}
LARGE_CFG = {**CFG, "data": {**CFG["data"], "frames_per_temperature": 5},
             "tasks": {"accuracy": False, "grid": LARGE}}


def test_large_cell_grid_reads_the_large_frames(tmp_path):
    from mlffbench.data.io import read_frames

    jobs = run(tmp_path, LARGE_CFG, tmp_path / "run")
    assert all(j.status == "done" for j in jobs.values()), [(j.name, j.error) for j in jobs.values()]
    small, large = jobs["data:Cu"], jobs["data:Cu@grid-large"]
    assert large.inputs["name"] == "Cu@grid-large" and large.inputs["data"]["temperatures"] == {"melt": 1.25}
    n_large = large.result["cell"]["natoms"]
    assert small.result["cell"]["natoms"] == 31 and n_large > 3 * 31
    frames = read_frames(tmp_path / "run" / "datasets" / "Cu@grid-large" / "Cu" / "Cu_melt.extxyz", require=("energy", "forces"))
    assert len(frames) == 16 and len(frames[0]) == n_large
    assert not (tmp_path / "run" / "datasets" / "Cu@grid-large" / "Cu" / "Cu_cold.extxyz").exists()
    points = [j for j in jobs.values() if j.kind == "fit_score" and "grid" in j.result["point"]]
    assert len(points) == 2
    planned = {j.name: j for j in plan(tmp_path, LARGE_CFG)}
    assert all(large.key in planned[j.name].depends for j in points)
    for j in points:  # every grid job trained and tested on large-cell frames only
        assert j.inputs["variants"]["grid-large"]["data_key"] == large.key and j.inputs["split"]["data"] == "grid-large"
        r = j.result
        assert r["n_train"] == 8 and r["n_train_atoms"] == 8 * n_large
        assert r["tests"]["test"]["n_test"] == 4 and r["tests"]["test"]["n_atoms"] == 4 * n_large
        assert set(r["tests"]["test"]["by_group"]) == {"melt"}
        assert 0 < r["tests"]["test"]["overall"]["forces.percent"] < 100
    best = jobs["grid:Cu:b2:best=force_mae"]  # the retrain: the large set's full split (3 held-out melt frames)
    assert best.result["n_train_atoms"] == 13 * n_large and best.result["tests"]["test"]["n_test"] == 3
    rows = grid.summarise([j.result for j in jobs.values() if j.kind == "fit_score"])
    assert len(rows) == 1 and rows[0].n_train == 8 and rows[0].choice.n_points == 2


def test_large_cell_grid_keys_and_notes(tmp_path):
    from mlffbench.engine.runner import protocol_notes

    main = {j.name: j for j in plan(tmp_path, CFG)}
    assert "variants" not in main["grid:Cu:b2:cutoff=3.5:n_max=2"].inputs  # data: main is unchanged
    assert main["grid:Cu:b2:cutoff=3.5:n_max=2"].inputs["split"] == {
        "kind": "grid", "base": {"kind": "last", "test_last": CFG["split"]["test_last"]}, "train_frames": 12,
        "test_frames": 8}
    path = tmp_path / "large.yaml"
    path.write_text(yaml.safe_dump(LARGE_CFG))
    notes = protocol_notes(load_config(path))
    assert any(n.startswith("grid search finite-size test (TM23 Fig 8") and ">= 10 Å" in n for n in notes)
    fs = load_config("finite-size")
    assert fs.tasks.grid.data == "large" and fs.tasks.grid.axes("B2-z2") == grid.TM23_FIG8_GRID
    fs_notes = protocol_notes(fs)
    assert not any(n.startswith("grid search B2-z2") for n in fs_notes)  # Fig 8's grid: no axes deviation
    assert any("640-atom Os" in n for n in fs_notes)
    fs_jobs = MainJob(fs, tmp_path / "never").plan()
    assert len([j for j in fs_jobs if j.kind == "fit_score"]) == 4 * 13 * 5
    assert [j.name for j in fs_jobs if j.kind == "data"] == ["data:Ti", "data:Ti@grid-large"]
    assert load_config("quick").tasks.grid is None and load_config("tm23").tasks.grid.data == "main"


@pytest.mark.parametrize("change, needles", [
    ({"data": "huge"}, ["tasks.grid.data", "huge"]),
    ({"large_min_length": -1.0}, ["tasks.grid.large_min_length"]),
    ({"large_frames_per_temperature": 0}, ["tasks.grid.large_frames_per_temperature"]),
    ({"large_temperatures": []}, ["tasks.grid.large_temperatures"]),
    ({"large_cells": True}, ["tasks.grid.large_cells", "unknown key"]),
])
def test_large_cell_config_errors(tmp_path, change, needles):
    assert_config_error(tmp_path, {**LARGE_CFG, "tasks": {"accuracy": False, "grid": {**LARGE, **change}}}, needles)


@pytest.mark.parametrize("change, needles", [
    ({"large_min_length": 7.0}, ["tasks.grid.large_min_length", "data.min_length"]),
    ({"large_temperatures": ["hot"]}, ["tasks.grid.large_temperatures[0]", "hot"]),
    ({"train_frames": 12}, ["tasks.grid", "13 training frames", "large cells"]),  # 16 - 3 held out
])
def test_large_cell_planning_checks(tmp_path, change, needles):
    with pytest.raises(ConfigError) as err:
        plan(tmp_path, {**LARGE_CFG, "tasks": {"accuracy": False, "grid": {**LARGE, **change}}})
    for needle in needles:
        assert needle in str(err.value), str(err.value)
    assert not (tmp_path / "never").exists()
