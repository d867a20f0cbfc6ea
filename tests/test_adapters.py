"""External-package adapters end to end: each family's environment is built (cached under $MLFFBENCH_ENV_CACHE or
~/.cache/mlffbench/envs), its model is trained through the engine (``MainJob``, the model's jobs run by the
worker inside the family env) on a tiny multi-element periodic data set (EMT-labelled random Cu/Au fcc alloys of
varying composition, a ``files`` data set: several species, per-element energy references, stress) or, for the
families that are only run, not trained (zero-shot, NEP, sGDML), on tiny LAMMPS Cu data; the saved potential is
reloaded in the env and checked against finite differences of its own energy (forces = -dE/dx, stress = dE/dε / V
with ASE's sign). One small molecule run (non-periodic, no stress, all-electron-sized total energies, a test frame
without forces) covers the families whose code differs for molecules; ``refuse`` rules are checked without
training.

A family whose environment cannot be built is skipped with the build error (which names the log).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlffbench import envs
from mlffbench import frames as fr
from mlffbench.config import load_config
from mlffbench.data.io import write_frames
from mlffbench.datasets.base import DataSummary
from mlffbench.engine.runner import MainJob
from mlffbench.errors import ConfigError
from mlffbench.models.registry import get_model_class

DATA = {"elements": ["Cu"], "frames_per_temperature": 10, "equilibration_fs": 200}
#: name of the multi-element periodic data set (alloy_dataset) and the file its frames are written to
ALLOY = "CuAu"


def alloy_frames(n: int = 30) -> list:
    """Random substitutional Cu/Au fcc alloys, 2x2x2 conventional cells (32 atoms), an Au fraction drawn per frame
    in [0.1, 0.9] (so the per-element energy reference matters: Au and Cu differ by ~0.75 eV/atom in EMT), cell
    strained by up to 2 %, atoms rattled; labelled by ASE's EMT (energy, forces, stress)."""
    frames = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 2, 2))
        atoms.set_chemical_symbols(np.where(rng.random(len(atoms)) < rng.uniform(0.1, 0.9), "Au", "Cu").tolist())
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + rng.uniform(-0.02, 0.02, (3, 3))), scale_atoms=True)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        frames.append(fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return frames


def alloy_dataset(tmp_path: Path) -> dict:
    """The alloy ``files`` data set entry: 30 frames, a seeded random 20 % test split (24 training, 6 test)."""
    path = tmp_path / f"{ALLOY}.extxyz"
    write_frames(path, alloy_frames())
    return {"source": "files", "name": ALLOY, "files": [str(path)], "split": {"kind": "random", "test_fraction": 0.2}}


def family_python(family: str) -> str:
    """The family's interpreter as the runner gets it (envs.python_for; builds the env on first use)."""
    try:
        python = envs.python_for(family, quiet=True)
    except envs.EnvBuildError as exc:
        pytest.skip(f"model family '{family}' unavailable: {exc}")
    assert python and Path(python).is_file()
    return python


#: isolated-atom energies (eV; ORCA PBE/def2-SVP, BOTNet acetylacetone set, isolated_atoms.xyz) added to the EMT
#: energies of the molecule data set, so its totals are all-electron sized (ethanol ~ -4170 eV, -460 eV/atom)
ATOM_ENERGY = {"H": -13.568422178253735, "C": -1026.8538996116154, "O": -2037.796869412825}
MOLECULE = "ethanol"


def molecule_frames(n: int, seed0: int = 0) -> list:
    """Rattled ethanol (C2H6O, 9 atoms), no cell and pbc F F F, labelled by ASE's EMT (energy + ATOM_ENERGY,
    forces; no stress)."""
    frames = []
    for seed in range(seed0, seed0 + n):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        energy = atoms.get_potential_energy() + sum(ATOM_ENERGY[s] for s in atoms.get_chemical_symbols())
        frames.append(fr.labelled(atoms, energy, atoms.get_forces(), None))
    return frames


def molecule_dataset(tmp_path: Path) -> dict:
    """The molecule ``files`` data set: 16 training frames, a test file of 4 frames, the last with energy only."""
    train, test = tmp_path / f"{MOLECULE}_train.extxyz", tmp_path / f"{MOLECULE}_test.extxyz"
    write_frames(train, molecule_frames(16))
    frames = molecule_frames(4, seed0=100)
    frames[-1] = fr.labelled(frames[-1], fr.label(frames[-1], "energy"), None, None)
    write_frames(test, frames)
    return {"source": "files", "name": MOLECULE, "files": [str(train)], "test_files": [str(test)]}


def run_alloy(tmp_path: Path, models: list[dict]):
    """run_engine on the alloy data set: (run directory, jobs by name, the data file)."""
    entry = alloy_dataset(tmp_path)
    run_dir, jobs = run_engine(tmp_path, models, [entry])
    return run_dir, jobs, Path(entry["files"][0])


def run_engine(tmp_path: Path, models: list[dict], datasets: list[dict] | None = None):
    """The accuracy task of ``models`` on ``datasets`` (data-set entries), by default the generated LAMMPS Cu."""
    cfg = {"name": "adapters", "seed": 0, "models": models,
           "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
           "execution": {"executor": "inprocess"}}
    if datasets is None:
        cfg.update(data=DATA, split={"test_last": 0.2})
    else:
        cfg["datasets"] = datasets
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
                 differences: bool = True, data: Path | None = None) -> dict:
    """Reload ``job``'s potential in its env and check it on the first frame of ``data`` (default: the generated
    Cu data set's warm trajectory; the alloy tests pass their data file)."""
    model = run_dir / "models" / job.inputs["job_id"] / "potential.json"
    data = data or run_dir / "datasets" / "Cu" / "Cu" / "Cu_warm.extxyz"
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
    """The main venv plans runs with every family (check_params, refuse) without mace, nequip, torch ... installed."""
    code = ("import sys\nfrom mlffbench.models.registry import model_names, get_model_class\n"
            "from mlffbench.datasets.base import DataSummary\n"
            "data = DataSummary('x', ('C', 'Cu', 'H'), False, False, False, 3)\n"
            "for name in model_names():\n    params = {'potential': 'zuo-snap'} if name == 'published' else {}\n"
            "    get_model_class(name).check_params(params) if name not in "
            "('labeler', 'ase_calculator', 'nep_model') else get_model_class(name)\n"
            "    get_model_class(name).refuse(data, params)\n"
            "heavy = sorted(m for m in ('torch', 'mace', 'nequip', 'e3nn', 'chgnet', 'sevenn', 'quippy', 'deepmd', "
            "'sgdml', 'torchani', 'calorine', 'tensorflow', 'tensorpotential', 'flare') if m in sys.modules)\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("family,params,match", [
    ("mace", {"max_L": 7}, "max_L"),
    ("mace", {"epochs": 10}, "training.max_epochs"),
    ("mace", {"channels": 8}, "unknown param"),
    ("chgnet", {"shift": "yes"}, "shift"),
    ("ase_calculator", {"calculator": "EMT"}, "module:ClassOrFactory"),
])
def test_params_are_checked_at_planning(family, params, match):
    with pytest.raises(ConfigError, match=match):
        get_model_class(family).check_params(params)


