"""The protocols (accuracy, transfer, learning curve) with the native ACE GP on real LAMMPS data, through the
in-process executor, the Dask executor and the worker entry point (python -m mlffbench.worker)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from mlffbench.config import load_config
from mlffbench.engine.runner import MainJob, results_table
from mlffbench.tasks import learning_curve, transfer

ACE = {"n_max": 4, "l_max": 2}
CFG = {
    "name": "tasks",
    "seed": 0,
    "data": {"elements": ["Cu"], "frames_per_temperature": 20, "equilibration_fs": 200},
    "split": {"test_last": 0.2},
    "models": [{"name": "acegp", "label": "b2", "params": ACE},
               {"name": "acegp", "label": "b2-worker", "params": ACE, "python": sys.executable,
                "tasks": ["accuracy"]}],
    "tasks": {"transfer": {"train": "cold", "test": ["warm", "melt"]},
              "learning_curve": {"sizes": [8, 16, 48], "replicates": 2, "sweep": {"l_max": [1, 2]}}},
    "execution": {"executor": "inprocess"},
}


def run(tmp_path, cfg, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return {job.name: job for job in MainJob(load_config(path), tmp_path / name).run(progress=False)}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    return run(tmp_path_factory.mktemp("tasks"), CFG, "inprocess")


def scores(job):
    return {t: v["overall"] for t, v in job.result["tests"].items()}


def test_every_job_done(jobs):
    assert all(j.status == "done" for j in jobs.values()), [(j.name, j.error) for j in jobs.values()]
    fits = [j for j in jobs.values() if j.kind == "fit_score"]
    assert len(fits) == 1 + 1 + 2 * 2 * 3 + 1  # accuracy, transfer, curve (2 l_max x 2 replicates x 3 sizes), worker


def test_worker_entry_point_gives_the_same_model(jobs):
    a, b = jobs["accuracy:Cu:b2"].result, jobs["accuracy:Cu:b2-worker"].result
    for key, value in scores(jobs["accuracy:Cu:b2"])["test"].items():
        # the worker process gets the same one-thread environment as an in-process job: the same numbers
        assert scores(jobs["accuracy:Cu:b2-worker"])["test"][key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert a["n_train"] == b["n_train"] == 48


def test_accuracy_is_far_better_than_the_label_scale(jobs):
    o = scores(jobs["accuracy:Cu:b2"])["test"]
    assert o["forces.percent"] < 30  # 48 frames, tiny descriptor: far below the 100 % of predicting zero forces
    assert o["energy_per_atom.mae"] < 0.01


def test_transfer_trains_on_cold_and_tests_each_other_temperature(jobs):
    job = jobs["transfer:Cu:b2:train=cold"]
    assert job.result["n_train"] == 20
    assert set(job.result["tests"]) == {"warm", "melt"}
    assert all(t["n_test"] == 20 for t in job.result["tests"].values())
    rows = transfer.summarise([job.result])
    melt, warm = sorted(rows, key=lambda r: r.test)
    assert melt.force_mae > warm.force_mae  # further from the training temperature, larger error


def test_learning_curve_is_nested_fitted_and_swept(jobs):
    results = [j.result for j in jobs.values() if j.kind == "fit_score" and j.result["task"] == "learning_curve"]
    rows = learning_curve.summarise(results)
    assert sorted(r.sweep["l_max"] for r in rows) == [1, 2]
    for row in rows:
        assert row.sizes == [8, 16, 48]
        assert row.force_mae[-1] < row.force_mae[0]  # more data, smaller error
        assert row.force is not None and row.force.b < 0 and 0 <= row.force.r2 <= 1
    table = results_table(list(jobs.values()))
    for title in ("Accuracy", "Transfer (group hold-out)", "Learning curves"):
        assert title in table
    assert "l_max=1" in table and "l_max=2" in table


def test_power_law_fit_recovers_exponent():
    n = np.array([10, 10, 100, 1000], dtype=float)
    law = learning_curve.PowerLaw.fit(n, 3.0 * n**-0.5)
    assert law.b == pytest.approx(-0.5) and law.a == pytest.approx(3.0) and law.r2 == pytest.approx(1.0)
    assert learning_curve.PowerLaw.fit(np.array([5.0, 5.0]), np.array([1.0, 2.0])) is None
    # the slope's interval: a point on an exact law, covering the true exponent of a noisy one (3 replicates)
    assert law.b_ci[0] == pytest.approx(-0.5, abs=1e-9) and law.b_ci[1] == pytest.approx(-0.5, abs=1e-9)
    sizes = np.repeat([10.0, 30.0, 100.0, 300.0], 3)
    noisy = learning_curve.PowerLaw.fit(sizes, 3.0 * sizes**-0.5 * np.exp(np.random.default_rng(1).normal(0, 0.1, 12)))
    assert noisy.b_ci[0] < -0.5 < noisy.b_ci[1] and noisy.b_ci[1] - noisy.b_ci[0] < 0.3


@pytest.mark.slow
def test_dask_executor_matches_inprocess(jobs, tmp_path):
    cfg = {**CFG, "models": CFG["models"][:1], "tasks": {"learning_curve": None, "transfer": None},
           "execution": {"executor": "dask", "workers": 2}}
    got = run(tmp_path, cfg, "dask")
    assert all(j.status == "done" for j in got.values())
    # every job runs with one thread on both executors (engine/executors.py one_thread): the same numbers
    for key, value in scores(jobs["accuracy:Cu:b2"])["test"].items():
        assert scores(got["accuracy:Cu:b2"])["test"][key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
