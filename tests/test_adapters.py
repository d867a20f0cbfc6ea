"""External-package adapters end to end: each family's environment is built (cached under $MLFFBENCH_ENV_CACHE or
~/.cache/mlffbench/envs), its model is trained through the engine (``MainJob``, the model's jobs run by the
worker inside the family env) on tiny LAMMPS Cu data, and the saved potential is reloaded in the env and checked
against finite differences of its own energy (forces = -dE/dx, stress = dE/dε / V with ASE's sign).

A family whose environment cannot be built is skipped with the build error (which names the log).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlffbench import envs
from mlffbench.config import load_config
from mlffbench.engine.runner import MainJob
from mlffbench.errors import ConfigError
from mlffbench.models.registry import get_model_class

DATA = {"elements": ["Cu"], "frames_per_temperature": 10, "equilibration_fs": 200}


def family_python(family: str) -> str:
    """The family's interpreter as the runner gets it (envs.python_for; builds the env on first use)."""
    try:
        python = envs.python_for(family, quiet=True)
    except envs.EnvBuildError as exc:
        pytest.skip(f"model family '{family}' unavailable: {exc}")
    assert python and Path(python).is_file()
    return python


def run_engine(tmp_path: Path, models: list[dict]):
    cfg = {"name": "adapters", "seed": 0, "data": DATA, "split": {"test_last": 0.2}, "models": models,
           "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
           "execution": {"executor": "inprocess"}}
    path = tmp_path / "adapters.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run_dir = tmp_path / "run"
    jobs = MainJob(load_config(path), run_dir).run(progress=False)
    return run_dir, {j.name: j for j in jobs}


#: run inside a family env: reload the saved potential (argv[1]) on a rattled frame of argv[2];
#: ``numeric_forces(d)`` = minus the central difference of its own energy for the first 3 atoms
ENV_PRELUDE = r"""
import json, sys
import numpy as np
from mlffbench.data.io import read_frames
from mlffbench.models.base import load_potential
pot = load_potential(sys.argv[1])
atoms = read_frames(sys.argv[2])[0].copy()
atoms.rattle(0.02, seed=1)
atoms.calc = pot
def numeric_forces(d):
    def one(a, i):
        p0 = atoms.positions.copy()
        energies = []
        for step in (d, -d):
            p = p0.copy(); p[a, i] += step; atoms.positions = p
            energies.append(atoms.get_potential_energy())
        atoms.positions = p0
        return -(energies[0] - energies[1]) / (2 * d)
    return np.array([[one(a, i) for i in range(3)] for a in range(3)])
"""

#: forces of the first 3 atoms and all 6 stress components against finite differences of the energy
#: (steps argv[3] Å and argv[4] strain; argv[5] == "0": none)
CHECK = ENV_PRELUDE + r"""
e = atoms.get_potential_energy(); f = atoms.get_forces(); s = atoms.get_stress()
out = {"energy": float(e), "natoms": len(atoms), "info": pot.info}
if sys.argv[5] != "0":
    d, ds = float(sys.argv[3]), float(sys.argv[4])
    nf = numeric_forces(d)
    ns = pot.calculate_numerical_stress(atoms, d=ds)
    out.update(force_err=float(np.abs(f[:3] - nf).max()), force_scale=float(np.abs(f[:3]).max()),
               stress_err=float(np.abs(s - ns).max()), stress_scale=float(np.abs(s).max()))
print(json.dumps(out))
"""


