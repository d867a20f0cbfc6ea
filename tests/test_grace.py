"""GRACE (tensorpotential, TensorFlow CPU) end to end: its environment is built (cached), a tiny GRACE-1L model is
trained by gracemaker through the engine (``MainJob``, accuracy task, the job run by the worker inside the ``grace``
env) on the tiny Cu/Au alloy data of test_adapters (two species, per-element energy shift, stress), and the saved
potential (the exported SavedModel directory named in potential.json) is reloaded in the env and checked against
finite differences of its own energy.

Skipped with the build error when the ``grace`` environment cannot be built.
"""

from __future__ import annotations

import pytest
from test_adapters import ALLOY, assert_info, assert_scored, check_in_env, family_python, run_alloy

from mlffbench.errors import ConfigError
from mlffbench.models.registry import get_model_class

#: a tiny GRACE-1L (preset kwargs shrink the "small" complexity), 2 epochs: seconds, not accuracy
GRACE_TINY = {"kwargs": {"lmax": 2, "n_rad_max": 8, "max_order": 2, "n_mlp_dens": 4, "n_rad_base": 4,
                         "prod_func_n_max": 8},
              "cutoff": 5.0, "epochs": 2, "batch_size": 4, "jit_compile": False, "stress_weight": 1.0}


@pytest.mark.parametrize("params,match", [
    ({"layers": 2}, r"unknown param\(s\) \['layers'\]"),
    ({"preset": "GRACE_9LAYER"}, "params.preset"),
    ({"complexity": "huge"}, "params.complexity"),
    ({"epochs": 0}, "params.epochs"),
    ({"force_weight": -1}, "params.force_weight"),
    ({"kwargs": {"rcut": 4.0}}, "params.cutoff"),
    ({"kwargs": [1]}, "params.kwargs"),
    ({"cutoff": 0}, "params.cutoff"),
    ({"param_dtype": "float16"}, "params.param_dtype"),
    ({"valid_fraction": 1.5}, "valid_fraction"),
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
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "grace", "params": GRACE_TINY}])
    job = jobs[f"accuracy:{ALLOY}:grace"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, d=1e-4, d_strain=1e-5, data=data)
    info = checked["info"]
    assert_info(info, "tensorpotential")
    assert info["version"] == "0.6.2.1" and info["tensorflow"] == "2.20.0"
    assert info["epochs"] == 2 and info["train_s_per_epoch"] > 0 and info["n_parameters"] > 0
    assert info["stress_trained"] and info["preset"] == "GRACE_1LAYER_latest" and info["cutoff"] == 5.0
    assert info["model_kwargs"]["lmax"] == 2 and info["n_train"] + info["n_valid"] == 24
    assert 1 <= info["best_epoch"] <= 2
    shift = info["energy_shift_eV_per_atom"]  # gracemaker's per-element least squares, read from its log
    assert sorted(shift) == ["Au", "Cu"] and shift["Au"] - shift["Cu"] > 0.3
    # float64 parameters: forces and stress are the exact derivatives of the energy
    assert checked["force_err"] < 1e-6 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-6 * max(1.0, checked["stress_scale"]) + 1e-8