# -- MACE --------------------------------------------------------------------------------------------------
MACE_TINY = {"num_channels": 8, "max_L": 1, "correlation": 2, "max_ell": 2, "r_max": 4.0, "batch_size": 4,
             "stage_two_fraction": 0.5}


def test_mace_curve_from_its_results_and_log():
    from mlffbench.models.adapters.mace import epoch_stamps, parse_results, valid_errors

    log = ("2026-11-21 04:14:39.348 INFO: MACE version: 0.3.16\n"
           "2026-11-21 04:14:40.283 INFO: Started training, reporting errors on validation set\n"
           "2026-11-21 04:14:41.000 INFO: Initial: head: Default, loss=0.1\n"
           "2026-11-21 04:14:44.616 INFO: Epoch 0: head: Default, loss=0.02260505\n"
           "2026-11-21 04:14:49.183 INFO: Epoch 1: head: Default, loss=0.0200\n")
    start, stamps = epoch_stamps(log)
    assert sorted(stamps) == [0, 1] and stamps[1] - start == pytest.approx(8.9)
    results = "\n".join(json.dumps(d) for d in [
        {"loss": 0.1, "mae_e_per_atom": 0.1, "mae_f": 1.0, "mode": "eval", "epoch": None},
        {"loss": 3.0, "mode": "opt", "epoch": 0}, {"loss": 1.0, "mode": "opt", "epoch": 0},
        {"loss": 0.0226, "mae_e_per_atom": 0.002, "mae_f": 0.05, "mae_stress": 0.001, "mode": "eval", "epoch": 0},
    ]) + '\n{"loss": 0.02, "mo'  # a line being written
    evals, opt = parse_results(results)
    assert sorted(evals) == [0] and opt == {0: [3.0, 1.0]}
    assert valid_errors(evals[0]) == pytest.approx({"loss": 0.0226, "energy": 2.0, "forces": 50.0,
                                                   "stress": 0.16021766208})


@pytest.mark.slow
def test_mace_trains_through_engine_and_predicts(tmp_path):
    python = family_python("mace")
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "mace", "params": MACE_TINY, "python": python,
                                                # float64: the force check below differentiates the energy
                                                "training": {"max_epochs": 2, "patience": 1,
                                                             "precision": "float64"}}])
    job = jobs[f"accuracy:{ALLOY}:mace"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, data=data)
    info = checked["info"]
    assert_info(info, "mace-torch")
    assert info["version"] == "0.3.16" and info["e3nn"] == "0.4.4" and info["dtype"] == "float64"
    # stage two from epoch 2 (0.5 of max_epochs), MACE's stage-two model scored
    assert info["epochs"] == 2 and info["stage_two_start"] == 1 and info["model_file_name"] == "mace_stagetwo.model"
    assert info["stress_trained"] and info["train_s_per_epoch"] > 0
    record = job.result["training"]
    assert record["stopped_by"] == "max_epochs" and record["epochs"] == 2 and record["best_epoch"] == 2
    assert [e["epoch"] for e in record["curve"]] == [1, 2]
    assert all(e["valid"]["forces"] > 0 and e["valid"]["stress"] >= 0 for e in record["curve"])
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


@pytest.mark.slow
def test_mace_stops_early_when_validation_stops_improving(tmp_path):
    """min_delta 0.99: no epoch after the first counts as improving, so patience 1 stops it after epoch 2 of 4
    (the adapter's poll: MACE's own --patience does not stop a single-process run; the poll may see epoch 2 while
    a ~1 s epoch 3 ends) and the run's best checkpoint is written out as the model."""
    python = family_python("mace")
    params = {k: v for k, v in MACE_TINY.items() if k != "stage_two_fraction"}
    run_dir, jobs, _ = run_alloy(tmp_path, [{"name": "mace", "params": params, "python": python,
                                             "training": {"max_epochs": 4, "patience": 1, "min_delta": 0.99}}])
    job = jobs[f"accuracy:{ALLOY}:mace"]
    assert_scored(job)
    record = job.result["training"]
    assert record["status"] == "converged" and record["stopped_by"] == "patience", record
    n = record["epochs"]
    assert n in (2, 3) and [e["epoch"] for e in record["curve"]] == list(range(1, n + 1))
    assert (run_dir / "models" / job.inputs["job_id"] / "mace" / "mace.model").is_file()


# -- NequIP / Allegro --------------------------------------------------------------------------------------
NEQUIP_TINY = {"num_layers": 2, "l_max": 1, "num_features": [8, 4], "radial_mlp_width": 16, "r_cut": 4.0,
               "batch_size": 4}
ALLEGRO_TINY = {"num_layers": 1, "l_max": 1, "num_scalar_features": 8, "num_tensor_features": 4, "mlp_width": 8,
                "r_cut": 4.0, "batch_size": 4}


@pytest.mark.slow
@pytest.mark.parametrize("family,params,package", [("nequip", NEQUIP_TINY, "nequip"),
                                                   ("allegro", ALLEGRO_TINY, "nequip-allegro")])
def test_nequip_family_trains_through_engine_and_predicts(tmp_path, family, params, package):
    """max_epochs 2 with patience 2: early stopping cannot fire (epoch 1 always improves), so max_epochs ends it;
    precision float64 (model_dtype) keeps the finite-difference checks tight."""
    python = family_python(family)
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": family, "params": params, "python": python, "training": {
        "max_epochs": 2, "patience": 2, "precision": "float64"}}])
    job = jobs[f"accuracy:{ALLOY}:{family}"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, data=data)
    info = checked["info"]
    assert_info(info, package)
    assert info["nequip"] == "0.19.1" and info["e3nn"].startswith("0.6") and info["epochs"] == 2
    assert info["stress_trained"] and info["n_parameters"] > 0 and info["model_dtype"] == "float64"
    # one least-squares energy per element (nequip's own per_atom_energy_mean would give both the same)
    assert info["type_names"] == ["Au", "Cu"]
    assert info["per_type_energy_shifts"]["Au"] - info["per_type_energy_shifts"]["Cu"] > 0.3
    record = job.result["training"]
    assert record["stopped_by"] == "max_epochs" and record["status"] == "budget" and record["epochs"] == 2
    assert [e["epoch"] for e in record["curve"]] == [1, 2] and record["monitor"] == "loss"
    losses = [e["valid"]["loss"] for e in record["curve"]]
    # the scored checkpoint is the best validation loss (ModelCheckpoint on val0_epoch/weighted_sum)
    assert record["best_epoch"] == 1 + losses.index(min(losses)) and record["best_valid"] == pytest.approx(min(losses))
    for e in record["curve"]:  # meV/atom, meV/Å, GPa: EMT alloy forces are O(100 meV/Å) at the start
        assert e["valid"]["forces"] > 10 and e["train"]["forces"] > 10 and e["valid"]["stress"] > 0
        assert e["lr"] == pytest.approx(0.01) and e["wall_s"] > 0
    progress = json.loads((run_dir / "models" / job.inputs["job_id"] / "progress.json").read_text())
    assert progress["epoch"] == 2 and progress["max_epochs"] == 2
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


