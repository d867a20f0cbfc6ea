"""MACE 0.3.16 (mace-torch, e3nn 0.4.4) through its own training CLI, in the ``mace`` environment.

Training follows MS25's two-phase recipe ("MACE Training Procedure"): phase 1 with energy/forces weights 1/20
(stress weight a param), lr 0.01 and a plateau scheduler (patience 50, factor 0.8); phase 2 (MACE's stage two,
formerly ``--swa``) for the last 20 % of the epochs (MS25: stage 1 : stage 2 = 0.8 : 0.2) with a large energy
weight (MS25 Table 4: 10000 for most systems), forces 1, stress 10, the "universal" loss with Huber delta 0.01,
and MACE's default stage-two learning rate 1e-3 (MS25 does not state one).
Defaults follow MS25 Table 4 where one value fits all systems; the epoch count is a param (MS25: up to 500+).
Deviation: the data set's validation frames are a seeded 10 % hold-out of our training frames (the engine gives
none), and MACE's ``E0s="average"`` (least-squares atomic energies from the training set) is used since our
labelers have no isolated-atom energies. That is also the energy reference for several species and for
molecules (e.g. all-electron totals of -626 eV/atom); MACE's z table comes from the data. Molecules (pbc F) are
written without cell or stress: no stress in the loss ("universal" falls back to "weighted"), zero stress
predicted.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlffbench.models.adapters import common
from mlffbench.models.base import Model

DEFAULTS = {
    "r_max": 5.0, "max_L": 1, "num_channels": 64, "correlation": 3, "max_ell": 3, "num_interactions": 2,
    "num_radial_basis": 8, "batch_size": 2, "epochs": 100, "stage_two_fraction": 0.2, "lr": 0.01,
    "energy_weight": 1.0, "forces_weight": 20.0, "stress_weight": 10.0,
    "stage_two_lr": 1e-3, "stage_two_energy_weight": 10000.0, "stage_two_forces_weight": 1.0,
    "stage_two_stress_weight": 10.0,
    "loss": "universal", "huber_delta": 0.01, "scheduler_patience": 50, "lr_factor": 0.8,
    "valid_fraction": 0.1, "seed": 0, "dtype": "float64",
}


class MacePotential(common.CalculatorPotential):
    family = "mace"

    def make_calculator(self):
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=self.model_file, device="cpu",
                              default_dtype=self.info.get("dtype", "float64"))


class MaceModel(Model):
    """MACE; params: see DEFAULTS (MACE CLI names; ``epochs`` is the total of both phases)."""

    name = "mace"
    cutoff_params = {"r_max": DEFAULTS["r_max"]}
    env = "mace"
    potential_class = MacePotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_positive(cls.name, params, ("r_max", "lr", "stage_two_lr", "huber_delta", "lr_factor"))
        common.check_positive(cls.name, params, ("num_channels", "correlation", "max_ell", "num_interactions",
                                                 "num_radial_basis", "batch_size", "epochs",
                                                 "scheduler_patience"), integer=True)
        common.check_nonnegative(cls.name, params, ("energy_weight", "forces_weight", "stress_weight",
                                                    "stage_two_energy_weight", "stage_two_forces_weight",
                                                    "stage_two_stress_weight"))
        common.check_choice(cls.name, params, "max_L", (0, 1, 2, 3))
        common.check_choice(cls.name, params, "loss", ("universal", "weighted", "stress", "huber"))
        common.check_choice(cls.name, params, "dtype", ("float32", "float64"))
        frac = params.get("stage_two_fraction", 0.2)
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise common.ConfigError(f"mace: params.stage_two_fraction must be in [0, 1) (got {frac!r})")
        vf = params.get("valid_fraction", 0.1)
        if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 < vf < 1:
            raise common.ConfigError(f"mace: params.valid_fraction must be in (0, 1) (got {vf!r})")

    def fit(self, train, valid, params, workdir) -> MacePotential:
        self.check_params(params)
        p = {**DEFAULTS, **params}
        workdir = Path(workdir) / "mace"
        workdir.mkdir(parents=True, exist_ok=True)
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        stress = common.all_have_stress(train) and common.all_have_stress(valid)
        common.write_training_xyz(train, workdir / "train.xyz", stress)
        common.write_training_xyz(valid, workdir / "valid.xyz", stress)
        epochs = int(p["epochs"])
        start_two = int(round(epochs * (1 - p["stage_two_fraction"])))
        loss = p["loss"] if stress or p["loss"] in ("weighted", "huber") else "weighted"
        args = [
            sys.executable, "-m", "mace.cli.run_train", "--name", "mace", "--seed", str(p["seed"]),
            "--train_file", str(workdir / "train.xyz"), "--valid_file", str(workdir / "valid.xyz"),
            "--energy_key", common.ENERGY_KEY, "--forces_key", common.FORCES_KEY,
            "--model", "MACE", "--r_max", str(p["r_max"]), "--max_L", str(p["max_L"]),
            "--num_channels", str(p["num_channels"]), "--correlation", str(p["correlation"]),
            "--max_ell", str(p["max_ell"]), "--num_interactions", str(p["num_interactions"]),
            "--num_radial_basis", str(p["num_radial_basis"]), "--E0s", "average",
            "--loss", loss, "--huber_delta", str(p["huber_delta"]),
            "--energy_weight", str(p["energy_weight"]), "--forces_weight", str(p["forces_weight"]),
            "--lr", str(p["lr"]), "--scheduler", "ReduceLROnPlateau",
            "--scheduler_patience", str(p["scheduler_patience"]), "--lr_factor", str(p["lr_factor"]),
            "--batch_size", str(p["batch_size"]), "--valid_batch_size", str(p["batch_size"]),
            "--max_num_epochs", str(epochs), "--patience", str(10 * epochs + 10), "--eval_interval", "1",
            "--device", "cpu", "--default_dtype", p["dtype"], "--error_table", "PerAtomMAE",
            "--model_dir", str(workdir), "--log_dir", str(workdir / "logs"),
            "--checkpoints_dir", str(workdir / "checkpoints"), "--results_dir", str(workdir / "results"),
        ]
        if stress:
            args += ["--stress_key", common.STRESS_KEY, "--stress_weight", str(p["stress_weight"])]
        else:
            args += ["--stress_weight", "0"]
        two_phase = 0 < start_two < epochs
        if two_phase:
            args += ["--stage_two", "--start_stage_two", str(start_two),
                     "--stage_two_lr", str(p["stage_two_lr"]),
                     "--stage_two_energy_weight", str(p["stage_two_energy_weight"]),
                     "--stage_two_forces_weight", str(p["stage_two_forces_weight"])]
            if stress:
                args += ["--stage_two_stress_weight", str(p["stage_two_stress_weight"])]
        returncode, train_s = common.run_logged(args, workdir / "train.log", workdir)
        if returncode:
            raise common.program_failed("mace_run_train", returncode, workdir / "train.log")
        model_file = next((workdir / name for name in ("mace_stagetwo.model", "mace_swa.model", "mace.model")
                           if (workdir / name).is_file() and (name == "mace.model" or two_phase)), None)
        if model_file is None:
            raise common.AdapterError(f"mace_run_train wrote no model in {workdir} (log {workdir / 'train.log'})")
        per_epoch = _epoch_seconds((workdir / "train.log").read_text(), epochs)
        import torch

        n_params = common.count_parameters(torch.load(model_file, map_location="cpu", weights_only=False))
        info = {
            "package": "mace-torch", "version": common.package_version("mace-torch"),
            "e3nn": common.package_version("e3nn"), "device": "cpu", "dtype": p["dtype"],
            "n_parameters": n_params, "epochs": epochs, "stage_two_start": start_two if two_phase else None,
            "train_s": train_s, "train_s_per_epoch": per_epoch or train_s / epochs, "n_train": len(train),
            "n_valid": len(valid), "stress_trained": stress, "loss": loss, "model_file_name": model_file.name,
            "deviations": ["validation = seeded hold-out of the training frames",
                           "E0s = average (least squares on the training set), no isolated-atom energies",
                           "train_s_per_epoch = (training complete - training started) / epochs from MACE's "
                           "log timestamps, validation of each epoch included"],
        }
        return MacePotential(str(model_file), info)


def _epoch_seconds(log: str, epochs: int) -> float | None:
    """Mean epoch wall time from the timestamps of MACE's 'Started training' and 'Training complete' lines."""
    from datetime import datetime

    stamps = {}
    for line in log.splitlines():
        for key in ("Started training", "Training complete"):
            if key in line and key not in stamps:
                try:
                    stamps[key] = datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S.%f")
                except ValueError:
                    pass
    if len(stamps) < 2:
        return None
    return (stamps["Training complete"] - stamps["Started training"]).total_seconds() / epochs