def check_in_env(python: str, run_dir: Path, job, d: float = 1e-4, d_strain: float = 1e-5,
                 differences: bool = True) -> dict:
    model = run_dir / "models" / job.inputs["job_id"] / "potential.json"
    data = run_dir / "data" / "Cu" / "Cu_warm.extxyz"
    out = subprocess.run([python, "-c", CHECK, str(model), str(data), str(d), str(d_strain), str(int(differences))],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_scored(job):
    assert job.status == "done", job.error
    o = job.result["tests"]["test"]["overall"]
    for key in ("energy_per_atom.mae", "forces.mae", "stress.mae"):
        assert math.isfinite(o[key]), key
    assert job.result["n_train"] == 24 and job.result["tests"]["test"]["n_test"] == 6
    return o


def assert_info(info: dict, package: str):
    assert info["package"] == package and info["version"] not in ("", "not installed")
    assert info["device"] == "cpu"
    assert info["n_parameters"] is None or info["n_parameters"] > 0


# -- planning-time validation (no env needed) --------------------------------------------------------------
def test_adapters_import_without_their_packages():
    """The main venv plans runs with every family (check_params) without mace, nequip, torch ... installed."""
    code = ("import sys\nfrom mlffbench.models.registry import model_names, get_model_class\n"
            "for name in model_names():\n    get_model_class(name).check_params({}) if name not in "
            "('labeler', 'ase_calculator', 'nep_model') else get_model_class(name)\n"
            "heavy = sorted(m for m in ('torch', 'mace', 'nequip', 'e3nn', 'chgnet', 'sevenn', 'quippy', 'deepmd', "
            "'sgdml', 'torchani', 'calorine') if m in sys.modules)\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("family,params,match", [
    ("mace", {"max_L": 7}, "max_L"),
    ("mace", {"epochs": 0}, "epochs"),
    ("mace", {"channels": 8}, "unknown param"),
    ("chgnet", {"shift": "yes"}, "shift"),
    ("ase_calculator", {"calculator": "EMT"}, "module:ClassOrFactory"),
])
def test_params_are_checked_at_planning(family, params, match):
    with pytest.raises(ConfigError, match=match):
        get_model_class(family).check_params(params)


# -- MACE --------------------------------------------------------------------------------------------------
MACE_TINY = {"num_channels": 8, "max_L": 1, "correlation": 2, "max_ell": 2, "r_max": 4.0, "epochs": 2,
             "batch_size": 4, "stage_two_fraction": 0.5}


def test_mace_epoch_time_from_its_log():
    from mlffbench.models.adapters.mace import _epoch_seconds

    log = ("2026-11-21 04:14:39.348 INFO: MACE version: 0.3.16\n"
           "2026-11-21 04:14:40.283 INFO: Started training, reporting errors on validation set\n"
           "2026-11-21 04:14:44.616 INFO: Epoch 0: head: Default, loss=0.02260505\n"
           "2026-11-21 04:14:59.183 INFO: Training complete\n")
    assert _epoch_seconds(log, 5) == pytest.approx(18.9 / 5)
    assert _epoch_seconds("no timestamps here", 5) is None


@pytest.mark.slow
def test_mace_trains_through_engine_and_predicts(tmp_path):
    python = family_python("mace")
    run_dir, jobs = run_engine(tmp_path, [{"name": "mace", "params": MACE_TINY, "python": python}])
    assert_scored(jobs["accuracy:Cu:mace"])
    checked = check_in_env(python, run_dir, jobs["accuracy:Cu:mace"])
    info = checked["info"]
    assert_info(info, "mace-torch")
    assert info["version"] == "0.3.16" and info["e3nn"] == "0.4.4"
    assert info["epochs"] == 2 and info["stage_two_start"] == 1 and info["model_file_name"] == "mace_stagetwo.model"
    assert info["stress_trained"] and info["train_s_per_epoch"] > 0
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


# -- NequIP / Allegro --------------------------------------------------------------------------------------
NEQUIP_TINY = {"num_layers": 2, "l_max": 1, "num_features": [8, 4], "radial_mlp_width": 16, "r_cut": 4.0,
               "max_epochs": 2, "batch_size": 4}
ALLEGRO_TINY = {"num_layers": 1, "l_max": 1, "num_scalar_features": 8, "num_tensor_features": 4, "mlp_width": 8,
                "r_cut": 4.0, "max_epochs": 2, "batch_size": 4}


@pytest.mark.slow
@pytest.mark.parametrize("family,params,package", [("nequip", NEQUIP_TINY, "nequip"),
                                                   ("allegro", ALLEGRO_TINY, "nequip-allegro")])
def test_nequip_family_trains_through_engine_and_predicts(tmp_path, family, params, package):
    python = family_python(family)
    run_dir, jobs = run_engine(tmp_path, [{"name": family, "params": params, "python": python}])
    job = jobs[f"accuracy:Cu:{family}"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job)
    info = checked["info"]
    assert_info(info, package)
    assert info["nequip"] == "0.19.1" and info["e3nn"].startswith("0.6") and info["epochs"] == 2
    assert info["stress_trained"] and info["n_parameters"] > 0
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


