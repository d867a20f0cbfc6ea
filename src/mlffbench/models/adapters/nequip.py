"""NequIP 0.19.1 and Allegro 0.8.3 (e3nn 0.6.x) through ``nequip-train`` (hydra config), in the ``nequip`` env.

Training follows TM23 Methods IV.C.2: 10 % of the training frames are withheld (randomly, seeded) to monitor
training; loss = per-atom energy MSE + force MSE + stress MSE, all coefficients 1; the learning rate is reduced
by 80 % (factor 0.2) when the validation force MAE has not improved for 100 epochs, and training ends when the
learning rate falls below 1e-5 (or at ``max_epochs``; TM23 capped wall time at 3 weeks instead). Model defaults
follow TM23 SI S6: 4 layers, 8 radial Bessel functions, batch size 1, r_cut and learning rate from the TM23 grid
(r_cut 4-6 Å, lr 0.001-0.01); features are given per rotation order as in Table S18, e.g. ``num_features:
[32, 16, 8]`` = 32x(0e+0o) + 16x(1e+1o) + 8x(2e+2o) with ``l_max: 2`` (``parity: true``).
The model is evaluated from its best checkpoint through ``NequIPCalculator._from_saved_model`` (eager mode):
TorchScript compilation is refused on torch >= 2.10 and AOT-inductor compilation costs 40-75 s per model.
Deviations: exponential-moving-average weights (nequip's recommended ``EMALightningModule``) are used for
evaluation; TM23 (nequip 0.5) does not state it. ``model_dtype`` defaults to float64 (CPU).
Energy reference: ``per_type_energy_shifts`` is one constant per element, by least squares of the training
energies on the composition (``common.energy_reference``; nequip's ``per_atom_energy_mean`` would give every type
the same value, leaving the composition dependence of alloys and mixed molecules to the network); for one element
it is the per-atom mean as before (up to weighting by cell size). ``type_names`` are the sorted symbols of the
training and validation frames. Molecules (pbc F) train without stress and predict zero stress.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

COMMON = {
    "r_cut": 5.0, "lr": 0.01, "batch_size": 1, "max_epochs": 100, "energy_weight": 1.0, "forces_weight": 1.0,
    "stress_weight": 1.0, "lr_factor": 0.2, "lr_patience": 100, "min_lr": 1e-5, "num_bessels": 8,
    "polynomial_cutoff_p": 6, "ema_decay": 0.999, "valid_fraction": 0.1, "seed": 0, "model_dtype": "float64",
}
NEQUIP = {**COMMON, "num_layers": 4, "l_max": 2, "parity": True, "num_features": [32, 16, 8],
          "radial_mlp_depth": 2, "radial_mlp_width": 64}
ALLEGRO = {**COMMON, "num_layers": 2, "l_max": 2, "parity": True, "num_scalar_features": 64,
           "num_tensor_features": 16, "mlp_width": 64}

#: the metric TM23 monitors (validation force MAE)
MONITOR = "val0_epoch/forces_mae"


class NequipPotential(common.CalculatorPotential):
    family = "nequip"

    def make_calculator(self):
        from nequip.ase import NequIPCalculator

        return NequIPCalculator._from_saved_model(self.model_file, device="cpu")


class AllegroPotential(NequipPotential):
    family = "allegro"


class NequipModel(Model):
    """NequIP; params: see NEQUIP (``num_features`` an int or one multiplicity per l = 0..l_max)."""

    name = "nequip"
    env = "nequip"
    potential_class = NequipPotential
    defaults = NEQUIP
    package = "nequip"

    @classmethod
    def check_params(cls, params):
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            raise ConfigError(f"{cls.name}: unknown param(s) {unknown} (known: {list(cls.defaults)})")
        common.check_positive(cls.name, params, ("r_cut", "lr", "min_lr", "lr_factor"))
        common.check_positive(cls.name, params, ("batch_size", "max_epochs", "lr_patience", "num_layers",
                                                 "num_bessels", "polynomial_cutoff_p", "radial_mlp_depth",
                                                 "radial_mlp_width", "num_scalar_features",
                                                 "num_tensor_features", "mlp_width"), integer=True)
        common.check_nonnegative(cls.name, params, ("energy_weight", "forces_weight", "stress_weight", "ema_decay"))
        common.check_choice(cls.name, params, "l_max", range(0, 7))
        common.check_choice(cls.name, params, "model_dtype", ("float32", "float64"))
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

    def fit(self, train, valid, params, workdir):
        self.check_params(params)
        p = {**self.defaults, **params}
        workdir = Path(workdir) / self.name
        out = workdir / "out"
        out.mkdir(parents=True, exist_ok=True)
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        stress = common.all_have_stress(train) and common.all_have_stress(valid)
        common.write_training_xyz(train, workdir / "train.xyz", stress)
        common.write_training_xyz(valid, workdir / "valid.xyz", stress)
        symbols = common.species(train + valid)  # a type for every species the validation frames hold too
        shifts = common.energy_reference(train, symbols)
        config = self.config(p, symbols, workdir, out, stress, shifts)
        import yaml

        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        args = [sys.executable, "-m", "nequip.scripts.train", "-cp", str(workdir), "-cn", "config",
                f"hydra.run.dir={out}"]
        returncode, train_s = common.run_logged(args, workdir / "train.log", workdir)
        best = out / "best.ckpt"
        if returncode or not best.is_file():
            raise common.program_failed("nequip-train", returncode, workdir / "train.log")
        import torch

        last = torch.load(out / "last.ckpt", map_location="cpu", weights_only=False)
        epochs = int(last.get("epoch", 0)) + 1
        timer = out / "epoch_seconds.json"
        epoch_s = json.loads(timer.read_text()) if timer.is_file() else []
        potential = self.potential_class(str(best))
        n_params = common.count_parameters(potential.calculator.model)  # the model as the calculator loads it
        info = {
            "package": self.package, "version": common.package_version(self.package),
            "nequip": common.package_version("nequip"), "e3nn": common.package_version("e3nn"),
            "device": "cpu", "model_dtype": p["model_dtype"], "n_parameters": n_params, "epochs": epochs,
            "train_s": train_s, "train_s_per_epoch": float(np.mean(epoch_s)) if epoch_s else train_s / epochs,
            "n_train": len(train),
            "n_valid": len(valid), "stress_trained": stress, "checkpoint": "best.ckpt (min validation force MAE)",
            "type_names": symbols, "per_type_energy_shifts": shifts,
            "deviations": ["EMA weights evaluated (nequip EMALightningModule)" if p["ema_decay"] else
                           "no EMA", "train_s_per_epoch = mean epoch wall time incl. the epoch's validation",
                           "evaluated eager from the checkpoint (no TorchScript/AOTI compile)"],
        }
        potential.info = info
        return potential

    def config(self, p: dict, symbols: list[str], workdir: Path, out: Path, stress: bool,
               shifts: dict[str, float]) -> dict:
        metric_keys = {"per_atom_energy_mae": 1.0, "forces_mae": 1.0}
        loss = {"_target_": "nequip.train.EnergyForceLoss", "per_atom_energy": True,
                "coeffs": {"total_energy": p["energy_weight"], "forces": p["forces_weight"]}}
        metrics = {"_target_": "nequip.train.EnergyForceMetrics", "coeffs": dict(metric_keys)}
        key_mapping = {common.ENERGY_KEY: "total_energy", common.FORCES_KEY: "forces"}
        if stress:
            loss["_target_"] = "nequip.train.EnergyForceStressLoss"
            loss["coeffs"]["stress"] = p["stress_weight"]
            metrics = {"_target_": "nequip.train.EnergyForceStressMetrics",
                       "coeffs": {**metric_keys, "stress_mae": 1.0}}
            key_mapping[common.STRESS_KEY] = "stress"
        module = {"_target_": "nequip.train.EMALightningModule", "ema_decay": p["ema_decay"]} if p["ema_decay"] \
            else {"_target_": "nequip.train.NequIPLightningModule"}
        model = {
            **self.model_config(p), "seed": p["seed"], "model_dtype": p["model_dtype"], "type_names": symbols,
            "r_max": p["r_cut"],
            "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
            "per_type_energy_scales": "${training_data_stats:per_type_forces_rms}",
            # per-element least squares on our training frames: nequip's per_atom_energy_mean is one number for
            # every type, which leaves the composition dependence (alloys, mixed molecules) to the network
            "per_type_energy_shifts": {el: float(shifts[el]) for el in symbols},
            "per_type_energy_scales_trainable": False, "per_type_energy_shifts_trainable": False,
        }
        loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": p["batch_size"], "num_workers": 0}
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
                "_target_": "lightning.Trainer", "accelerator": "cpu", "devices": 1, "max_epochs": p["max_epochs"],
                "check_val_every_n_epoch": 1, "log_every_n_steps": 1, "logger": False,
                "enable_progress_bar": False, "num_sanity_val_steps": 0, "deterministic": False,
                "callbacks": [
                    {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "monitor": MONITOR,
                     "dirpath": str(out), "filename": "best", "save_last": True},
                    {"_target_": "mlffbench.models.adapters.nequip_callbacks.StopBelowLearningRate",
                     "min_lr": p["min_lr"]},
                    {"_target_": "mlffbench.models.adapters.nequip_callbacks.EpochTimer",
                     "path": str(out / "epoch_seconds.json")},
                ],
            },
            "training_module": {
                **module, "loss": loss, "val_metrics": metrics, "train_metrics": metrics,
                "optimizer": {"_target_": "torch.optim.Adam", "lr": p["lr"]},
                "lr_scheduler": {
                    "scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                                  "factor": p["lr_factor"], "patience": p["lr_patience"]},
                    "monitor": MONITOR, "interval": "epoch", "frequency": 1,
                },
                "model": model,
            },
            "global_options": {"allow_tf32": False},
        }


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
