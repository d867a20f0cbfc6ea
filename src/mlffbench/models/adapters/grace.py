"""GRACE (graph atomic cluster expansion; tensorpotential 0.6.2.1 on TensorFlow 2.20 CPU), in the ``grace`` environment.

Trained from scratch the way its users do: the training and validation frames go into pandas pickles
(``ase_atoms``, ``energy``, ``forces``, ``stress`` columns: eV, eV/Å, eV/Å³ with ASE's sign, gracemaker's
default ``stress_units: eV/A3``), an ``input.yaml`` names a model preset (``GRACE_1LAYER_latest`` small by
default; the preset's per-complexity settings, overridden by ``params.kwargs``), and the ``gracemaker`` program
fits it with Adam (EMA, clipnorm 1, cosine decay to lr/12: its wizard's Adam block) on a Huber (default) or
square loss of energy per atom, forces and, when every training frame has one, stress. Per-element energy shift
by least squares on the training compositions and force-RMS scaling are gracemaker's ``shift``/``scale``
options (the shift it fitted is read from its log into ``info``). Molecules (pbc F, no stress) go in as they are:
tensorpotential builds non-periodic neighbour lists, the loss has no stress term, predicted stress is zero.
The validation frames are gracemaker's test set: the epoch with the lowest test loss is the one exported
(``seed/<seed>/final_model``, a TF SavedModel) and predicted through tensorpotential's ASE calculator
``TPCalculator`` (forces and stress from TF autodiff; stress in ASE's sign).

GRACE is not among the TM23 / Metal-43 / MS25 / TEA models: there is no paper protocol to follow; the settings are
gracemaker's own defaults except where ``Potential.info['deviations']`` says otherwise.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

#: tensorpotential's public presets (``get_public_preset_list()`` in 0.6.2.1) and their complexity levels
PRESETS = ("GRACE_1LAYER_latest", "GRACE_2LAYER_latest", "GRACE_1LAYER_v1_24", "GRACE_2LAYER_v1_24", "FS")
COMPLEXITIES = ("small", "medium", "large")

DEFAULTS = {
    "preset": "GRACE_1LAYER_latest", "complexity": "small", "kwargs": {},
    "cutoff": None,  # None: the preset's own rcut (6 Å for GRACE-1L/2L, 7 Å for FS)
    # gracemaker wizard defaults: Huber loss (delta 0.01), weights E 16, F 32, S 128, lr 0.008
    "loss": "huber", "huber_delta": 0.01, "energy_weight": 16.0, "force_weight": 32.0, "stress_weight": 128.0,
    "epochs": 50, "batch_size": 8, "learning_rate": 0.008, "param_dtype": "float64", "jit_compile": True,
    "valid_fraction": 0.1, "seed": 0,
}


class GracePotential(common.CalculatorPotential):
    family = "grace"

    def make_calculator(self):
        importlib.import_module("tensorpotential")  # first: it sets TF_USE_LEGACY_KERAS before TensorFlow loads
        from tensorpotential.calculator import TPCalculator

        return TPCalculator(model=self.model_file)


class GraceModel(Model):
    """GRACE trained by gracemaker; params: see DEFAULTS (``kwargs``: preset keyword arguments, e.g. lmax)."""

    name = "grace"
    cutoff_params = {"cutoff": DEFAULTS["cutoff"]}  # None: the preset's
    env = "grace"
    potential_class = GracePotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_choice(cls.name, params, "preset", PRESETS)
        common.check_choice(cls.name, params, "complexity", COMPLEXITIES)
        common.check_choice(cls.name, params, "loss", ("huber", "square"))
        common.check_choice(cls.name, params, "param_dtype", ("float32", "float64"))
        common.check_positive(cls.name, params, ("huber_delta", "learning_rate", "valid_fraction"))
        common.check_positive(cls.name, params, ("epochs", "batch_size"), integer=True)
        common.check_nonnegative(cls.name, params, ("energy_weight", "force_weight", "stress_weight", "seed"))
        if params.get("cutoff") is not None:
            common.check_positive(cls.name, params, ("cutoff",))
        if not isinstance(params.get("kwargs", {}), dict):
            raise ConfigError(f"{cls.name}: params.kwargs must be a mapping of preset keyword arguments")
        if "rcut" in params.get("kwargs", {}):
            raise ConfigError(f"{cls.name}: params.kwargs.rcut: set the cutoff with params.cutoff")
        if not isinstance(params.get("jit_compile", True), bool):
            raise ConfigError(f"{cls.name}: params.jit_compile must be true or false")
        if isinstance(params.get("seed", 0), bool) or not isinstance(params.get("seed", 0), int):
            raise ConfigError(f"{cls.name}: params.seed must be an integer")
        if params.get("valid_fraction", 0.1) >= 1:
            raise ConfigError(f"{cls.name}: params.valid_fraction must be below 1")

    def fit(self, train, valid, params, workdir) -> GracePotential:
        import pandas as pd
        import yaml
        from tensorpotential.potentials import get_preset_settings

        self.check_params(params)
        p = {**DEFAULTS, **params}
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        workdir = Path(workdir) / "grace"
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir / "seed", ignore_errors=True)  # a retried job starts clean (no silent restart)
        stress = p["stress_weight"] > 0 and common.all_have_stress(train) and common.all_have_stress(valid)
        _frames_dataframe(pd, train, stress).to_pickle(workdir / "train.pkl.gz")
        _frames_dataframe(pd, valid, stress).to_pickle(workdir / "valid.pkl.gz")

        preset_kwargs = dict(get_preset_settings(p["preset"])[p["complexity"]])
        preset_cutoff = preset_kwargs.pop("rcut")
        cutoff = float(p["cutoff"] if p["cutoff"] is not None else preset_cutoff)
        model_kwargs = {**preset_kwargs, **p["kwargs"]}
        config = _input_yaml(p, cutoff, model_kwargs, stress)
        (workdir / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

        gracemaker = Path(sys.executable).parent / "gracemaker"
        env = dict(os.environ)
        if "OMP_NUM_THREADS" in env:  # TensorFlow ignores OMP_NUM_THREADS; pin its pools the same way
            env.setdefault("TF_NUM_INTRAOP_THREADS", env["OMP_NUM_THREADS"])
            env.setdefault("TF_NUM_INTEROP_THREADS", "1")
        log_path = workdir / "gracemaker.log"
        watch = common.Stopwatch()
        with open(log_path, "w") as log:
            proc = subprocess.run([str(gracemaker), "input.yaml"], stdout=log, stderr=subprocess.STDOUT,
                                  cwd=workdir, env=env)
        train_s = watch.seconds()
        out_dir = workdir / "seed" / str(p["seed"])
        model_dir = out_dir / "final_model"
        if proc.returncode or not (model_dir / "saved_model.pb").is_file():
            raise common.program_failed("gracemaker", proc.returncode, log_path,
                                        markers=("Error", "error", "Exception"))

        n_train_atoms = sum(len(f) for f in train)
        epoch_s = [m["total_time/train/per_atom"] * n_train_atoms
                   for m in _yaml_list(out_dir / "train_metrics.yaml") if "total_time/train/per_atom" in m]
        test_loss = [m.get("total_loss/test") for m in _yaml_list(out_dir / "test_metrics.yaml")]
        log_text = (out_dir / "log.txt").read_text()
        n_params = re.findall(r"Number of trainable parameters: (\d+)", log_text)
        deviations = ["GRACE is in none of the TM23 / Metal-43 / MS25 / TEA benchmarks: gracemaker's own defaults "
                      "(preset, Huber loss, weights, Adam + EMA, cosine decay)",
                      f"preset {p['preset']}/{p['complexity']} (gracemaker's wizard suggests medium) and "
                      f"{p['epochs']} epochs of batch {p['batch_size']} (wizard: 10000 updates of batch 32) "
                      "to fit a CPU budget",
                      "param_dtype float64 (gracemaker default: float32 parameters)" if p["param_dtype"] == "float64"
                      else "param_dtype float32 (gracemaker default)"]
        if p["kwargs"]:
            deviations.append(f"preset settings overridden: {p['kwargs']}")
        if not stress:
            deviations.append("stress not in the loss (stress_weight 0 or frames without stress)")
        info = {
            "package": "tensorpotential", "version": common.package_version("tensorpotential"),
            "tensorflow": common.package_version("tensorflow-cpu"), "device": "cpu",
            "n_parameters": int(n_params[-1]) if n_params else None,
            "preset": p["preset"], "complexity": p["complexity"], "model_kwargs": model_kwargs, "cutoff": cutoff,
            "epochs": p["epochs"], "train_s": train_s,
            # the first epoch also traces (and with jit_compile, XLA-compiles) the graph: reported apart
            "train_s_per_epoch": float(np.mean(epoch_s[1:] or epoch_s)) if epoch_s else None,
            "first_epoch_s": float(epoch_s[0]) if epoch_s else None,
            "best_epoch": int(np.nanargmin(np.array(test_loss, dtype=float))) + 1 if test_loss else None,
            "stress_trained": bool(stress), "loss": p["loss"],
            "loss_weights": {"energy": p["energy_weight"], "forces": p["force_weight"],
                             "stress": p["stress_weight"] if stress else 0.0},
            "n_train": len(train), "n_valid": len(valid), "energy_shift_eV_per_atom": _energy_shift(log_text),
            "deviations": deviations,
        }
        return GracePotential(str(model_dir.resolve()), info)


def _frames_dataframe(pd, frames, stress: bool):
    """gracemaker's pandas format: ase_atoms + energy (eV), forces (eV/Å), stress (Voigt eV/Å³, ASE sign)."""
    from ase import Atoms

    rows = []
    for f in frames:
        row = {"ase_atoms": Atoms(f.numbers, f.positions, cell=f.cell, pbc=f.pbc),
               "energy": float(fr.label(f, "energy")), "forces": np.asarray(fr.label(f, "forces"), dtype=float)}
        if stress:
            row["stress"] = np.asarray(fr.label(f, "stress"), dtype=float)
        rows.append(row)
    return pd.DataFrame(rows)