# -- zero-shot foundation models ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family,package", [("chgnet", "chgnet"), ("sevennet", "sevenn")])
def test_zero_shot_with_and_without_metal43_shift(tmp_path, family, package):
    python = family_python(family)
    run_dir, jobs = run_engine(tmp_path, [
        {"name": family, "label": f"{family}-shifted", "python": python},
        {"name": family, "label": f"{family}-raw", "params": {"shift": False}, "python": python}])
    shifted = assert_scored(jobs[f"accuracy:Cu:{family}-shifted"])
    raw = assert_scored(jobs[f"accuracy:Cu:{family}-raw"])
    # the shift moves energies only (two processes' float32 torch kernels may differ in the last bits)
    assert shifted["forces.mae"] == pytest.approx(raw["forces.mae"], rel=1e-6)
    assert shifted["stress.mae"] == pytest.approx(raw["stress.mae"], rel=1e-6)
    assert shifted["energy_per_atom.mae"] < raw["energy_per_atom.mae"]
    # float32 models: finite differences need larger steps (O(d^2) truncation << float32 noise / d)
    checked = check_in_env(python, run_dir, jobs[f"accuracy:Cu:{family}-shifted"], d=1e-2, d_strain=1e-3)
    info = checked["info"]
    assert_info(info, package)
    assert info["shift_applied"] and set(info["energy_shift_eV_per_atom"]) == {"Cu"}
    assert info["train_energy_mae_shifted_meV_per_atom"] < info["train_energy_mae_unshifted_meV_per_atom"]
    # raw model: the shift is recorded but not applied
    raw_info = check_in_env(python, run_dir, jobs[f"accuracy:Cu:{family}-raw"], differences=False)
    assert not raw_info["info"]["shift_applied"]
    assert raw_info["energy"] - checked["energy"] == pytest.approx(
        checked["natoms"] * info["energy_shift_eV_per_atom"]["Cu"], abs=1e-6)
    assert checked["force_err"] < 1e-2 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-2 * max(1.0, checked["stress_scale"]) + 1e-5


def test_shift_is_per_element_least_squares():
    import numpy as np
    from ase.build import bulk

    from mlffbench import frames as fr
    from mlffbench.models.adapters.zeroshot import fit_shift

    cells = [bulk("Cu", "fcc", a=3.6, cubic=True), bulk("NiCu", "rocksalt", a=3.6).repeat((2, 1, 1)),
             bulk("Ni", "fcc", a=3.5).repeat((2, 2, 1))]
    true = {"Cu": -0.3, "Ni": 0.25}
    refs = [fr.labelled(c, -4.0 * len(c), np.zeros((len(c), 3)), np.zeros(6)) for c in cells]
    predicted = [fr.label(r, "energy") + sum(true[s] for s in r.get_chemical_symbols()) for r in refs]
    assert fit_shift(refs, predicted) == pytest.approx(true, abs=1e-12)


# -- GAP ---------------------------------------------------------------------------------------------------
GAP_TINY = {"n_sparse_soap": 100, "n_max": 4, "l_max": 3, "cutoff": 4.5}


@pytest.mark.slow
def test_gap_fits_through_engine_and_predicts(tmp_path):
    python = family_python("gap")
    # no `python:` key: the runner finds the family's environment itself (Model.env -> envs.python_for)
    run_dir, jobs = run_engine(tmp_path, [{"name": "gap", "params": GAP_TINY}])
    job = jobs["accuracy:Cu:gap"]
    o = assert_scored(job)
    assert o["forces.percent"] < 100  # a fitted GAP beats the zero-force baseline even on 24 frames
    checked = check_in_env(python, run_dir, job, d=1e-4, d_strain=1e-5)
    assert_info(checked["info"], "quippy-ase")
    assert checked["info"]["n_sparse"] == [20, 100]
    assert checked["force_err"] < 1e-4 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-4 * max(1.0, checked["stress_scale"]) + 1e-7


# -- DeePMD ------------------------------------------------------------------------------------------------
DEEPMD_TINY = {"sel": 60, "embedding": [4, 8], "fitting": [16, 16], "axis_neuron": 4, "epochs": 2,
               "batch_size": 4, "start_pref_v": 1.0, "limit_pref_v": 1.0}


@pytest.mark.slow
def test_deepmd_trains_through_engine_and_predicts(tmp_path):
    python = family_python("deepmd")
    run_dir, jobs = run_engine(tmp_path, [{"name": "deepmd", "params": DEEPMD_TINY, "python": python}])
    job = jobs["accuracy:Cu:deepmd"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job)
    info = checked["info"]
    assert_info(info, "deepmd-kit")
    assert info["version"].startswith("3.2.0") and info["steps"] == 2 * 6 and info["stress_trained"]
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


