"""GRACE (graph atomic cluster expansion; tensorpotential 0.6.2.1 on TensorFlow 2.20 CPU), in the ``grace`` environment.

Trained from scratch the way its users do: the training and validation frames go into pandas pickles
(``ase_atoms``, ``energy``, ``forces``, ``stress`` columns: eV, eV/Å, eV/Å³ with ASE's sign, gracemaker's
default ``stress_units: eV/A3``), an ``input.yaml`` names a model preset (``GRACE_1LAYER_latest`` small by
default; the preset's per-complexity settings, overridden by ``params.kwargs``), and the ``gracemaker`` program
fits it with Adam (EMA, clipnorm 1, cosine decay to lr/12 over ``training.max_epochs``: its wizard's Adam
block) on a Huber (default) or
square loss of energy per atom, forces and, when every training frame has one, stress. Per-element energy shift
by least squares on the training compositions and force-RMS scaling are gracemaker's ``shift``/``scale``
options (the shift it fitted is read from its log into ``info``). Molecules (pbc F, no stress) go in as they are:
tensorpotential builds non-periodic neighbour lists, the loss has no stress term, predicted stress is zero.
The validation frames are gracemaker's test set: the epoch with the lowest test loss is the one exported
(``seed/<seed>/final_model``, a TF SavedModel) and predicted through tensorpotential's ASE calculator
``TPCalculator`` (forces and stress from TF autodiff; stress in ASE's sign).

Training protocol (``mlffbench.models.training``): gracemaker trains ``maxiter`` = max_epochs epochs, validates
every epoch (``test_metrics.yaml``, one JSON line per epoch: eV/atom, eV/Å, eV/Å³) and checkpoints the best test
loss itself (``checkpoints/checkpoint.best_test_loss``), but has no early stopping on a validation plateau (its
ReduceLROnPlateau ``stop_at_min`` stops at a minimum learning rate, not at a stale loss) and no wall-time limit:
the adapter runs it under ``training.run_watched`` with a poll over ``test_metrics.yaml`` that stops it (SIGINT,
which gracemaker catches and exits without exporting) after ``patience`` epochs without relative improvement, on
a non-finite loss, or at ``max_minutes``; the best-test checkpoint is then exported with gracemaker's own
``gracemaker input.yaml -r -s`` (restart from best test loss, save model: ``seed/<seed>/saved_model``).
``precision`` is gracemaker's ``param_dtype`` (float32 is its default), ``device`` is TensorFlow's
(``tf_device``; the ``grace`` environment has tensorflow-cpu, so cuda is refused there).

GRACE is not among the TM23 / Metal-43 / MS25 / TEA models: there is no paper protocol to follow; the settings are
gracemaker's own defaults except where ``Potential.info['deviations']`` says otherwise.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models import training as trn
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

#: 1 eV/Å³ in GPa (gracemaker's stress metrics are eV/Å³)
EV_A3_GPA = 160.21766208

#: tensorpotential's public presets (``get_public_preset_list()`` in 0.6.2.1) and their complexity levels
PRESETS = ("GRACE_1LAYER_latest", "GRACE_2LAYER_latest", "GRACE_1LAYER_v1_24", "GRACE_2LAYER_v1_24", "FS")
COMPLEXITIES = ("small", "medium", "large")

DEFAULTS = {
    "preset": "GRACE_1LAYER_latest", "complexity": "small", "kwargs": {},
    "cutoff": None,  # None: the preset's own rcut (6 Å for GRACE-1L/2L, 7 Å for FS)
    # gracemaker wizard defaults: Huber loss (delta 0.01), weights E 16, F 32, S 128, lr 0.008
    "loss": "huber", "huber_delta": 0.01, "energy_weight": 16.0, "force_weight": 32.0, "stress_weight": 128.0,
    "batch_size": 8, "learning_rate": 0.008, "jit_compile": True, "seed": 0,
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
    epoch_trained = True
    cutoff_params = {"cutoff": DEFAULTS["cutoff"]}  # None: the preset's
    env = "grace"
    potential_class = GracePotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        common.check_moved(cls.name, params)  # epochs, valid_fraction, param_dtype, device: training.<key>
        super().check_params(params)
        common.check_choice(cls.name, params, "preset", PRESETS)
        common.check_choice(cls.name, params, "complexity", COMPLEXITIES)
        common.check_choice(cls.name, params, "loss", ("huber", "square"))
        common.check_positive(cls.name, params, ("huber_delta", "learning_rate"))
        common.check_positive(cls.name, params, ("batch_size",), integer=True)
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

    def fit(self, train, valid, params, workdir, training=None) -> GracePotential:
        import pandas as pd
        import yaml
        from tensorpotential.potentials import get_preset_settings

        self.check_params(params)
        protocol = training or trn.Training()
        p = {**DEFAULTS, **params}
        train, valid = common.hold_out(train, valid, protocol.validation_fraction, p["seed"])
        device, device_note = tf_device(self.name, protocol.device)
        job_dir = Path(workdir)
        workdir = job_dir / "grace"
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir / "seed", ignore_errors=True)  # a retried job starts clean (no silent restart)
        stress = p["stress_weight"] > 0 and common.all_have_stress(train) and common.all_have_stress(valid)
        _frames_dataframe(pd, train, stress).to_pickle(workdir / "train.pkl.gz")
        _frames_dataframe(pd, valid, stress).to_pickle(workdir / "valid.pkl.gz")

        preset_kwargs = dict(get_preset_settings(p["preset"])[p["complexity"]])
        preset_cutoff = preset_kwargs.pop("rcut")
        cutoff = float(p["cutoff"] if p["cutoff"] is not None else preset_cutoff)
        model_kwargs = {**preset_kwargs, **p["kwargs"]}
        config = _input_yaml(p, cutoff, model_kwargs, stress, protocol)
        (workdir / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

        gracemaker = Path(sys.executable).parent / "gracemaker"
        env = trn.thread_env(protocol.threads)  # TF_NUM_INTRAOP_THREADS / INTEROP: TF ignores OMP_NUM_THREADS
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = "-1"  # a GPU TensorFlow would otherwise place the fit on the GPU
        out_dir = workdir / "seed" / str(p["seed"])
        n_train_atoms = sum(len(f) for f in train)
        n_valid_atoms = sum(len(f) for f in valid)
        watch = _Watch(out_dir, protocol, job_dir)
        returncode, train_s, stopped = trn.run_watched([str(gracemaker), "input.yaml"], workdir / "gracemaker.log",
                                                       workdir, protocol, poll=watch.poll, env=env, interval_s=1.0)
        log_path = workdir / "gracemaker.log"
        train_rows = _metric_rows(out_dir / "train_metrics.yaml")
        test_rows = _metric_rows(out_dir / "test_metrics.yaml")
        curve, epoch_s = _curve(train_rows, test_rows, n_train_atoms, n_valid_atoms, stress)
        log_text = (out_dir / "log.txt").read_text() if (out_dir / "log.txt").is_file() else ""

        stopped_by = (watch.stop or "max_minutes") if stopped else None
        model_dir = out_dir / "final_model"
        best_ckpt = out_dir / "checkpoints" / "checkpoint.best_test_loss.index"
        if not stopped and (returncode or not (model_dir / "saved_model.pb").is_file()):
            finite = [math.isfinite(float(r.get("total_loss/test", math.nan))) for r in test_rows]
            if test_rows and not best_ckpt.is_file() and not any(finite):
                raise common.AdapterError(f"grace diverged at epoch 1 (non-finite loss): no finite validation loss, "
                                          f"nothing to score; log {log_path}")
            raise common.program_failed("gracemaker", returncode, log_path, markers=("Error", "error", "Exception"))
        if stopped:
            # gracemaker exits on SIGINT without exporting: export its best-test checkpoint with its own -r -s
            if not best_ckpt.is_file():
                if stopped_by == "nan":
                    raise common.AdapterError(f"grace diverged at epoch {len(test_rows)} (non-finite loss) before "
                                              f"any finite validation loss; log {log_path}")
                raise common.AdapterError(f"grace: stopped at {stopped_by} ({protocol.max_minutes} min) before the "
                                          f"first validated epoch; log {log_path}")
            model_dir = out_dir / "saved_model"
            shutil.rmtree(model_dir, ignore_errors=True)
            export_log = workdir / "gracemaker-export.log"
            code, _ = common.run_logged([str(gracemaker), "input.yaml", "-r", "-s", "-l", "export_log.txt"],
                                        export_log, workdir)
            if code or not (model_dir / "saved_model.pb").is_file():
                raise common.program_failed("gracemaker -r -s (export of the best-test checkpoint)", code,
                                            export_log, markers=("Error", "error", "Exception"))
        if stopped_by is None:
            stopped_by = "nan" if any(not math.isfinite(r.get("total_loss/test", math.nan)) for r in test_rows) \
                else "max_epochs"

        losses = np.array([r.get("total_loss/test", np.nan) for r in test_rows], dtype=float)
        best_epoch = int(test_rows[int(np.nanargmin(losses))]["epoch"]) if np.isfinite(losses).any() else None
        end = trn.outcome(curve, protocol, stopped_by, train_s, best_epoch)
        n_params = re.findall(r"Number of trainable parameters: (\d+)", log_text)
        deviations = ["GRACE is in none of the TM23 / Metal-43 / MS25 / TEA benchmarks: gracemaker's own defaults "
                      "(preset, Huber loss, weights, Adam + EMA, cosine decay)",
                      f"preset {p['preset']}/{p['complexity']} (gracemaker's wizard suggests medium), batch "
                      f"{p['batch_size']} (wizard: 32), cosine decay over max_epochs = {protocol.max_epochs}",
                      f"param_dtype {protocol.precision}" + (" (gracemaker default)" if protocol.precision == "float32"
                                                             else " (gracemaker default: float32)")]
        if p["kwargs"]:
            deviations.append(f"preset settings overridden: {p['kwargs']}")
        if not stress:
            deviations.append("stress not in the loss (stress_weight 0 or frames without stress)")
        weights = f"{p['energy_weight']:g}/{p['force_weight']:g}/{p['stress_weight'] if stress else 0:g}"
        notes = [f"loss weights E/F/S = {weights} ({p['loss']} loss, delta {p['huber_delta']}), gracemaker wizard "
                 "defaults (no paper protocol for GRACE)",
                 "early stopping by the benchmark (gracemaker has none): poll of test_metrics.yaml, SIGINT, then "
                 "export of gracemaker's best-test-loss checkpoint (gracemaker input.yaml -r -s)",
                 "curve: gracemaker's per-epoch MAE (mae/depa, mae/f_comp, mae/stress) in meV/atom, meV/Å, GPa; "
                 "loss = total_loss (EMA weights); wall_s = gracemaker's cumulative train + test time"]
        notes += [device_note] if device_note else []
        if stopped and stopped_by == "max_minutes":
            notes.append(f"stopped at max_minutes = {protocol.max_minutes}")
        name = tf_device_name(device)
        info = {
            "package": "tensorpotential", "version": common.package_version("tensorpotential"),
            "tensorflow": _tensorflow_version(), "device": device,
            "n_parameters": int(n_params[-1]) if n_params else None,
            "preset": p["preset"], "complexity": p["complexity"], "model_kwargs": model_kwargs, "cutoff": cutoff,
            "epochs": len(test_rows), "train_s": train_s, "param_dtype": protocol.precision,
            # the first epoch also traces (and with jit_compile, XLA-compiles) the graph: reported apart
            "train_s_per_epoch": float(np.mean(epoch_s[1:] or epoch_s)) if epoch_s else None,
            "first_epoch_s": float(epoch_s[0]) if epoch_s else None,
            "best_epoch": best_epoch,
            "stress_trained": bool(stress), "loss": p["loss"],
            "loss_weights": {"energy": p["energy_weight"], "forces": p["force_weight"],
                             "stress": p["stress_weight"] if stress else 0.0},
            "n_train": len(train), "n_valid": len(valid), "energy_shift_eV_per_atom": _energy_shift(log_text),
            "deviations": deviations,
            "training": trn.record(protocol, curve, end, name, len(train), len(valid), notes=notes),
        }
        return GracePotential(str(model_dir.resolve()), info)


def _tensorflow_version() -> str:
    """The TensorFlow distribution's version (tensorflow-cpu in the grace env, tensorflow in a GPU one)."""
    cpu = common.package_version("tensorflow-cpu")
    return cpu if cpu != "not installed" else common.package_version("tensorflow")


