"""The ``flare`` model family (mlffbench.models.adapters.flare: FLARE 1.4.0's SGP_Wrapper in the ``flare`` env).

Planning-time validation runs anywhere. The rest needs the ``flare`` environment (built on first use, ~3 min,
cached; the module's env tests skip with the build error when it cannot be built):
* trained through the engine (MainJob, accuracy task) on tiny EMT Cu/Au alloy data (test_adapters), then reloaded
  inside the env: forces and stress equal finite differences of its own energy;
* with FLARE's optimisation off and our acegp's sparse set + hyperparameters handed over, FLARE's predictions
  through the adapter equal acegp's (B2, zeta 1 and 2, TM23's per-atom sigma_E = FLARE's rel_e_noise = N).
"""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from mlffbench import frames as fr
from mlffbench.config import load_config
from mlffbench.data.io import read_frames, write_frames
from mlffbench.errors import ConfigError
from mlffbench.models.registry import get_model_class


# -- planning ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params,match", [
    ({"descriptor": "B1"}, "mir-flare 1.4.0, .* has no B1 descriptor"),
    ({"power": 3}, r"params.power \(zeta\) = 3 is not one of \[1, 2\]"),
    ({"l_max": 11}, "spherical harmonics stop at l = 10"),
    ({"zeta": 2}, "unknown param"),
    ({"sparse_method": "cur"}, "sparse_method"),
    ({"energy_noise": "per_cell"}, "energy_noise"),
    ({"optimise": "no"}, "optimise"),
    ({"max_iterations": 0}, "max_iterations"),
    ({"sparse_atoms": [[0, -1]]}, "sparse_atoms"),
    ({"train_on": ["virial"]}, "train_on"),
])
def test_bad_params_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        get_model_class("flare").check_params(params)


def test_auto_energy_shift_keeps_tm23_raw_totals_and_shifts_the_rest():
    """energy_shift auto: FLARE's raw totals (TM23) for one periodic element of cohesive-size energies, else the
    per-species least-squares shift (several species, molecules, all-electron totals)."""
    from test_adapters import alloy_frames, molecule_frames

    from mlffbench.models.adapters.flare import auto_energy_shift

    cu = emt_cells(range(2))
    assert auto_energy_shift(cu) == "none"
    assert auto_energy_shift(alloy_frames(2)) == "composition"
    assert auto_energy_shift(molecule_frames(2)) == "composition"
    all_electron = [fr.labelled(a, fr.label(a, "energy") - 600.0 * len(a), fr.label(a, "forces"),
                                fr.label(a, "stress")) for a in cu]
    assert auto_energy_shift(all_electron) == "composition"
    get_model_class("flare").check_params({"energy_shift": "auto"})