def test_unbuildable_family_is_recorded_unavailable_and_the_run_goes_on(tmp_path, monkeypatch):
    """A family whose environment cannot be built (the real build failure is tested in test_envs): its jobs are
    recorded as failed with the build error, the other models still run."""
    def broken(family, quiet=False):
        if family == "mace":
            raise envs.EnvBuildError("mace env: pip install failed (log: /x/logs/mace.log)")
        return None

    monkeypatch.setattr(envs, "python_for", broken)
    _, jobs = run_engine(tmp_path, [{"name": "mace", "params": MACE_TINY}, {"name": "mean_energy"}])
    assert jobs["accuracy:Cu:mace"].status == "failed"
    assert jobs["accuracy:Cu:mace"].error.startswith("model unavailable: mace env: pip install failed")
    assert jobs["accuracy:Cu:mean_energy"].status == "done"


@pytest.mark.slow
def test_observables_of_a_family_model_run_here_and_drive_it_in_its_env(tmp_path):
    """The observables job runs in the main environment (LAMMPS reference, phonopy) and evaluates the GAP potential
    inside the GAP environment through mlffbench.models.remote."""
    from mlffbench.observables import Settings

    family_python("gap")
    cfg = {"name": "obs-gap", "seed": 0, "data": DATA, "split": {"test_last": 0.2},
           "models": [{"name": "gap", "params": GAP_TINY}],
           "tasks": {"accuracy": True, "observables": {"names": ["eos", "phonons"],
                                                       "settings": Settings().tiny().to_dict()}},
           "execution": {"executor": "inprocess", "retries": 0}}
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    jobs = {j.kind: j for j in MainJob(load_config(path), tmp_path / "run").run(progress=False)}
    assert jobs["evaluate"].status == "done", jobs["evaluate"].error
    obs = jobs["evaluate"].result["observables"]
    assert obs["eos"]["status"] == "ok" and obs["phonons"]["status"] == "ok", obs
    assert obs["eos"]["reference"]["a0"] == pytest.approx(3.615, abs=0.02)  # LAMMPS Cu (Mishin)
    assert 0 < obs["eos"]["errors"]["a0_percent"] < 5  # a trained GAP: close, not identical


# -- NEP / MTP: external training programs (not on PyPI) ---------------------------------------------------
def test_nep_and_mtp_plan_and_fail_with_the_missing_program(tmp_path, monkeypatch):
    """Planning accepts NEP and MTP; without GPUMD's `nep` / mlip-2's `mlp` on PATH their jobs fail with that
    reason and the other model is still scored."""
    import shutil

    for family, bad in (("nep", {"generation": 0}), ("mtp", {"level": 1.5})):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            get_model_class(family).check_params(bad)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in ("nep", "mlp") else
                        real_which(name, *a, **k))
    _, jobs = run_engine(tmp_path, [{"name": "nep", "params": {"generation": 1000, "neurons": 30}},
                                    {"name": "mtp", "params": {"level": 16}}, {"name": "mean_energy"}])
    assert jobs["accuracy:Cu:nep"].status == "failed"
    assert "NEP training needs the GPUMD `nep` program on PATH (not found)" in jobs["accuracy:Cu:nep"].error
    assert jobs["accuracy:Cu:mtp"].status == "failed"
    assert "MTP needs `mlp` (mlip-2) on PATH (not found)" in jobs["accuracy:Cu:mtp"].error
    assert jobs["accuracy:Cu:mean_energy"].status == "done"


@pytest.mark.parametrize("family,params,match", [
    ("nep_model", {}, "params.path"),
    ("sgdml", {"stress_weight": 1.0}, "no stress"),
    ("sgdml", {"sig": [10, 0]}, "sig"),
    ("torchani", {"epochs": 0}, "epochs"),
])
def test_new_family_params_are_checked_at_planning(family, params, match):
    with pytest.raises(ConfigError, match=match):
        get_model_class(family).check_params(params)


