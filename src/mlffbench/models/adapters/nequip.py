"""NequIP 0.19.1 and Allegro 0.8.3 (e3nn 0.6.x) through ``nequip-train`` (hydra config, a Lightning ``Trainer``), in
the ``nequip`` env, under the run's training protocol (``mlffbench.models.training``).

Loss and model follow TM23 (Methods IV.C.2, SI S6): loss = per-atom energy MSE + force MSE + stress MSE, all
coefficients 1 (nequip normalises the coefficients to sum 1); the learning rate is reduced by 80 % (factor 0.2)
when the validation force MAE has not improved for 100 epochs (deviation, by default: for a third of
training.patience, ``plateau_patience``, since TM23's 100 epochs would outlast early stopping). Model defaults follow TM23 SI S6: 4 layers, 8
radial Bessel functions, batch size 1, r_cut and learning rate from the TM23 grid (r_cut 4-6 Å, lr 0.001-0.01);
features are given per rotation order as in Table S18, e.g. ``num_features: [32, 16, 8]`` = 32x(0e+0o) +
16x(1e+1o) + 8x(2e+2o) with ``l_max: 2`` (``parity: true``).

Protocol, with Lightning's own mechanisms: ``Trainer(max_epochs=training.max_epochs, max_time=training.max_minutes,
check_val_every_n_epoch=1)``; the validation loss is the training loss on the validation frames (``val_metrics``
= the loss's MSE terms with the loss coefficients, logged as ``val0_epoch/weighted_sum``, plus MAEs); early stopping
on it with ``patience`` and the *relative* ``min_delta`` (``nequip_callbacks.RelativeEarlyStopping``: Lightning's
``EarlyStopping`` has an absolute one); a ``ModelCheckpoint`` on it keeps ``best.ckpt``, the model scored (the
best-validation weights; before the protocol it was the checkpoint of the lowest validation force MAE).
``nequip_callbacks.ProtocolRecorder`` writes the per-epoch curve (``out/curve.json``: nequip's epoch metrics, lr,
wall time), the job's ``progress.json``, stops on a non-finite training loss and says what ended the training.
TM23 ends training when the learning rate falls below 1e-5 (``StopBelowLearningRate``); that is now opt-in
(``params.min_lr`` > 0, default 0 = off): the protocol's patience / max_epochs / max_minutes decide.
``training.precision`` -> ``model_dtype``; TF32 stays off (``nequip-train`` sets ``allow_tf32=False``; nequip
offers TF32 only through its ``TF32Scheduler`` callback, not used) and there is no mixed precision (nequip's
models are built in one dtype, float32 or float64). ``training.device`` -> ``accelerator`` cpu / gpu. The
``nequip-train`` subprocess gets ``training.threads`` threads (``thread_env``); the adapter guards it with
``run_watched`` at max_minutes + max(2 min, 10 %) (setup and the last validation come on top of Lightning's
max_time) in case it hangs.

The model is evaluated from its best checkpoint through ``NequIPCalculator._from_saved_model`` (eager mode):
TorchScript compilation is refused on torch >= 2.10 and AOT-inductor compilation costs 40-75 s per model.
Deviations: exponential-moving-average weights (nequip's recommended ``EMALightningModule``) are used for
validation and evaluation; TM23 (nequip 0.5) does not state it.
Energy reference: ``per_type_energy_shifts`` is one constant per element, by least squares of the training
energies on the composition (``common.energy_reference``; nequip's ``per_atom_energy_mean`` would give every type
the same value, leaving the composition dependence of alloys and mixed molecules to the network); for one element
it is the per-atom mean as before (up to weighting by cell size). ``type_names`` are the sorted symbols of the
training and validation frames. Molecules (pbc F) train without stress and predict zero stress.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from mlffbench.errors import ConfigError
from mlffbench.models import training as tr
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

COMMON = {
    "r_cut": 5.0, "lr": 0.01, "batch_size": 1, "energy_weight": 1.0, "forces_weight": 1.0,
    "stress_weight": 1.0, "lr_factor": 0.2, "lr_patience": None, "min_lr": 0.0, "num_bessels": 8,
    "polynomial_cutoff_p": 6, "ema_decay": 0.999, "seed": 0,
}
NEQUIP = {**COMMON, "num_layers": 4, "l_max": 2, "parity": True, "num_features": [32, 16, 8],
          "radial_mlp_depth": 2, "radial_mlp_width": 64}
ALLEGRO = {**COMMON, "num_layers": 2, "l_max": 2, "parity": True, "num_scalar_features": 64,
           "num_tensor_features": 16, "mlp_width": 64}

#: the metric TM23's plateau scheduler monitors (validation force MAE)
LR_MONITOR = "val0_epoch/forces_mae"
#: the validation loss (the training loss's weighted MSE sum on the validation frames): early stopping, checkpoint
VAL_LOSS = "val0_epoch/weighted_sum"
#: nequip's units are the data's (eV, eV/Å, eV/Å³) -> the curve's meV/atom, meV/Å, GPa
EV_A3_GPA = 160.21766208
CURVE_KEYS = {"energy": ("per_atom_energy_mae", 1000.0), "forces": ("forces_mae", 1000.0),
              "stress": ("stress_mae", EV_A3_GPA)}


class NequipPotential(common.CalculatorPotential):
    family = "nequip"

    def make_calculator(self):
        import torch
        from nequip.integrations.ase import NequIPCalculator

        device = "cuda" if self.info.get("device") == "cuda" and torch.cuda.is_available() else "cpu"
        return NequIPCalculator._from_saved_model(self.model_file, device=device)


class AllegroPotential(NequipPotential):
    family = "allegro"


class NequipModel(Model):
    """NequIP; params: see NEQUIP (``num_features`` an int or one multiplicity per l = 0..l_max). Epochs,
    validation, dtype and device come from the run's training protocol (``training:``)."""

    name = "nequip"
    env = "nequip"
    potential_class = NequipPotential
    defaults = NEQUIP
    package = "nequip"
    epoch_trained = True

    @classmethod
    def check_params(cls, params):
        common.check_moved(cls.name, params)
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise ConfigError(f"{cls.name}: unknown param(s) {unknown} (known: {list(cls.defaults)})")
        common.check_positive(cls.name, params, ("r_cut", "lr", "lr_factor"))
        common.check_positive(cls.name, params, ("batch_size", "lr_patience", "num_layers",
                                                 "num_bessels", "polynomial_cutoff_p", "radial_mlp_depth",
                                                 "radial_mlp_width", "num_scalar_features",
                                                 "num_tensor_features", "mlp_width"), integer=True)
        common.check_nonnegative(cls.name, params, ("energy_weight", "forces_weight", "stress_weight", "ema_decay",
                                                    "min_lr"))
        common.check_choice(cls.name, params, "l_max", range(0, 7))
        common.check_choice(cls.name, params, "parity", (True, False))
        if params.get("lr_factor", 0.2) >= 1:
            raise ConfigError(f"{cls.name}: params.lr_factor must be < 1 (got {params['lr_factor']!r})")
        feats = params.get("num_features")
        if feats is not None and not isinstance(feats, int):
            l_max = params.get("l_max", cls.defaults["l_max"])
            if not (isinstance(feats, list) and len(feats) == l_max + 1
                    and all(isinstance(n, int) and n > 0 for n in feats)):
                raise ConfigError(f"{cls.name}: params.num_features must be a positive int or l_max + 1 = "
                                  f"{l_max + 1} positive ints (got {feats!r})")

    def model_config(self, p: dict) -> dict:
        return {
            "_target_": "nequip.model.NequIPGNNModel", "num_layers": p["num_layers"], "l_max": p["l_max"],
            "parity": p["parity"], "num_features": p["num_features"], "radial_mlp_depth": p["radial_mlp_depth"],
            "radial_mlp_width": p["radial_mlp_width"], "num_bessels": p["num_bessels"],
            "polynomial_cutoff_p": p["polynomial_cutoff_p"],
        }

    def fit(self, train, valid, params, workdir, training=None):
        import torch

        self.check_params(params)
        protocol = training or tr.Training()
        p = {**self.defaults, **params}
        if p["lr_patience"] is None:  # TM23's 100 epochs would outlast early stopping: cut the lr before it
            p["lr_patience"] = tr.plateau_patience(protocol.patience)
        job_dir = Path(workdir)
        workdir = job_dir / self.name
        out = workdir / "out"
        out.mkdir(parents=True, exist_ok=True)
        for old in list(out.glob("*.ckpt")) + [out / "curve.json"]:  # a rerun here starts afresh (no best-v1)
            old.unlink(missing_ok=True)
        train, valid = common.hold_out(train, valid, protocol.validation_fraction, p["seed"])
        device, device_note = tr.torch_device(self.name, protocol.device)
        threads = max(1, int(protocol.threads or 1))
        torch.set_num_threads(threads)
        stress = common.all_have_stress(train) and common.all_have_stress(valid)
        common.write_training_xyz(train, workdir / "train.xyz", stress)
        common.write_training_xyz(valid, workdir / "valid.xyz", stress)
        symbols = common.species(train + valid)  # a type for every species the validation frames hold too
        shifts = common.energy_reference(train, symbols)
        config = self.config(p, symbols, workdir, out, stress, shifts, protocol, device, job_dir)
        import yaml

        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        args = [sys.executable, "-m", "nequip.scripts.train", "-cp", str(workdir), "-cn", "config",
                f"hydra.run.dir={out}"]
        log_path = workdir / "train.log"
        # Lightning's max_time stops the training; this guard only catches a hung program (setup, data statistics
        # and the last epoch's validation come on top of max_time)
        guard = replace(protocol, max_minutes=protocol.max_minutes + max(2.0, 0.1 * protocol.max_minutes))
        common.write_command(workdir, args, tr.thread_env(threads))  # the family's own run, for by-hand timing
        returncode, train_s, killed = tr.run_watched(args, log_path, workdir, guard, env=tr.thread_env(threads))
        record = _read_json(out / "curve.json")
        curve, stop = to_curve(record, stress)
        if stop == "nan":
            stopped_by = "nan"
        elif killed:
            stopped_by = "max_minutes"
        elif returncode or stop in (None, "interrupted"):
            raise common.program_failed("nequip-train", returncode, log_path)
        else:
            stopped_by = stop
        best = Path(record.get("best_model_path") or out / "best.ckpt")
        score = record.get("best_model_score")
        # ModelCheckpoint saves its first checkpoint whatever the score (a non-finite one counts as inf)
        if not best.is_file() or score is None or not math.isfinite(score):
            if stopped_by == "nan":
                k = record.get("nan_epoch") or len(curve.epochs)
                raise common.AdapterError(f"{self.name} diverged at epoch {k} (non-finite loss) before any finite "
                                          f"validation loss: no checkpoint to score (log {log_path})")
            if killed:
                raise common.AdapterError(f"{self.name}: no epoch finished within training.max_minutes = "
                                          f"{protocol.max_minutes} (log {log_path})")
            raise common.program_failed("nequip-train", returncode, log_path)
        ckpt = torch.load(best, map_location="cpu", weights_only=False)
        best_epoch = int(ckpt.get("epoch", 0)) + 1
        del ckpt
        notes = []
        if stopped_by == "min_lr":
            notes.append(f"stopped by TM23's criterion: learning rate below params.min_lr = {p['min_lr']:g} "
                         f"(plateau scheduler patience {p['lr_patience']} epochs), recorded as patience")
            stopped_by = "patience"
        end = tr.outcome(curve, protocol, stopped_by, train_s, best_epoch=best_epoch)
        potential = self.potential_class(str(best))
        potential.info = {"device": device}
        n_params = common.count_parameters(potential.calculator.model)  # the model as the calculator loads it
        epochs = len(curve.epochs)
        weights = (f"{p['energy_weight']:g}/{p['forces_weight']:g}/{p['stress_weight']:g}" if stress
                   else f"{p['energy_weight']:g}/{p['forces_weight']:g}/0 (no stress labels)")
        ema = f"EMA weights (decay {p['ema_decay']:g})" if p["ema_decay"] else "no EMA"
        notes = [f"loss weights E/F/S = {weights} (per-atom energy MSE, force MSE, stress MSE; nequip normalises "
                 "them to sum 1), TM23 Methods IV.C.2",
                 f"validation loss = the training loss on the validation frames ({VAL_LOSS}); best.ckpt = its "
                 f"minimum (ModelCheckpoint), {ema}",
                 f"lr: Adam {p['lr']:g}, ReduceLROnPlateau factor {p['lr_factor']:g} after {p['lr_patience']} "
                 f"epochs without a better validation force MAE (TM23)",
                 ("TM23's stop at learning rate < min_lr: on (params.min_lr = " f"{p['min_lr']:g})" if p["min_lr"]
                  else "TM23's stop at learning rate < 1e-5: off (params.min_lr = 0); the protocol decides"),
                 "curve: MAEs per epoch (energy per atom, force components, stress tensor components) from "
                 "nequip's epoch metrics; train values accumulate over the epoch's steps",
                 f"precision {protocol.precision} = model_dtype; TF32 off", *notes]
        if protocol.patience <= p["lr_patience"]:
            notes.append(f"training.patience {protocol.patience} <= lr_patience {p['lr_patience']}: early stopping "
                         "comes before the plateau scheduler can cut the learning rate")
        if device_note:
            notes.append(device_note)
        info = {
            "package": self.package, "version": common.package_version(self.package),
            "nequip": common.package_version("nequip"), "e3nn": common.package_version("e3nn"),
            "device": device, "model_dtype": protocol.precision, "n_parameters": n_params, "epochs": epochs,
            "train_s": train_s,
            "train_s_per_epoch": curve.epochs[-1]["wall_s"] / epochs if epochs else train_s,
            "n_train": len(train), "n_valid": len(valid), "stress_trained": stress,
            "checkpoint": f"best.ckpt (min validation loss, epoch {best_epoch})",
            "type_names": symbols, "per_type_energy_shifts": shifts,
            "deviations": ["EMA weights evaluated (nequip EMALightningModule)" if p["ema_decay"] else
                           "no EMA", "train_s_per_epoch = wall time of the training (validation included) / epochs",
                           "evaluated eager from the checkpoint (no TorchScript/AOTI compile)"],
            "training": tr.record(protocol, curve, end, tr.device_name(device), len(train), len(valid),
                                  notes=notes),
        }
        potential.info = info
        return potential

    def config(self, p: dict, symbols: list[str], workdir: Path, out: Path, stress: bool,
               shifts: dict[str, float], protocol: tr.Training | None = None, device: str = "cpu",
               progress_dir: Path | None = None) -> dict:
        protocol = protocol or tr.Training()
        energy = {"_target_": "nequip.data.PerAtomModifier", "field": "total_energy"}
        def mae(name, field):
            return {"name": name, "field": field, "metric": {"_target_": "nequip.train.MeanAbsoluteError"}}

        maes = [mae("per_atom_energy_mae", energy), mae("forces_mae", "forces")]
        loss = {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                "coeffs": {"total_energy": p["energy_weight"], "forces": p["forces_weight"]}}
        key_mapping = {common.ENERGY_KEY: "total_energy", common.FORCES_KEY: "forces"}
        if stress:
            loss["_target_"] = "nequip.train.EnergyForceStressLoss"
            loss["coeffs"]["stress"] = p["stress_weight"]
            maes.append(mae("stress_mae", "stress"))
            key_mapping[common.STRESS_KEY] = "stress"
        # validation (and train) metrics: the loss's own MSE terms and coefficients (weighted_sum = the loss) + MAEs
        metrics = {**copy.deepcopy(loss), "extra_metrics": maes}
        module = {"_target_": "nequip.train.EMALightningModule", "ema_decay": p["ema_decay"]} if p["ema_decay"] \
            else {"_target_": "nequip.train.NequIPLightningModule"}
        model = {
            **self.model_config(p), "seed": p["seed"], "model_dtype": protocol.precision, "type_names": symbols,
            "r_max": p["r_cut"],
            "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
            "per_type_energy_scales": "${training_data_stats:per_type_forces_rms}",
            # per-element least squares on our training frames: nequip's per_atom_energy_mean is one number for
            # every type, which leaves the composition dependence (alloys, mixed molecules) to the network
            "per_type_energy_shifts": {el: float(shifts[el]) for el in symbols},
            "per_type_energy_scales_trainable": False, "per_type_energy_shifts_trainable": False,
        }
        loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": p["batch_size"], "num_workers": 0}
        callbacks = [
            {"_target_": "mlffbench.models.adapters.nequip_callbacks.RelativeEarlyStopping", "monitor": VAL_LOSS,
             "patience": protocol.patience, "min_delta": protocol.min_delta},
            {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "monitor": VAL_LOSS, "mode": "min",
             "dirpath": str(out), "filename": "best", "save_top_k": 1, "save_last": False},
            {"_target_": "mlffbench.models.adapters.nequip_callbacks.ProtocolRecorder",
             "path": str(out / "curve.json"), "max_epochs": protocol.max_epochs,
             "max_minutes": protocol.max_minutes, "progress_dir": None if progress_dir is None else str(progress_dir)},
        ]
        if p["min_lr"]:
            callbacks.append({"_target_": "mlffbench.models.adapters.nequip_callbacks.StopBelowLearningRate",
                              "min_lr": p["min_lr"]})
        return {
            "run": ["train"],
            "data": {
                "_target_": "nequip.data.datamodule.ASEDataModule", "seed": p["seed"],
                "train_file_path": str(workdir / "train.xyz"), "val_file_path": str(workdir / "valid.xyz"),
                "key_mapping": key_mapping,
                "transforms": [
                    {"_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
                     "model_type_names": symbols, "chemical_species_to_atom_type_map": {s: s for s in symbols}},
                    {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": p["r_cut"]},
                ],
                "train_dataloader": {**loader, "shuffle": True}, "val_dataloader": loader,
                "stats_manager": {"_target_": "nequip.data.CommonDataStatisticsManager",
                                  "dataloader_kwargs": {"batch_size": 1}, "type_names": symbols},
            },
            "trainer": {
                "_target_": "lightning.Trainer", "accelerator": "gpu" if device == "cuda" else "cpu", "devices": 1,
                "max_epochs": protocol.max_epochs, "max_time": max_time(protocol.max_seconds),
                "check_val_every_n_epoch": 1, "log_every_n_steps": 1, "logger": False,
                "enable_progress_bar": False, "num_sanity_val_steps": 0, "deterministic": False,
                "callbacks": callbacks,
            },
            "training_module": {
                **module, "loss": loss, "val_metrics": metrics, "train_metrics": copy.deepcopy(metrics),
                "optimizer": {"_target_": "torch.optim.Adam", "lr": p["lr"]},
                "lr_scheduler": {
                    "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                                  "factor": p["lr_factor"],
                                  "patience": p["lr_patience"] or tr.plateau_patience(protocol.patience)},
                    "monitor": LR_MONITOR, "interval": "epoch", "frequency": 1,
                },
                "model": model,
            },
        }


