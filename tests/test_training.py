"""The training protocol (``mlffbench.models.training``): its config checks, the engine's validation hold-out,
how a fit's end is classified, and the watched training program. The families' own fits are tested with their
adapters (tests/test_adapters.py, tests/test_grace.py)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from ase import Atoms

from mlffbench.config.run import config_from_data
from mlffbench.data import splits
from mlffbench.errors import ConfigError
from mlffbench.models import training as tr
from mlffbench.models.registry import get_model_class, model_names
from tests.cli_helpers import cli, one_line_error

BASE = {"name": "t", "datasets": [{"source": "builtin", "names": ["acac"]}],
        "models": [{"name": "mace", "label": "m"}, {"name": "mean_energy"}]}


@pytest.mark.parametrize("block,where,needle", [
    ({"training": {"max_minutes": 0}}, "training.max_minutes", "positive"),
    ({"training": {"max_epochs": 10, "patience": 20}}, "training.patience", "more than max_epochs"),
    ({"training": {"validation_fraction": 1.0}}, "training.validation_fraction", "(0, 1)"),
    ({"training": {"device": "gpu"}}, "training.device", "auto, cpu, cuda"),
    ({"training": {"epochs": 3}}, "training.epochs", "unknown key"),
    ({"models": [{"name": "mace", "training": {"patience": 0}}]}, "models[0].training.patience", ">= 1"),
    ({"models": [{"name": "mean_energy", "training": {"max_epochs": 3}}]}, "models[0].training",
     "not trained by epochs"),
])
def test_impossible_protocol_is_a_config_error_naming_the_key(tmp_path, block, where, needle):
    with pytest.raises(ConfigError) as err:
        config_from_data({**BASE, **block}, "c.yaml", tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"c.yaml: {where}") and needle in msg, msg


def test_model_overrides_the_run_protocol(tmp_path):
    cfg = config_from_data({**BASE, "training": {"max_epochs": 50, "patience": 5},
                            "models": [{"name": "mace", "training": {"max_minutes": 7}}]}, "c.yaml", tmp_path)
    p = cfg.training_protocol(cfg.models[0])
    assert (p.max_epochs, p.patience, p.max_minutes) == (50, 5, 7)
    assert cfg.training_protocol(None).max_minutes == tr.Training().max_minutes


def test_family_param_that_the_protocol_sets_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"params\.epochs .*training\.max_epochs"):
        config_from_data({**BASE, "models": [{"name": "mace", "params": {"epochs": 3}}]}, "c.yaml", tmp_path)


def _frames(groups: dict[str, int]) -> list[Atoms]:
    out = []
    for g, n in groups.items():
        for _ in range(n):
            a = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
            a.info["config_type"] = g
            out.append(a)
    return out


def test_validation_hold_out_is_per_group_seeded_and_disjoint():
    frames = _frames({"a": 30, "b": 10, "c": 1})
    train = np.arange(len(frames))
    keep, held = splits.validation_by_group(frames, train, 0.1, seed=3)
    groups = [frames[i].info["config_type"] for i in held]
    assert groups.count("a") == 3 and groups.count("b") == 1 and groups.count("c") == 0  # one frame stays
    assert not set(keep) & set(held) and len(keep) + len(held) == len(frames)
    again = splits.validation_by_group(frames, train, 0.1, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(splits.validation_by_group(frames, train, 0.1, seed=4)[1], held)


def _curve(values) -> tr.Curve:
    c = tr.Curve()
    for i, v in enumerate(values, 1):
        c.add(i, 2.0 * i, {"loss": v, "forces": 10 * v})
    return c


def test_outcome_tells_converged_from_budget_from_diverged():
    p = tr.Training(max_epochs=100, patience=3)
    flat = tr.outcome(_curve([5, 3, 2, 2.5, 2.1, 2.2]), p, None, 12.0)
    assert flat["status"] == "converged" and flat["best_epoch"] == 3 and flat["epochs_without_improvement"] == 3
    falling = tr.outcome(_curve([10 - 0.5 * i for i in range(15)]), p, "max_epochs", 30.0)
    assert falling["status"] == "budget" and falling["stopped_by"] == "max_epochs"
    assert falling["improvement_last_10_epochs"] == pytest.approx((8.0 - 3.0) / 8.0)  # best 10 epochs before the end: 8
    nan = tr.outcome(_curve([5, 3, float("nan")]), p, "nan", 6.0)
    assert nan["status"] == "diverged" and nan["last_good_epoch"] == 2 and nan["best_epoch"] == 2
    # a relative min_delta: 1 % steps do not count as improving when 5 % is asked for
    slow = tr.outcome(_curve([1.0, 0.99, 0.98, 0.97]), tr.Training(max_epochs=10, patience=3, min_delta=0.05),
                      None, 8.0)
    assert slow["status"] == "converged"


def test_fit_jobs_of_epoch_trained_families_carry_the_protocol(tmp_path):
    from mlffbench.engine.runner import MainJob

    trained = [n for n in model_names() if get_model_class(n).epoch_trained]
    assert {"mace", "nequip", "torchani"} <= set(trained)
    cfg = config_from_data({**BASE, "training": {"max_epochs": 4, "patience": 2},
                            "tasks": {"accuracy": True}}, "c.yaml", tmp_path)
    jobs = [j for j in MainJob(cfg, tmp_path / "run").plan() if j.kind == "fit_score"]
    by_model = {j.inputs["model"]: j.inputs for j in jobs}
    assert by_model["mace"]["training"]["max_epochs"] == 4 and by_model["mace"]["training"]["patience"] == 2
    assert "training" not in by_model["mean_energy"]


def test_watched_program_stops_at_its_deadline_and_on_request(tmp_path):
    sleeper = [sys.executable, "-c", "import time; print('start', flush=True); time.sleep(60)"]
    start = time.perf_counter()
    rc, wall, stopped = tr.run_watched(sleeper, tmp_path / "a.log", tmp_path, tr.Training(max_minutes=0.02),
                                       interval_s=0.2)
    assert stopped and wall < 20 and time.perf_counter() - start < 20 and rc != 0
    assert "start" in (tmp_path / "a.log").read_text()
    calls = []
    rc, wall, stopped = tr.run_watched(sleeper, tmp_path / "b.log", tmp_path, tr.Training(),
                                       poll=lambda: calls.append(1) or len(calls) >= 2, interval_s=0.2)
    assert stopped and wall < 20
    rc, wall, stopped = tr.run_watched([sys.executable, "-c", "pass"], tmp_path / "c.log", tmp_path, tr.Training())
    assert rc == 0 and not stopped


def test_progress_file_round_trip_and_text(tmp_path):
    p = tr.Training(max_epochs=300, max_minutes=60)
    tr.write_progress(tmp_path, 12, p, 120.0, 84.1)
    text = tr.progress_text(tr.read_progress(tmp_path))
    assert text.startswith("epoch 12/300 F 84.1 meV/Å") and text.endswith("min left")
    assert tr.read_progress(tmp_path / "nothing") is None


def test_impossible_budget_refused_by_run_before_anything_is_written(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ndatasets: [{source: builtin, names: [acac]}]\ntraining: {max_minutes: 0}\n"
                   "models: [{name: mean_energy}]\n")
    one_line_error(cli("run", cfg, "--run-dir", tmp_path / "run"), "training.max_minutes")
    assert not (tmp_path / "run").exists()


def test_cuda_without_a_gpu_is_refused_at_planning(tmp_path, monkeypatch):
    from mlffbench import envs
    from mlffbench.engine.runner import MainJob

    monkeypatch.setattr(envs, "gpu_present", lambda: False)
    cfg = config_from_data({**BASE, "training": {"device": "cuda"}}, "c.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"models\[0\] \(m\): training.device = cuda, .*no NVIDIA GPU.*mace"):
        MainJob(cfg, tmp_path / "run").plan()
    assert not (tmp_path / "run").exists()