# -- sGDML -------------------------------------------------------------------------------------------------
#: in the sgdml env: forces of the first 3 atoms against finite differences, stress NaN, a strained cell refused
SGDML_CHECK = ENV_PRELUDE + r"""
f = atoms.get_forces(); s = atoms.get_stress()
nf = numeric_forces(1e-4)
strained = atoms.copy(); strained.set_cell(atoms.cell[:] * 1.01, scale_atoms=True); strained.calc = pot
try:
    strained.get_potential_energy(); refused = ""
except Exception as exc:
    refused = str(exc)
print(json.dumps({"info": pot.info, "force_err": float(np.abs(f[:3] - nf).max()),
                  "force_scale": float(np.abs(f[:3]).max()), "stress_nan": bool(np.isnan(s).all()),
                  "refused": refused}))
"""


@pytest.mark.slow
def test_sgdml_trains_on_one_cell_and_has_no_stress(tmp_path):
    python = family_python("sgdml")
    run_dir, jobs = run_engine(tmp_path, [{"name": "sgdml", "params": {"sig": [20, 40]}}])
    job = jobs["accuracy:Cu:sgdml"]
    assert job.status == "done", job.error
    o = job.result["tests"]["test"]["overall"]
    assert math.isfinite(o["energy_per_atom.mae"]) and math.isfinite(o["forces.mae"])
    assert math.isnan(o["stress.mae"])  # sGDML predicts no stress: NaN, never a made-up zero
    model = run_dir / "models" / job.inputs["job_id"] / "potential.json"
    data = run_dir / "data" / "Cu" / "Cu_warm.extxyz"
    out = subprocess.run([python, "-c", SGDML_CHECK, str(model), str(data)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    checked = json.loads(out.stdout.strip().splitlines()[-1])
    assert_info(checked["info"], "sgdml")
    assert checked["info"]["sig"] in (20, 40) and set(checked["info"]["valid_force_mae_eV_per_A_by_sig"]) == {
        "20", "40"}
    assert checked["stress_nan"] and "different cell" in checked["refused"]
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])


def test_sgdml_refuses_frames_of_another_cell_or_order():
    from ase.build import bulk

    from mlffbench.models.adapters.common import AdapterError
    from mlffbench.models.adapters.sgdml import check_same_system

    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    other_cell = base.copy()
    other_cell.set_cell(base.cell[:] * 1.02, scale_atoms=True)
    with pytest.raises(AdapterError, match="training frame 1 has a different cell"):
        check_same_system([base, base.copy(), other_cell][0:1] + [other_cell])
    swapped = bulk("CuNi", "rocksalt", a=3.6)
    with pytest.raises(AdapterError, match="frame 1 has a different species order"):
        check_same_system([swapped, swapped[::-1]])
    check_same_system([base, base.copy()])


# -- TorchANI ----------------------------------------------------------------------------------------------
TORCHANI_TINY = {"hidden": [8], "radial_num_shifts": 8, "angular_num_shifts": 2, "angular_num_sections": 4,
                 "radial_cutoff": 4.5, "angular_cutoff": 3.5, "epochs": 2, "batch_size": 8}


@pytest.mark.slow
def test_torchani_trains_through_engine_and_predicts(tmp_path):
    python = family_python("torchani")
    run_dir, jobs = run_engine(tmp_path, [{"name": "torchani", "params": TORCHANI_TINY}])
    job = jobs["accuracy:Cu:torchani"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job)
    info = checked["info"]
    assert_info(info, "torchani")
    assert info["version"] == "2.9.0" and info["epochs"] == 2 and info["train_s_per_epoch"] > 0
    assert info["n_parameters"] > 0 and not info["stress_trained"]
    assert checked["force_err"] < 1e-6 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-6 * max(1.0, checked["stress_scale"]) + 1e-8


# -- NEP inference of a user-supplied model (calorine) ---------------------------------------------------------
def test_nep_model_missing_file_fails_the_job_with_the_path(tmp_path):
    family_python("nep_model")
    _, jobs = run_engine(tmp_path, [{"name": "nep_model", "params": {"path": str(tmp_path / "nope" / "nep.txt")}},
                                    {"name": "mean_energy"}])
    assert jobs["accuracy:Cu:nep_model"].status == "failed"
    assert "nep.txt is not a file" in jobs["accuracy:Cu:nep_model"].error
    assert jobs["accuracy:Cu:mean_energy"].status == "done"


@pytest.mark.skip(reason="no NEP potential file available offline: calorine 4.1's wheel ships no example nep.txt "
                         "and training one needs GPUMD's GPU-only `nep`")
def test_nep_model_predicts_with_metal43_shift():  # pragma: no cover
    pass