def tf_device(family: str, requested: str) -> tuple[str, str | None]:
    """(device, note) for a TensorFlow family, inside its environment (``training.torch_device`` for TF): auto =
    cuda when TensorFlow sees a GPU, else cpu with a note; cuda without one is a one-line error naming the family
    and its environment."""
    importlib.import_module("tensorpotential")  # first: it sets TF_USE_LEGACY_KERAS before TensorFlow loads
    import tensorflow as tf

    has_gpu = bool(tf.config.list_physical_devices("GPU")) if requested != "cpu" else False
    if requested == "cuda" and not has_gpu:
        raise trn.TrainingError(f"{family}: training.device = cuda, but TensorFlow {tf.__version__} in the "
                                f"{family} environment ({sys.executable}) sees no GPU (the environment has "
                                "tensorflow-cpu); use device: auto or cpu")
    if requested == "cpu" or not has_gpu:
        return "cpu", None if requested == "cpu" else "device auto: no GPU visible to TensorFlow, trained on the CPU"
    return "cuda", None


def tf_device_name(device: str) -> str:
    if device == "cuda":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        return details.get("device_name") or "GPU"
    return trn.device_name("cpu")


class _Watch:
    """run_watched's poll: gracemaker's test_metrics.yaml -> progress.json, and whether to stop it (patience: no
    relative improvement of the test loss for ``patience`` epochs; nan: a non-finite loss)."""

    def __init__(self, out_dir: Path, protocol, job_dir: Path):
        self.path, self.protocol, self.job_dir = out_dir / "test_metrics.yaml", protocol, job_dir
        self.start, self.seen, self.stop = time.perf_counter(), 0, None

    def poll(self) -> bool:
        rows = _metric_rows(self.path)
        if len(rows) > self.seen:
            self.seen = len(rows)
            forces = rows[-1].get("mae/f_comp")
            trn.write_progress(self.job_dir, len(rows), self.protocol, time.perf_counter() - self.start,
                               None if forces is None else 1e3 * float(forces))
        losses = [float(r.get("total_loss/test", math.nan)) for r in rows]
        if any(not math.isfinite(v) for v in losses):
            self.stop = "nan"
            return True
        if self.protocol.epochs_without_improvement(losses) >= self.protocol.patience and len(losses) < self.protocol.max_epochs:
            self.stop = "patience"
            return True
        return False