def test_nequip_config_follows_the_training_protocol(tmp_path):
    """Lightning's own limits and callbacks carry the protocol: max_epochs, max_time, relative early stopping and
    the checkpoint on the validation loss, precision as model_dtype; params the protocol sets are refused."""
    from mlffbench.models.adapters.nequip import VAL_LOSS, AllegroModel, NequipModel, max_time
    from mlffbench.models.training import Training

    for key, new in (("max_epochs", "max_epochs"), ("epochs", "max_epochs"), ("model_dtype", "precision"),
                     ("valid_fraction", "validation_fraction")):
        with pytest.raises(ConfigError, match=f"training.{new}"):
            NequipModel.check_params({key: 1})
    AllegroModel.check_params(ALLEGRO_TINY)
    protocol = Training(max_epochs=7, max_minutes=90.5, patience=3, min_delta=0.01, precision="float64")
    model = NequipModel()
    p = {**model.defaults, **NEQUIP_TINY}
    cfg = model.config(p, ["Au", "Cu"], tmp_path, tmp_path / "out", True, {"Au": -3.0, "Cu": -3.5}, protocol,
                       "cuda", tmp_path)
    trainer = cfg["trainer"]
    assert trainer["max_epochs"] == 7 and trainer["max_time"] == "00:01:30:30" and trainer["accelerator"] == "gpu"
    assert trainer["check_val_every_n_epoch"] == 1 and max_time(90061) == "01:01:01:01"
    callbacks = {c["_target_"].rsplit(".", 1)[1]: c for c in trainer["callbacks"]}
    assert callbacks["RelativeEarlyStopping"] == {**callbacks["RelativeEarlyStopping"], "monitor": VAL_LOSS,
                                                  "patience": 3, "min_delta": 0.01}
    assert callbacks["ModelCheckpoint"]["monitor"] == VAL_LOSS and callbacks["ModelCheckpoint"]["filename"] == "best"
    assert callbacks["ProtocolRecorder"]["progress_dir"] == str(tmp_path)
    assert "StopBelowLearningRate" not in callbacks  # TM23's lr stop is opt-in (params.min_lr)
    module = cfg["training_module"]
    assert module["model"]["model_dtype"] == "float64"
    # the plateau scheduler cuts the lr before early stopping gives up (a third of its patience; TM23's 100 would not)
    assert module["lr_scheduler"]["scheduler"]["patience"] == 1
    # the validation loss is the training loss (same MSE terms and coefficients) on the validation frames
    assert {k: v for k, v in module["val_metrics"].items() if k != "extra_metrics"} == module["loss"]
    assert [m["name"] for m in module["val_metrics"]["extra_metrics"]] == ["per_atom_energy_mae", "forces_mae",
                                                                         "stress_mae"]
    p["min_lr"] = 1e-5
    cfg = model.config(p, ["Cu"], tmp_path, tmp_path / "out", False, {"Cu": -3.5}, Training(), "cpu")
    assert cfg["trainer"]["accelerator"] == "cpu" and cfg["training_module"]["model"]["model_dtype"] == "float32"
    assert any(c["_target_"].endswith("StopBelowLearningRate") for c in cfg["trainer"]["callbacks"])


def test_nequip_early_stopping_min_delta_is_relative():
    """In the nequip env: 1 % steps do not improve on a relative min_delta of 5 % (patience 2 stops at the third
    value), 10 % steps do; a non-finite value stops at once."""
    python = family_python("nequip")
    code = ("import torch\nfrom mlffbench.models.adapters.nequip_callbacks import RelativeEarlyStopping\n"
            "def run(values):\n    es = RelativeEarlyStopping('loss', patience=2, min_delta=0.05)\n"
            "    for i, v in enumerate(values):\n        if es._evaluate_stopping_criteria(torch.tensor(v))[0]:\n"
            "            return i\n    return None\n"
            "print(run([1.0, 0.99, 0.98, 0.97]), run([1.0, 0.9, 0.8, 0.7]), run([1.0, float('nan')]))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "None", "1"]


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
    # per atom, to 0.1 meV: two processes' float32 sums differ by up to ~1e-5 eV/atom (CI saw 3.4e-4 eV a cell),
    # while an unapplied or wrong shift is off by the shift itself (tenths of an eV per atom)
    assert (raw_info["energy"] - checked["energy"]) / checked["natoms"] == pytest.approx(
        info["energy_shift_eV_per_atom"]["Cu"], abs=1e-4)
    assert abs(info["energy_shift_eV_per_atom"]["Cu"]) > 1e-2
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
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "gap", "params": GAP_TINY}, {"name": "mean_energy"}])
    job = jobs[f"accuracy:{ALLOY}:gap"]
    o = assert_scored(job)
    assert o["forces.percent"] < 100  # a fitted GAP beats the zero-force baseline even on 24 frames
    baseline = assert_scored(jobs[f"accuracy:{ALLOY}:mean_energy"])
    assert o["energy_per_atom.mae"] < 0.2 * baseline["energy_per_atom.mae"]
    checked = check_in_env(python, run_dir, job, d=1e-4, d_strain=1e-5, data=data)
    assert_info(checked["info"], "quippy-ase")
    # add_species: a 2-body kernel per pair (AuAu, AuCu, CuCu) and a SOAP kernel per centre species
    assert checked["info"]["n_sparse"] == [20, 20, 20, 100, 100]
    e0 = checked["info"]["e0_eV_per_atom"]
    assert e0["Au"] - e0["Cu"] > 0.3  # per element (gap_fit's e0_method=average: one value for both)
    assert checked["force_err"] < 1e-4 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-4 * max(1.0, checked["stress_scale"]) + 1e-7


# -- DeePMD ------------------------------------------------------------------------------------------------
DEEPMD_TINY = {"sel": 80, "embedding": [4, 8], "fitting": [16, 16], "axis_neuron": 4,
               "batch_size": 4, "start_pref_v": 1.0, "limit_pref_v": 1.0}
#: two epochs, patience 2: only max_epochs can end the fit
TWO_EPOCHS = {"max_epochs": 2, "patience": 2}