def test_bad_params_stop_a_run_at_planning(tmp_path):
    """Through the config loader: one line naming the file and the model, before any job runs."""
    cfg = {"name": "bad", "data": {"elements": ["Cu"]}, "models": [{"name": "flare", "params": {"descriptor": "B1"}}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value) and "B1" in str(err.value) and "\n" not in str(err.value)
    get_model_class("flare").check_params({"power": 1, "l_max": 10, "sparse_method": "random"})


# -- through the engine ------------------------------------------------------------------------------------
TINY = {"cutoff": 4.0, "n_max": 4, "l_max": 2, "sparse_per_frame": 2, "max_iterations": 50}

#: inside the flare env: reload the saved potential (argv[1]), rattle a frame of argv[2], compare its forces
#: (3 atoms) and stress with central differences of its own energy. Steps 1e-3 Å / 1e-4 strain: FLARE's fitted
#: energies carry ~1e-7 eV of rounding (large sigma after its unbounded optimisation), which a 1e-4 Å step
#: turns into ~1e-3 eV/Å of noise; the O(d^2) truncation at 1e-3 is ~1e-6
CHECK = r"""
import json, sys
import numpy as np
from mlffbench.data.io import read_frames
from mlffbench.models.base import load_potential
pot = load_potential(sys.argv[1])
atoms = read_frames(sys.argv[2])[0].copy()
atoms.rattle(0.02, seed=1)
atoms.calc = pot
f, s = atoms.get_forces(), atoms.get_stress()
d = 1e-3
nf = np.zeros((3, 3))
for a in range(3):
    for i in range(3):
        e = []
        for step in (d, -d):
            p = atoms.positions.copy(); p[a, i] += step; atoms.positions = p
            e.append(atoms.get_potential_energy())
            p[a, i] -= step; atoms.positions = p
        nf[a, i] = -(e[0] - e[1]) / (2 * d)
ns = pot.calculate_numerical_stress(atoms, d=1e-4)
print(json.dumps({"info": pot.info, "force_err": float(np.abs(f[:3] - nf).max()),
                  "force_scale": float(np.abs(f[:3]).max()), "stress_err": float(np.abs(s - ns).max()),
                  "stress_scale": float(np.abs(s).max())}))
"""


@pytest.mark.slow
def test_flare_trains_through_engine_and_reloads(tmp_path, flare_python):
    from test_adapters import ALLOY, run_alloy

    python = flare_python
    # the Cu/Au alloy files data set of test_adapters: two species, energies of varying composition, stress
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "flare", "params": TINY}])  # Model.env -> python_for
    job = jobs[f"accuracy:{ALLOY}:flare"]
    assert job.status == "done", job.error
    overall = job.result["tests"]["test"]["overall"]
    assert all(math.isfinite(overall[k]) for k in ("energy_per_atom.mae", "forces.mae", "stress.mae"))
    assert job.result["n_train"] == 24 and overall["forces.percent"] < 100  # beats zero forces
    assert job.result["model_info"]["package"] == "mir-flare" and job.result["model_info"]["version"] == "1.4.0"

    model = run_dir / "models" / job.inputs["job_id"] / "potential.json"
    out = subprocess.run([python, "-c", CHECK, str(model), str(data)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    checked = json.loads(out.stdout.strip().splitlines()[-1])
    info = checked["info"]
    assert info["device"] == "cpu" and info["n_sparse"] == 24 * 2
    assert info["initial_hyperparameters"] == {"sigma": 2.0, "sigma_e": 0.001, "sigma_f": 0.05, "sigma_s": 0.005}
    assert info["optimisation"]["performed"] and info["hyperparameters"] != info["initial_hyperparameters"]
    assert math.isfinite(info["log_marginal_likelihood"]) and info["train_s"] > 0
    assert info["sigma_e_unit"].startswith("eV/atom") and info["deviations"]
    assert info["species"] == ["Cu", "Au"]  # FLARE's species map: by atomic number
    assert info["energy_shift"] == "composition (auto)"  # two elements: per-species least-squares constants
    assert info["energy_shift_eV_per_atom"]["Au"] - info["energy_shift_eV_per_atom"]["Cu"] > 0.3
    assert checked["force_err"] < 1e-4 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-4 * max(1.0, checked["stress_scale"]) + 1e-7


# -- against our acegp -------------------------------------------------------------------------------------
def emt_cells(seeds, rattle=0.1):
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2))
        atoms.set_cell(np.diag(atoms.cell.lengths() * (1 + rng.uniform(-0.02, 0.02, 3))), scale_atoms=True)
        atoms.rattle(rattle, seed=seed)
        if seed % 2:
            del atoms[int(rng.integers(len(atoms)))]  # frames of 31 and 32 atoms: per-atom sigma_E matters
        atoms.calc = EMT()
        out.append(fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


#: inside the flare env: fit FlareModel on argv[1] with the params in argv[3], save + reload, predict argv[2]
FIT = r"""
import json, sys
from mlffbench.data.io import read_frames
from mlffbench.models.adapters.flare import FlareModel
from mlffbench.models.base import load_potential
train, test = read_frames(sys.argv[1]), read_frames(sys.argv[2])
pot = FlareModel().fit(train, None, json.loads(sys.argv[3]), None)
pot.save(sys.argv[4])
again = load_potential(sys.argv[4])
rows = []
for p in (pot, again):
    rows.append([[float(e), f.tolist(), s.tolist()] for e, f, s in (p.evaluate(a) for a in test)])
print(json.dumps({"info": pot.info, "fitted": rows[0], "reloaded": rows[1]}))
"""


@pytest.mark.parametrize("power,shift", [(2, "none"), (1, "composition")])
def test_predictions_match_acegp(tmp_path, power, shift, flare_python):
    from mlffbench.models.acegp import AceGPModel

    python = flare_python
    write_frames(tmp_path / "train.extxyz", emt_cells(range(6)))
    write_frames(tmp_path / "test.extxyz", emt_cells([100, 101], rattle=0.2))
    train, test = read_frames(tmp_path / "train.extxyz"), read_frames(tmp_path / "test.extxyz")  # same rounding
    hyps = {"sigma": 1.5, "sigma_e": 0.002, "sigma_f": 0.08, "sigma_s": 0.004}
    common = {"descriptor": "B2", "cutoff": 4.5, "n_max": 4, "l_max": 3, "power": power, **hyps, "optimise": False,
              "energy_shift": shift}
    ours = AceGPModel().fit(train, None, {**common, "energy_noise": "per_atom", "sparse_method": "max_variance",
                                          "sparse_per_frame": 3, "jitter": 1e-8 / hyps["sigma"] ** 2}, None)
    flare_params = {**common, "energy_noise": "per_atom", "kuu_jitter": 1e-8,
                    "sparse_atoms": [[int(a) for a in s] for s in ours.info["sparse_atoms"]]}
    proc = subprocess.run([python, "-c", FIT, str(tmp_path / "train.extxyz"), str(tmp_path / "test.extxyz"),
                           json.dumps(flare_params), str(tmp_path / "flare.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    info = out["info"]
    assert info["n_sparse"] == ours.info["n_sparse"] == 18 and info["sparse_method"] == "given"
    assert [sorted(s) for s in info["sparse_atoms"]] == [sorted(s) for s in ours.info["sparse_atoms"]]
    assert info["hyperparameters"] == hyps and not info["optimisation"]["performed"]
    assert info["labels"] == {"energy": 6, "forces": 3 * sum(len(a) for a in train), "stress": 36}
    expected = [ours.evaluate(a) for a in test]
    for key in ("fitted", "reloaded"):
        got = out[key]
        for k, name in enumerate(("energy", "forces", "stress")):
            a = np.concatenate([np.ravel(e[k]) for e in expected])
            b = np.concatenate([np.ravel(g[k]) for g in got])
            assert np.abs(a - b).max() / np.abs(a).max() < 1e-8, (key, name, np.abs(a - b).max())