def _input_yaml(p: dict, cutoff: float, model_kwargs: dict, stress: bool) -> dict:
    def term(weight):
        return {"weight": float(weight), "type": p["loss"], **({"delta": p["huber_delta"]}
                                                               if p["loss"] == "huber" else {})}

    loss = {"energy": term(p["energy_weight"]), "forces": term(p["force_weight"])}
    if stress:
        loss["stress"] = term(p["stress_weight"])
    return {
        "seed": p["seed"], "cutoff": cutoff,
        "data": {"filename": "train.pkl.gz", "test_filename": "valid.pkl.gz", "reference_energy": 0},
        "potential": {"preset": p["preset"], "kwargs": model_kwargs, "shift": True, "scale": True,
                      "param_dtype": p["param_dtype"]},
        "fit": {"loss": loss, "maxiter": p["epochs"], "optimizer": "Adam",
                "opt_params": {"learning_rate": p["learning_rate"], "use_ema": True, "ema_momentum": 0.99,
                               "weight_decay": None, "clipnorm": 1.0},
                "scheduler": "cosine_decay", "scheduler_params": {"minimum_learning_rate": p["learning_rate"] / 12},
                "batch_size": p["batch_size"], "test_batch_size": 4 * p["batch_size"],
                "jit_compile": p["jit_compile"], "compute_convex_hull": False, "eval_init_stats": False,
                "checkpoint_freq": max(1, p["epochs"]), "progressbar": False, "train_shuffle": True},
    }


def _energy_shift(log: str) -> dict[str, float] | None:
    """gracemaker's per-element energy shift from its log line "Single-atom energy shift (computed on train set):
    {'C': np.float64(-504.9), ...}" (least squares on the training compositions), or None."""
    line = next((ln for ln in log.splitlines() if "Single-atom energy shift" in ln), None)
    if line is None:
        return None
    pairs = re.findall(r"'([A-Z][a-z]?)':\s*(?:np\.float64\()?([-+0-9.eE]+)", line.split(":", 3)[-1])
    return {el: float(v) for el, v in pairs} or None


def _yaml_list(path: Path) -> list[dict]:
    import yaml

    if not path.is_file():
        return []
    return [m for m in (yaml.safe_load(path.read_text()) or []) if isinstance(m, dict)]