def assert_two_epoch_record(info: dict, monitor: str):
    """The training record of a TWO_EPOCHS fit: a curve of the 2 epochs run, stopped by max_epochs."""
    record = info["training"]
    assert [e["epoch"] for e in record["curve"]] == [1, 2] and info["epochs"] == 2
    assert record["stopped_by"] == "max_epochs" and record["status"] in ("budget", "converged")
    assert record["monitor"] == monitor and record["best_epoch"] in (1, 2) and record["n_valid"] == 2
    for e in record["curve"]:
        assert e["wall_s"] > 0 and e["lr"] > 0
        assert math.isfinite(e["valid"]["energy"]) and math.isfinite(e["valid"]["forces"])
    assert record["curve"][1]["wall_s"] >= record["curve"][0]["wall_s"]


@pytest.mark.slow
def test_deepmd_trains_through_engine_and_predicts(tmp_path):
    python = family_python("deepmd")
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "deepmd", "params": DEEPMD_TINY, "python": python,
                                                "training": {**TWO_EPOCHS, "precision": "float64"}}])
    job = jobs[f"accuracy:{ALLOY}:deepmd"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, data=data)
    info = checked["info"]
    assert_info(info, "deepmd-kit")
    assert info["version"].startswith("3.2.0") and info["steps"] == 2 * 6 and info["stress_trained"]
    # DeePMD's own full validation every epoch (val.log, MAE), its best-force-MAE checkpoint frozen
    assert_two_epoch_record(info, "forces")
    assert info["precision"] == "float64"
    assert job.result["training"]["curve_metric"] == "mae" and "stress" in info["training"]["curve"][0]["valid"]
    assert info["training"]["checkpoint"] == f"best.ckpt-{6 * info['training']['best_epoch']}.t-1.pt"
    assert "forces_rmse" in info["training"]["curve"][0]["train"]
    progress = json.loads((run_dir / "models" / job.inputs["job_id"] / "progress.json").read_text())
    assert progress["epoch"] == 2 and progress["max_epochs"] == 2
    # 22 training frames, every one its own species order: one mixed-type system (not 22 one-frame systems)
    assert info["type_map"] == ["Au", "Cu"] and info["n_systems"] == 1
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-7


def test_unbuildable_family_is_recorded_unavailable_and_the_run_goes_on(tmp_path, monkeypatch):
    """A family whose environment cannot be built (the real build failure is tested in test_envs): its jobs are
    recorded as failed with the build error, the other models still run."""
    def broken(family, quiet=False, device=None):
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
    reason and the other model is still scored. The nep job runs in the calorine env (a subprocess), so the
    programs are taken off PATH itself rather than patched out of this process."""
    import os

    for family, bad in (("nep", {"generation": 0}), ("mtp", {"level": 1.5}), ("nep", {"l_max": [4, 2, 0, 1]}),
                        ("nep", {"cutoff_angular": 7.0})):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            get_model_class(family).check_params(bad)
    family_python("nep")
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if not any((Path(d) / name).exists() for name in ("nep", "mlp"))]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.delenv("MLFFBENCH_NEP", raising=False)
    _, jobs = run_engine(tmp_path, [{"name": "nep", "params": {"generation": 1000, "neurons": 30}},
                                    {"name": "mtp", "params": {"level": 16}}, {"name": "mean_energy"}])
    assert jobs["accuracy:Cu:nep"].status == "failed"
    assert "NEP training needs the GPUMD `nep` program on PATH (not found)" in jobs["accuracy:Cu:nep"].error
    assert jobs["accuracy:Cu:mtp"].status == "failed"
    assert "MTP needs `mlp` (mlip-2) on PATH (not found)" in jobs["accuracy:Cu:mtp"].error
    assert jobs["accuracy:Cu:mean_energy"].status == "done"


def test_nep_program_named_by_env_var_must_exist(tmp_path, monkeypatch):
    from mlffbench.models.adapters.common import AdapterError

    monkeypatch.setenv("MLFFBENCH_NEP", str(tmp_path / "no-such-nep"))
    with pytest.raises(AdapterError, match="MLFFBENCH_NEP=.*no-such-nep is not an executable"):
        get_model_class("nep")().fit([], None, {}, tmp_path)


def test_mtp_with_mlp_present_says_mlip2_is_not_driven(tmp_path, monkeypatch):
    """`mlp` found (its lookup patched: nothing is run) -> the job's reason says mlffbench does not drive it."""
    import shutil

    from mlffbench.models.adapters.common import AdapterError

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/opt/mlip-2/bin/mlp" if name == "mlp" else None)
    with pytest.raises(AdapterError, match=r"`mlp` found \(/opt/mlip-2/bin/mlp\), but driving mlip-2 is not "
                                           "supported by mlffbench"):
        get_model_class("mtp")().fit([], None, {"level": 16}, tmp_path)


#: run in the calorine env: the nep inputs mlffbench writes (calorine's setup_training) for EMT-labelled Cu cells
#: (compressed, stretched, sheared), read back with ase.io / calorine.nep.read_nepfile; the virial is also checked
#: against -dE/dh of EMT under the cell deformation I + h e_i e_j^T (GPUMD: W = -σ V, eV per cell)
NEP_INPUTS = r"""
import json, sys
from pathlib import Path
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read
from calorine.nep import read_nepfile
from mlffbench import frames as fr
from mlffbench.models.adapters.external import METAL43_NEP, write_nep_inputs
def cell(a, shear, i):
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat((2, 1, 1))
    c = np.array(atoms.cell); c[1, 0] += shear
    atoms.set_cell(c, scale_atoms=True); atoms.rattle(0.03, seed=i); atoms.calc = EMT()
    return atoms
sources = [cell(a, sh, i) for i, (a, sh) in enumerate(((3.50, 0.0), (3.55, 0.3), (3.62, -0.2), (3.70, 0.1),
                                                          (3.58, 0.25)))]
frames = [fr.labelled(a, a.get_potential_energy(), a.get_forces(), a.get_stress()) for a in sources]
params = {**METAL43_NEP, "n_max_angular": 3, "l_max": [4, 2], "neurons": 20, "lambda_v": 0.5, "batch": 100,
          "generation": 500}
folder = write_nep_inputs(frames[:4], frames[4:], params, Path(sys.argv[1]) / "nep")
out = {"files": sorted(p.name for p in folder.iterdir()), "nep_in": read_nepfile(str(folder / "nep.in")),
       "keys": [ln.split()[0] for ln in (folder / "nep.in").read_text().splitlines() if ln.strip()]}
def minus_dE_dh(atoms, i, j, h=1e-5):
    e = []
    for step in (h, -h):
        work = atoms.copy(); work.calc = EMT()
        F = np.eye(3); F[i, j] += step
        work.set_cell(np.array(atoms.cell) @ F.T, scale_atoms=True)
        e.append(work.get_potential_energy())
    return -(e[0] - e[1]) / (2 * h)
errors = {"energy": 0.0, "forces": 0.0, "virial": 0.0, "virial_fd": 0.0}
out["traces"], out["comment_keys"] = [], []
for name, src in (("train.xyz", sources[:4]), ("test.xyz", sources[4:])):
    lines = (folder / name).read_text().splitlines()
    back = read(folder / name, ":")
    assert len(back) == len(src)
    for k, (b, a) in enumerate(zip(back, src)):
        comment = lines[k * (len(a) + 2) + 1].lower()  # GPUMD lower-cases the comment line before parsing
        out["comment_keys"].append(sorted(t.split("=")[0] for t in comment.split() if "=" in t))
        virial = np.asarray(b.info["virial"]).reshape(3, 3)
        errors["energy"] = max(errors["energy"], abs(b.get_potential_energy() - a.get_potential_energy()))
        errors["forces"] = max(errors["forces"], float(np.abs(b.get_forces() - a.get_forces()).max()))
        expected = -a.get_stress(voigt=False) * a.get_volume()
        errors["virial"] = max(errors["virial"], float(np.abs(virial - expected).max()))
        fd = np.array([[minus_dE_dh(a, i, j) for j in range(3)] for i in range(3)])
        errors["virial_fd"] = max(errors["virial_fd"], float(np.abs(virial - fd).max()))
        out["traces"].append(float(np.trace(virial)))
out["errors"] = errors
print(json.dumps(out))
"""


