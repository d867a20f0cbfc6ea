"""GRACE (tensorpotential, TensorFlow CPU) end to end: its environment is built (cached), a tiny GRACE-1L model is
trained by gracemaker (2 epochs, training.max_epochs) through the engine (``MainJob``, accuracy task, the job run
by the worker inside the ``grace`` env) on the tiny Cu/Au alloy data of test_adapters (two species, per-element energy shift, stress), and the saved
potential (the exported SavedModel directory named in potential.json) is reloaded in the env and checked against
finite differences of its own energy. A direct fit stopped early by the protocol's patience (gracemaker has no
early stopping: the adapter's poll stops it and exports the best-test checkpoint with ``gracemaker -r -s``).

Skipped with the build error when the ``grace`` environment cannot be built.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from test_adapters import ALLOY, alloy_dataset, assert_info, assert_scored, check_in_env, family_python, run_alloy

from mlffbench.errors import ConfigError
from mlffbench.models.registry import get_model_class

#: a tiny GRACE-1L (preset kwargs shrink the "small" complexity): seconds per epoch, not accuracy
GRACE_TINY = {"kwargs": {"lmax": 2, "n_rad_max": 8, "max_order": 2, "n_mlp_dens": 4, "n_rad_base": 4,
                         "prod_func_n_max": 8},
              "cutoff": 5.0, "batch_size": 4, "jit_compile": False, "stress_weight": 1.0}


@pytest.mark.parametrize("params,match", [
    ({"layers": 2}, r"unknown param\(s\) \['layers'\]"),
    ({"preset": "GRACE_9LAYER"}, "params.preset"),
    ({"complexity": "huge"}, "params.complexity"),
    ({"epochs": 2}, r"params.epochs is set by the run's training protocol: use training.max_epochs"),
    ({"param_dtype": "float64"}, "use training.precision"),
    ({"valid_fraction": 0.2}, "use training.validation_fraction"),
    ({"device": "cuda"}, "use training.device"),
    ({"force_weight": -1}, "params.force_weight"),
    ({"kwargs": {"rcut": 4.0}}, "params.cutoff"),
    ({"kwargs": [1]}, "params.kwargs"),
    ({"cutoff": 0}, "params.cutoff"),
])
def test_grace_params_are_checked_at_planning(params, match):
    with pytest.raises(ConfigError, match=match) as err:
        get_model_class("grace").check_params(params)
    assert "\n" not in str(err.value)


def test_grace_default_params_plan():
    get_model_class("grace").check_params({})
    get_model_class("grace").check_params(GRACE_TINY)


@pytest.mark.slow
def test_grace_trains_through_engine_and_predicts(tmp_path):
    python = family_python("grace")
    # no `python:` key: the runner finds the family's environment itself (Model.env -> envs.python_for)
    # float64 parameters (training.precision) for the finite-difference check below
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "grace", "params": GRACE_TINY,
                                                "training": {"max_epochs": 2, "patience": 1, "precision": "float64"}}])
    job = jobs[f"accuracy:{ALLOY}:grace"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, d=1e-4, d_strain=1e-5, data=data)
    info = checked["info"]
    assert_info(info, "tensorpotential")
    assert info["version"] == "0.6.2.1" and info["tensorflow"] == "2.20.0"
    assert info["epochs"] == 2 and info["train_s_per_epoch"] > 0 and info["n_parameters"] > 0
    assert info["stress_trained"] and info["preset"] == "GRACE_1LAYER_latest" and info["cutoff"] == 5.0
    assert info["model_kwargs"]["lmax"] == 2 and info["n_train"] + info["n_valid"] == 24
    assert 1 <= info["best_epoch"] <= 2 and info["param_dtype"] == "float64"
    record = job.result["training"]  # the protocol's record: a curve of the 2 epochs in the benchmark's units
    assert record["stopped_by"] == "max_epochs" and record["epochs"] == 2
    assert record["status"] in ("budget", "converged")
    assert [e["epoch"] for e in record["curve"]] == [1, 2] and record["monitor"] == "loss"
    last = record["curve"][-1]
    assert last["valid"]["forces"] > 1 and last["valid"]["stress"] >= 0 and last["train"]["loss"] > 0  # meV/Å, GPa
    assert last["wall_s"] > record["curve"][0]["wall_s"] > 0 and last["lr"] > 0
    assert record["protocol"]["precision"] == "float64" and record["n_valid"] == info["n_valid"]
    assert any("loss weights E/F/S = 16/32/1" in n for n in record["notes"])
    shift = info["energy_shift_eV_per_atom"]  # gracemaker's per-element least squares, read from its log
    assert sorted(shift) == ["Au", "Cu"] and shift["Au"] - shift["Cu"] > 0.3
    # float64 parameters: forces and stress are the exact derivatives of the energy
    assert checked["force_err"] < 1e-6 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-6 * max(1.0, checked["stress_scale"]) + 1e-8


#: a direct fit inside the grace env: min_delta 0.9 (a 90 % fall of the test loss per epoch) cannot be met, so the
#: protocol's patience of 1 stops gracemaker after epoch 2 (or the one running then) of 20 and the best-test
#: checkpoint is exported
_EARLY = """
import json, sys
import ase.io
from mlffbench.models.adapters.grace import GraceModel
from mlffbench.models.training import Training
frames = ase.io.read(sys.argv[1], ":")
params = json.loads(sys.argv[2])
pot = GraceModel().fit(frames[:12], None, params, sys.argv[3],
                       training=Training(max_epochs=20, patience=1, min_delta=0.9, validation_fraction=0.25))
rec = pot.info["training"]
print(json.dumps({"model": pot.model_file, "rec": {k: rec[k] for k in ("status", "stopped_by", "epochs", "best_epoch")},
                  "epochs": pot.info["epochs"], "n_valid": rec["n_valid"], "energy": pot.evaluate(frames[12])[0]}))
"""


@pytest.mark.slow
def test_grace_patience_stops_gracemaker_and_exports_the_best(tmp_path):
    python = family_python("grace")
    data = alloy_dataset(tmp_path)["files"][0]
    out = subprocess.run([python, "-c", _EARLY, data, json.dumps(GRACE_TINY), str(tmp_path / "job")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rec"]["stopped_by"] == "patience" and got["rec"]["status"] == "converged"
    # the poll sees epoch 2 stale and stops gracemaker; an epoch finishing meanwhile is kept in the curve
    assert 2 <= got["rec"]["epochs"] == got["epochs"] < 20 and got["n_valid"] == 3
    assert got["model"].endswith("seed/0/saved_model")  # exported by gracemaker -r -s, not its final_model
    assert (tmp_path / "job" / "progress.json").is_file()