def _metric_rows(path: Path) -> list[dict]:
    """gracemaker's metrics file: one ``- {json}`` line per epoch (a line being written is skipped)."""
    rows = []
    try:
        text = path.read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        if line.startswith("- {"):
            try:
                rows.append(json.loads(line[2:]))  # json reads NaN / Infinity as Python writes them
            except ValueError:
                continue
    return rows


def _curve(train_rows, test_rows, n_train_atoms, n_valid_atoms, stress):
    """Curve in the benchmark's units (MAE: meV/atom, meV/Å, GPa) and per-epoch training seconds."""
    def errors(r, loss_key):
        out = {"loss": r.get(loss_key, math.nan), "energy": 1e3 * r.get("mae/depa", math.nan),
               "forces": 1e3 * r.get("mae/f_comp", math.nan)}
        if stress and "mae/stress" in r:
            out["stress"] = EV_A3_GPA * r["mae/stress"]
        return out

    curve = trn.Curve(metric="mae")
    by_epoch = {r.get("epoch"): r for r in train_rows}
    wall, epoch_s = 0.0, []
    for t in test_rows:
        tr = by_epoch.get(t.get("epoch"), {})
        s = float(tr.get("total_time/train/per_atom", 0.0)) * n_train_atoms
        if tr:
            epoch_s.append(s)
        wall += s + float(t.get("total_time/test/per_atom", 0.0)) * n_valid_atoms
        curve.add(int(t["epoch"]), wall, valid=errors(t, "total_loss/test"),
                  train=errors(tr, "total_loss/train") if tr else None, lr=t.get("lr_epoch_begin"))
    return curve, epoch_s

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


def _input_yaml(p: dict, cutoff: float, model_kwargs: dict, stress: bool, protocol) -> dict:
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
                      "param_dtype": protocol.precision},
        "fit": {"loss": loss, "maxiter": protocol.max_epochs, "optimizer": "Adam",
                "opt_params": {"learning_rate": p["learning_rate"], "use_ema": True, "ema_momentum": 0.99,
                               "weight_decay": None, "clipnorm": 1.0},
                "scheduler": "cosine_decay", "scheduler_params": {"minimum_learning_rate": p["learning_rate"] / 12},
                "batch_size": p["batch_size"], "test_batch_size": 4 * p["batch_size"],
                "jit_compile": p["jit_compile"], "compute_convex_hull": False, "eval_init_stats": False,
                # the best-test checkpoint is gracemaker's own (every improving epoch); regular ones at the end only
                "checkpoint_freq": protocol.max_epochs, "progressbar": False, "train_shuffle": True},
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