def test_nep_input_files_are_what_gpumd_reads(tmp_path):
    """nep.in / train.xyz / test.xyz as GPUMD's `nep` reads them: total energy (eV per cell; nep divides by N),
    forces (eV/Å), virial = -σ V (eV per cell, positive when compressed) and the requested hyperparameters (the
    rest from Metal-43 SI Table 3). Running `nep` itself (GPU-only, not installable here) is not tested."""
    python = family_python("nep")
    out = subprocess.run([python, "-c", NEP_INPUTS, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["files"] == ["nep.in", "test.xyz", "train.xyz"]
    assert got["nep_in"] == {"version": 4, "type": [1, "Cu"], "cutoff": [6.0, 4.0], "n_max": [4, 3],
                             "basis_size": [8, 8], "l_max": [4, 2], "neuron": 20, "lambda_e": 1.0,
                             "lambda_f": 1.0, "lambda_v": 0.5, "batch": 100, "population": 50,
                             "generation": 500}
    assert got["keys"].index("type") < got["keys"].index("cutoff")  # nep rejects cutoff before type
    for keys in got["comment_keys"]:
        assert {"energy", "lattice", "virial", "properties"} <= set(keys) and "stress" not in keys
    errors = got["errors"]
    assert errors["energy"] < 1e-12 and errors["forces"] < 1e-7 and errors["virial"] < 1e-9, errors
    assert errors["virial_fd"] < 1e-4, errors  # -dE/dh of the labeler itself: sign and per-cell units
    traces = got["traces"]
    assert traces[0] > 0.5 and traces[3] < -0.5, traces  # a = 3.50 Å compressed, 3.70 Å stretched (EMT a0 3.59)


@pytest.mark.parametrize("program,reason", [("false", "nep exited 1: (no output)"),
                                            ("true", "nep wrote no nep.txt; nep exited 0: (no output)")])
def test_nep_failing_program_fails_the_job_naming_the_log(tmp_path, monkeypatch, program, reason):
    """`nep` stood in by the system's `false` / `true` (they train nothing and say nothing): the job writes its
    inputs (24 training frames: 22 in train.xyz, a seeded 10 % in test.xyz), runs the program in that folder and
    fails with the program's exit and its log; the other model is still scored."""
    import shutil

    family_python("nep")
    monkeypatch.setenv("MLFFBENCH_NEP", shutil.which(program))
    run_dir, jobs = run_engine(tmp_path, [{"name": "nep", "params": {"generation": 10}}, {"name": "mean_energy"}])
    job = jobs["accuracy:Cu:nep"]
    folder = run_dir / "models" / job.inputs["job_id"] / "nep" / "nepmodel"
    assert job.status == "failed" and reason in job.error and f"(log {folder.resolve() / 'nep.log'})" in job.error
    assert (folder / "train.xyz").read_text().count("virial=") == 22
    assert (folder / "test.xyz").read_text().count("virial=") == 2
    assert "generation  10" in (folder / "nep.in").read_text().splitlines()
    assert jobs["accuracy:Cu:mean_energy"].status == "done"


@pytest.mark.parametrize("family,params,match", [
    ("nep_model", {}, "params.path"),
    ("sgdml", {"stress_weight": 1.0}, "no stress"),
    ("sgdml", {"sig": [10, 0]}, "sig"),
    ("torchani", {"epochs": 2}, "training.max_epochs"),
    ("torchani", {"dtype": "float64"}, "training.precision"),
    ("deepmd", {"epochs": 2}, "training.max_epochs"),
    ("deepmd", {"valid_fraction": 0.2}, "training.validation_fraction"),
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
    data = run_dir / "datasets" / "Cu" / "Cu" / "Cu_warm.extxyz"
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


# -- molecules: non-periodic frames without cell or stress, all-electron-sized energies --------------------------
#: families whose code differs for molecules (a box for FLARE and GAP, FLARE's reload of stressless frames and its
#: auto energy shift, TorchANI's cell-free AEVs, sGDML's lattice-free data set); DeePMD's ``nopbc`` systems are
#: checked on the files it writes (test_deepmd_systems_...), its training takes ~45 s. ``beats`` = one-solve fits
#: that must beat the mean-energy baseline in energy and forces even on 16 frames
MOLECULE_RUNS = [
    ("flare", {"cutoff": 4.0, "n_max": 4, "l_max": 2, "sparse_per_frame": 2, "max_iterations": 20}, True),
    ("gap", {"n_sparse_soap": 100, "n_max": 4, "l_max": 3, "cutoff": 4.5}, True),
    ("sgdml", {"sig": [20]}, True),
    ("torchani", {"hidden": [8], "radial_num_shifts": 8, "angular_num_shifts": 2, "angular_num_sections": 4,
                  "radial_cutoff": 4.5, "angular_cutoff": 3.5, "batch_size": 8}, False),
]


@pytest.mark.slow
@pytest.mark.parametrize("family,params,beats", MOLECULE_RUNS, ids=[r[0] for r in MOLECULE_RUNS])
def test_molecule_trains_and_predicts(tmp_path, family, params, beats):
    """Ethanol without a cell (pbc F F F), energies ~ -4170 eV, no stress; the test file's last frame has no
    forces. The job trains and scores every test frame (energy of all 4, forces of 3), stress is never compared
    (NaN, no pair), and the per-element energy reference keeps the energy error per atom at the scale of the
    EMT labels (a model without one is off by hundreds of eV/atom: FLARE's raw totals gave 620 eV/atom)."""
    family_python(family)
    model = {"name": family, "params": params}
    if get_model_class(family).epoch_trained:
        model["training"] = {"max_epochs": 2, "patience": 2}
    _, jobs = run_engine(tmp_path, [model, {"name": "mean_energy"}], [molecule_dataset(tmp_path)])
    job = jobs[f"accuracy:{MOLECULE}:{family}"]
    assert job.status == "done", job.error
    o = job.result["tests"]["test"]["overall"]
    base = jobs[f"accuracy:{MOLECULE}:mean_energy"].result["tests"]["test"]["overall"]
    assert o["energy_per_atom.n"] == 4 and o["forces.n"] == 3 * 9 * 3
    assert o["stress.n"] == 0 and math.isnan(o["stress.mae"])
    assert math.isfinite(o["forces.mae"]) and o["energy_per_atom.mae"] < 1.0  # eV/atom
    if beats:
        assert o["energy_per_atom.mae"] < base["energy_per_atom.mae"] and o["forces.mae"] < base["forces.mae"]


def test_boxed_puts_molecules_in_a_box_and_leaves_crystals():
    from mlffbench.models.adapters.common import VACUUM, boxed

    mol = molecule_frames(1)[0]
    box = boxed(mol)
    assert not box.pbc.any() and np.allclose(box.cell[:], np.diag(np.diag(box.cell[:])))
    span = mol.positions.max(axis=0) - mol.positions.min(axis=0)
    assert np.allclose(np.diag(box.cell[:]), span + VACUUM)
    assert np.allclose(box.positions - mol.positions, box.positions[0] - mol.positions[0])  # translated only
    assert fr.label(box, "energy") == fr.label(mol, "energy") and fr.label(box, "stress") is None
    assert np.array_equal(fr.label(box, "forces"), fr.label(mol, "forces"))
    crystal = alloy_frames(1)[0]
    assert boxed(crystal) is crystal


def test_deepmd_systems_are_mixed_type_per_atom_count_and_nopbc_for_molecules(tmp_path):
    """The npy systems DeePMD reads (its format: type.raw, type_map.raw, set.000/*.npy, nopbc): random alloys of
    one atom count form ONE mixed-type system with per-frame types; molecules a ``nopbc`` system without virial."""
    from mlffbench.models.adapters.deepmd import write_systems

    alloys = alloy_frames(3)
    systems = write_systems(alloys, tmp_path / "alloy", ["Au", "Cu"])
    assert len(systems) == 1
    system = Path(systems[0])
    assert (system / "type.raw").read_text().split() == ["0"] * 32 and not (system / "nopbc").exists()
    assert (system / "type_map.raw").read_text().split() == ["Au", "Cu"]
    types = np.load(system / "set.000" / "real_atom_types.npy")
    assert types.tolist() == [[0 if s == "Au" else 1 for s in a.get_chemical_symbols()] for a in alloys]
    virial = np.load(system / "set.000" / "virial.npy").reshape(3, 3, 3)
    assert np.allclose(virial[0], -alloys[0].get_volume() * alloys[0].get_stress(voigt=False))
    assert np.allclose(np.load(system / "set.000" / "energy.npy"), [fr.label(a, "energy") for a in alloys])
    mols = molecule_frames(2)
    (system,) = map(Path, write_systems(mols, tmp_path / "mol", ["C", "H", "O"]))
    assert (system / "nopbc").is_file() and not (system / "set.000" / "virial.npy").exists()
    box = np.load(system / "set.000" / "box.npy").reshape(-1, 3, 3)
    assert (np.linalg.det(box) > 1000).all()  # a real box (unused by DeePMD under nopbc), never a zero cell
    assert np.allclose(np.load(system / "set.000" / "force.npy").reshape(2, 9, 3),
                       [fr.label(m, "forces") for m in mols])


#: DeePMD 3.2.0's full-validation log and learning curve as dp --pt train wrote them (2 epochs of 6 steps;
#: lcurve columns narrowed)
DEEPMD_VAL_LOG = """\
# step E_MAE(meV/atom) E_RMSE(meV/atom) F_MAE(meV/Å) F_RMSE(meV/Å) S_MAE(meV/Å³) S_RMSE(meV/Å³)
# E uses per-atom energy, F uses component-wise force errors, and the second-rank column is S ...
   6       284.19           374.00         564.33       762.06        27.385         52.776
# saved best checkpoint: best.ckpt-6.t-1.pt (F:MAE = 564.33 meV/Å)
   12      282.37           372.01         564.40       762.02          nan            nan
"""
DEEPMD_LCURVE = """\
# step  rmse_val  rmse_trn  rmse_e_val  rmse_e_trn  rmse_f_val  rmse_f_trn  rmse_v_val  rmse_v_trn  lr
# If there is no available reference data, rmse_*_{val,trn} will print nan
  1  1.07e+01  3.19e+01  9.81e-03  5.26e-01  9.12e-01  8.52e-01  9.77e-01  1.34e+00  1.0e-02
  6  6.55e+00  1.38e+01  4.11e-02  3.93e-01  9.14e-01  7.71e-01  9.80e-01  1.02e+00  4.1e-04
  12  9.60e+00  1.03e+01  5.25e-01  3.09e-01  5.71e-01  9.03e-01  7.00e-02  1.38e+00  8.8e-06
"""


def test_deepmd_curve_and_early_stop_from_its_logs(tmp_path):
    """The poll of a running dp train: val.log (MAE, meV -> the curve's meV/atom, meV/Å, GPa) and lcurve.out (train
    RMSE in eV -> meV, lr) make one curve epoch per validation; an epoch without a lower force MAE with patience 1
    stops it; progress.json is the job folder's."""
    from mlffbench.models.adapters.deepmd import _Watch
    from mlffbench.models.training import Training, read_progress

    folder = tmp_path / "deepmd"
    folder.mkdir()
    watch = _Watch(folder, tmp_path, Training(max_epochs=4, patience=1), epoch_steps=6)
    assert watch.poll() is False and watch.curve.epochs == []
    (folder / "lcurve.out").write_text(DEEPMD_LCURVE)
    (folder / "val.log").write_text(DEEPMD_VAL_LOG.split("   12")[0])
    assert watch.poll() is False
    (folder / "val.log").write_text(DEEPMD_VAL_LOG)
    assert watch.poll() is True  # epoch 2: 564.40 > 564.33 meV/Å
    first, second = watch.curve.epochs
    assert (first["epoch"], second["epoch"]) == (1, 2) and first["lr"] == pytest.approx(4.1e-4)
    assert first["valid"] == pytest.approx({"energy": 284.19, "forces": 564.33, "stress": 27.385 * 0.16021766208})
    assert "stress" not in second["valid"]  # nan: not in the record
    assert first["train"] == pytest.approx({"energy_rmse": 393.0, "forces_rmse": 771.0, "virial_rmse": 1020.0,
                                            "loss": 13.8 ** 2})
    assert read_progress(tmp_path)["epoch"] == 2 and read_progress(tmp_path)["valid_forces"] == 564.40
    for step in (6, 12):
        (folder / f"best.ckpt-{step}.t-1.pt").write_text("")
    assert watch.best_checkpoint() == (folder / "best.ckpt-12.t-1.pt", 2)
    (folder / "best.ckpt-18.t-1.pt").write_text("")  # cut by the stop signal: epoch 3 never logged
    (folder / "best.ckpt-12.t-1.pt").unlink()
    assert watch.best_checkpoint() == (folder / "best.ckpt-6.t-1.pt", 1)


def test_gap_two_body_kernels_only_for_pairs_within_the_cutoff():
    """gap_fit's add_species=T makes a 2B kernel for every pair and aborts on one without any distance (ethanol's
    single O: no O-O pair); the adapter lists the pairs that occur."""
    from mlffbench.models.adapters.gap import species_pairs

    assert species_pairs(molecule_frames(2), 4.5) == [(1, 1), (1, 6), (1, 8), (6, 6), (6, 8)]
    assert species_pairs(alloy_frames(2), 4.5) == [(29, 29), (29, 79), (79, 79)]


# -- refuse: what a family cannot run, decided at planning without training -----------------------------------
ALLOY_SUMMARY = DataSummary("alloy", ("Au", "Cu"), periodic=True, has_stress=True, uniform=False, n_frames=30)
MOLECULE_SUMMARY = DataSummary("acac", ("C", "H", "O"), periodic=False, has_stress=False, uniform=True,
                               n_frames=500)
TRAINED = ("mace", "nequip", "allegro", "gap", "deepmd", "torchani", "grace", "flare")


@pytest.mark.parametrize("family", TRAINED)
def test_trained_families_take_alloys_and_molecules(family):
    cls = get_model_class(family)
    assert cls.refuse(ALLOY_SUMMARY, {}) is None and cls.refuse(MOLECULE_SUMMARY, {}) is None


def test_sgdml_refuses_data_sets_of_more_than_one_system():
    cls = get_model_class("sgdml")
    assert cls.refuse(MOLECULE_SUMMARY, {}) is None  # one molecule: sGDML's own use
    assert cls.refuse(DataSummary("Cu", ("Cu",), True, True, True, 30), {}) is None  # TM23: one cell per element
    reason = cls.refuse(ALLOY_SUMMARY, {})
    assert reason.startswith("sGDML models one fixed system") and "\n" not in reason


@pytest.mark.parametrize("family,model", [("chgnet", "CHGNet 0.3.0"), ("sevennet", "SevenNet 7net-0")])
def test_pretrained_models_refuse_elements_outside_mptrj(family, model):
    from mlffbench.models.adapters.zeroshot import MPTRJ_ELEMENTS

    cls = get_model_class(family)
    assert len(MPTRJ_ELEMENTS) == 89 and {"H", "C", "O", "Cu", "Au", "Pu"} <= MPTRJ_ELEMENTS
    assert cls.refuse(ALLOY_SUMMARY, {}) is None and cls.refuse(MOLECULE_SUMMARY, {}) is None
    reason = cls.refuse(DataSummary("PoCu", ("Cu", "Po"), True, True, False, 10), {})
    assert reason == f"pretrained {model} (trained on MPtrj's 89 elements) does not cover Po"
    assert cls.refuse(DataSummary("Og", ("Og",), True, True, True, 10), {}).endswith("does not cover Og")


def test_sevennet_model_names_and_refusal():
    cls = get_model_class("sevennet")
    po = DataSummary("Po", ("Po",), True, True, True, 10)
    assert "SevenNet 7net-l3i5" in cls.refuse(po, {"kwargs": {"model": "7net-l3i5"}})
    assert cls.refuse(po, {"kwargs": {"model": "7net-omat"}}) is None  # not shipped: its elements are not known


def test_nep_model_refuses_elements_its_file_lacks(tmp_path):
    cls = get_model_class("nep_model")
    path = tmp_path / "nep.txt"
    path.write_text("nep4 2 Cu Au\ncutoff 6 4\n")
    assert cls.refuse(ALLOY_SUMMARY, {"path": str(path)}) is None
    assert cls.refuse(MOLECULE_SUMMARY, {"path": str(path)}) == f"NEP file {path} (types Cu Au) does not cover C, H, O"
    assert cls.refuse(ALLOY_SUMMARY, {"path": str(tmp_path / "missing.txt")}) is None  # the job names the path


def test_ase_calculator_refuses_only_with_declared_elements():
    cls = get_model_class("ase_calculator")
    emt = {"calculator": "ase.calculators.emt:EMT"}
    assert cls.refuse(MOLECULE_SUMMARY, emt) is None  # nothing declared: nothing refused
    cls.check_params({**emt, "elements": ["Cu", "Au", "Ni"]})
    assert cls.refuse(ALLOY_SUMMARY, {**emt, "elements": ["Cu", "Au", "Ni"]}) is None
    assert cls.refuse(MOLECULE_SUMMARY, {**emt, "elements": ["Cu", "Au", "C", "O"]}).endswith("does not cover H")
    with pytest.raises(ConfigError, match="params.elements"):
        cls.check_params({**emt, "elements": ["Cu", "Xx"]})


def test_refusals_are_recorded_at_planning(tmp_path):
    """Through the planner (no job runs, no family env): on the alloy data set sGDML and an EMT calculator
    declared for Cu only are 'not run' with their reasons; the others are planned."""
    cfg = {"name": "plan", "seed": 0, "datasets": [alloy_dataset(tmp_path)],
           "models": [{"name": "sgdml"}, {"name": "gap"}, {"name": "chgnet"},
                      {"name": "ase_calculator", "params": {"calculator": "ase.calculators.emt:EMT",
                                                            "elements": ["Cu"]}}],
           "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
           "execution": {"executor": "inprocess"}}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    main = MainJob(load_config(path), tmp_path / "run")
    planned = {job.name for job in main.plan()}
    assert {f"accuracy:{ALLOY}:gap", f"accuracy:{ALLOY}:chgnet"} <= planned
    assert not any(name.endswith(":sgdml") or name.endswith(":ase_calculator") for name in planned)
    reasons = {x["model"]: x["reason"] for x in main.not_run}
    assert set(reasons) == {"sgdml", "ase_calculator"}
    assert reasons["sgdml"].startswith("sGDML models one fixed system")
    assert reasons["ase_calculator"].endswith("does not cover Au")


# -- TorchANI ----------------------------------------------------------------------------------------------
TORCHANI_TINY = {"hidden": [8], "radial_num_shifts": 8, "angular_num_shifts": 2, "angular_num_sections": 4,
                 "radial_cutoff": 4.5, "angular_cutoff": 3.5, "batch_size": 8}


@pytest.mark.slow
def test_torchani_trains_through_engine_and_predicts(tmp_path):
    python = family_python("torchani")
    run_dir, jobs, data = run_alloy(tmp_path, [{"name": "torchani", "params": TORCHANI_TINY,
                                                "training": {**TWO_EPOCHS, "precision": "float64"}}])
    job = jobs[f"accuracy:{ALLOY}:torchani"]
    assert_scored(job)
    checked = check_in_env(python, run_dir, job, data=data)
    info = checked["info"]
    assert_info(info, "torchani")
    assert info["version"] == "2.9.0" and info["epochs"] == 2 and info["train_s_per_epoch"] > 0
    assert_two_epoch_record(info, "loss")
    assert info["precision"] == "float64" and job.result["training"]["protocol"]["precision"] == "float64"
    assert all(e["train"]["forces"] > 0 for e in info["training"]["curve"])
    assert info["n_parameters"] > 0 and not info["stress_trained"] and info["elements"] == ["Au", "Cu"]
    assert info["self_energy_eV_per_atom"]["Au"] - info["self_energy_eV_per_atom"]["Cu"] > 0.3
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


#: run in the calorine env: a valid NEP4 potential file for Cu (argv[1]) built with calorine's own Model class and
#: writer, seeded random weights (no NEP file ships offline and training one needs GPUMD's GPU-only `nep`); the
#: descriptor scaler is set as `nep` sets it, 1 / (max - min) of each component over the structures of argv[2]
WRITE_NEP = r"""
import sys
import numpy as np
from calorine.nep import get_descriptors, read_model
from calorine.nep.model import Model
from ase.io import read
path, rng = sys.argv[1], np.random.default_rng(0)
n_max, n_basis, l_max, n_neuron = 4, 4, 4, 8
n_r, n_a = n_max + 1, (n_max + 1) * l_max
n_in, n_ann, n_desc = n_r + n_a, (n_r + n_a + 2) * n_neuron + 1, 2 * (n_max + 1) * (n_basis + 1)
def weights():
    return {("Cu", "Cu"): rng.uniform(-1, 1, (n_max + 1, n_basis + 1))}
model = Model(version=4, model_type="potential", types=("Cu",), radial_cutoff=5.0, angular_cutoff=4.0,
              max_neighbors_radial=100, max_neighbors_angular=60, n_basis_radial=n_basis, n_basis_angular=n_basis,
              n_max_radial=n_max, n_max_angular=n_max, l_max_3b=l_max, l_max_4b=0, l_max_5b=0, has_q_112=0,
              has_q_123=0, has_q_233=0, has_q_134=0, n_descriptor_radial=n_r, n_descriptor_angular=n_a,
              n_neuron=n_neuron, n_parameters=n_ann + n_desc + n_in, n_descriptor_parameters=n_desc,
              n_ann_parameters=n_ann, q_scaler=[1.0] * n_in, radial_descriptor_weights=weights(),
              angular_descriptor_weights=weights(),
              ann_parameters={"Cu": {"w0": rng.uniform(-1, 1, (n_neuron, n_in)),
                                     "b0": rng.uniform(-1, 1, (n_neuron, 1)),
                                     "w1": rng.uniform(-1, 1, (1, n_neuron))}, "b1": 0.1})
model.write(path)
q = np.vstack([get_descriptors(a, model_filename=path) for a in read(sys.argv[2], ":")])
model.q_scaler = list(1.0 / (q.max(axis=0) - q.min(axis=0)))
model.write(path)
print(read_model(path).n_parameters)
"""


@pytest.mark.slow
def test_nep_model_predicts_with_metal43_shift(tmp_path):
    """A real NEP4 file (calorine-written, seeded weights) through calorine's CPUNEP via the nep_model family:
    shifted and raw models differ in energy by exactly N δ, forces and stress are the derivatives of the energy."""
    python = family_python("nep_model")
    nep_file = tmp_path / "nep.txt"
    frames = tmp_path / "nep_frames.extxyz"
    from ase.build import bulk
    from ase.io import write

    cells = [bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2) for _ in range(4)]
    for i, cell in enumerate(cells):
        cell.rattle(0.1, seed=i)
    write(frames, cells, format="extxyz")
    out = subprocess.run([python, "-c", WRITE_NEP, str(nep_file), str(frames)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    n_parameters = int(out.stdout.strip().splitlines()[-1])
    assert n_parameters == 292  # (5 + 20 + 2) * 8 + 1 network, 2 * 5 * 5 descriptor, 25 scaler
    run_dir, jobs = run_engine(tmp_path, [
        {"name": "nep_model", "label": "nep-shifted", "params": {"path": str(nep_file)}},
        {"name": "nep_model", "label": "nep-raw", "params": {"path": str(nep_file), "shift": False}}])
    shifted = assert_scored(jobs["accuracy:Cu:nep-shifted"])
    raw = assert_scored(jobs["accuracy:Cu:nep-raw"])
    assert shifted["forces.mae"] == pytest.approx(raw["forces.mae"], rel=1e-12)
    assert shifted["stress.mae"] == pytest.approx(raw["stress.mae"], rel=1e-12)
    assert shifted["energy_per_atom.mae"] < raw["energy_per_atom.mae"]
    checked = check_in_env(python, run_dir, jobs["accuracy:Cu:nep-shifted"], d=1e-4, d_strain=1e-5)
    info = checked["info"]
    assert_info(info, "calorine")
    assert info["version"] == "4.1" and info["n_parameters"] == n_parameters and info["nep_types"] == ["Cu"]
    assert info["nep_file"] == str(nep_file) and info["shift_applied"]
    raw_checked = check_in_env(python, run_dir, jobs["accuracy:Cu:nep-raw"], differences=False)
    assert not raw_checked["info"]["shift_applied"]
    delta = info["energy_shift_eV_per_atom"]["Cu"]
    assert raw_checked["info"]["energy_shift_eV_per_atom"]["Cu"] == delta  # recorded, not applied
    assert raw_checked["energy"] - checked["energy"] == pytest.approx(checked["natoms"] * delta, abs=1e-9)
    assert checked["force_scale"] > 1e-3  # the seeded weights give a potential with real forces
    assert checked["force_err"] < 1e-5 * max(1.0, checked["force_scale"])
    assert checked["stress_err"] < 1e-5 * max(1.0, checked["stress_scale"]) + 1e-8