def max_time(seconds: float) -> str:
    """Lightning's ``max_time`` string DD:HH:MM:SS (whole seconds; hydra hands a dict over as a DictConfig, which
    the Timer does not take)."""
    s = max(1, int(round(seconds)))
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def to_curve(record: dict, stress: bool) -> tuple[tr.Curve, str | None]:
    """The protocol's Curve from ``ProtocolRecorder``'s record (nequip's raw epoch metrics in eV units) and what
    stopped the training (its ``stopped_by``; None when the program ended before saying)."""
    curve = tr.Curve(metric="mae")
    for row in record.get("epochs", []):
        m = row.get("metrics", {})
        sides = {}
        for side, loss_key, prefix in (("valid", "val0_epoch/weighted_sum", "val0_epoch/"),
                                       ("train", "train_loss_epoch/weighted_sum", "train_metric_epoch/")):
            values = {}
            if loss_key in m:
                values["loss"] = _value(m[loss_key])
            for name, (key, scale) in CURVE_KEYS.items():
                if name == "stress" and not stress:
                    continue
                if prefix + key in m:
                    v = _value(m[prefix + key])
                    values[name] = v * scale if math.isfinite(v) else v
            sides[side] = values
        if "loss" not in sides["valid"]:  # an epoch whose validation never ran (interrupted)
            continue
        curve.add(row["epoch"], row["wall_s"], valid=sides["valid"], train=sides["train"], lr=row.get("lr"))
    return curve, record.get("stopped_by")


def _value(v) -> float:
    return float("nan") if v is None else float(v)


class AllegroModel(NequipModel):
    """Allegro (same training protocol as NequIP, as in MS25); params: see ALLEGRO."""

    name = "allegro"
    potential_class = AllegroPotential
    defaults = ALLEGRO
    package = "nequip-allegro"

    def model_config(self, p: dict) -> dict:
        return {
            "_target_": "allegro.model.AllegroModel", "l_max": p["l_max"], "parity": p["parity"],
            "num_layers": p["num_layers"], "num_scalar_features": p["num_scalar_features"],
            "num_tensor_features": p["num_tensor_features"], "allegro_mlp_hidden_layers_width": p["mlp_width"],
            "readout_mlp_hidden_layers_width": p["mlp_width"] // 2,
            "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed",
                                      "num_bessels": p["num_bessels"],
                                      "polynomial_cutoff_p": p["polynomial_cutoff_p"]},
        }


NequipModel.param_keys = tuple(NEQUIP)
AllegroModel.param_keys = tuple(ALLEGRO)
NequipModel.cutoff_params = {"r_cut": NEQUIP["r_cut"]}
AllegroModel.cutoff_params = {"r_cut": ALLEGRO["r_cut"]}
