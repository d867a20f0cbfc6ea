"""DeePMD-kit 3.2.0, PyTorch backend (built from source against torch 2.13: the PyPI wheel's backend is built for
torch 2.11 and fails), in the ``deepmd`` environment: ``dp --pt train`` then ``dp --pt freeze``; predicts with
``deepmd.calculator.DP`` on the frozen model.

Hyperparameters are Metal-43 Supplementary Table 2 (se_e2_a): sel 100, r_cut 6.0 Å, r_cut_smth 0.5 Å, embedding
net 25-50-100, fitting net 200-200-200, tanh, float64, Adam with exponential decay from lr 0.01 to 1e-7,
energy/force prefactors 100 -> 10, 50 epochs. Metal-43 lists no virial prefactor: ``start_pref_v`` and
``limit_pref_v`` default to 0 (stress is then predicted but not trained). An epoch is converted to
ceil(n_train / batch_size) steps. Validation: the engine gives none, so a seeded 10 % of the training frames.
Several species: ``type_map`` = the sorted symbols, data in DeePMD's mixed-type format (per-frame atom types,
one system per atom count); the per-type energy reference is DeePMD's own output bias (least squares of the
training energies on the composition). Molecules: systems marked ``nopbc`` (no cell in the model or the
calculator), no virial; their stress is predicted as zeros.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

DEFAULTS = {
    "rcut": 6.0, "rcut_smth": 0.5, "sel": 100, "embedding": [25, 50, 100], "fitting": [200, 200, 200],
    "axis_neuron": 16, "epochs": 50, "batch_size": 1, "start_lr": 0.01, "stop_lr": 1e-7,
    "start_pref_e": 100.0, "limit_pref_e": 10.0, "start_pref_f": 100.0, "limit_pref_f": 10.0,
    "start_pref_v": 0.0, "limit_pref_v": 0.0, "valid_fraction": 0.1, "seed": 0,
}


class DeepmdPotential(common.CalculatorPotential):
    family = "deepmd"

    def make_calculator(self):
        from deepmd.calculator import DP

        return DP(model=self.model_file)


class DeepmdModel(Model):
    """DeePMD se_e2_a (PyTorch backend); params: see DEFAULTS."""

    name = "deepmd"
    cutoff_params = {"rcut": DEFAULTS["rcut"]}
    env = "deepmd"
    potential_class = DeepmdPotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_positive(cls.name, params, ("rcut", "rcut_smth", "start_lr", "stop_lr"))
        common.check_positive(cls.name, params, ("sel", "axis_neuron", "epochs", "batch_size"), integer=True)
        common.check_nonnegative(cls.name, params, ("start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f",
                                                    "start_pref_v", "limit_pref_v"))
        for key in ("embedding", "fitting"):
            layers = params.get(key, DEFAULTS[key])
            if not (isinstance(layers, list) and layers and all(isinstance(n, int) and n > 0 for n in layers)):
                raise ConfigError(f"deepmd: params.{key} must be a list of positive layer widths (got {layers!r})")

    def fit(self, train, valid, params, workdir) -> DeepmdPotential:
        self.check_params(params)
        p = {**DEFAULTS, **params}
        workdir = Path(workdir) / "deepmd"
        workdir.mkdir(parents=True, exist_ok=True)
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        type_map = common.species(list(train) + list(valid))
        train_systems = write_systems(train, workdir / "data" / "train", type_map)
        valid_systems = write_systems(valid, workdir / "data" / "valid", type_map)
        steps = p["epochs"] * math.ceil(len(train) / p["batch_size"])
        seed = p["seed"] + 1
        config = {
            "model": {
                "type_map": type_map,
                "descriptor": {"type": "se_e2_a", "sel": [p["sel"]] * len(type_map), "rcut": p["rcut"],
                               "rcut_smth": p["rcut_smth"], "neuron": p["embedding"], "axis_neuron": p["axis_neuron"],
                               "activation_function": "tanh", "resnet_dt": False, "seed": seed,
                               "precision": "float64"},
                "fitting_net": {"neuron": p["fitting"], "activation_function": "tanh", "resnet_dt": True,
                                "seed": seed, "precision": "float64"},
            },
            "learning_rate": {"type": "exp", "start_lr": p["start_lr"], "stop_lr": p["stop_lr"],
                              "decay_steps": max(1, steps // 100)},
            "loss": {"type": "ener", **{k: p[k] for k in ("start_pref_e", "limit_pref_e", "start_pref_f",
                                                          "limit_pref_f", "start_pref_v", "limit_pref_v")}},
            "training": {
                "training_data": {"systems": train_systems, "batch_size": p["batch_size"]},
                "validation_data": {"systems": valid_systems, "batch_size": 1},
                "numb_steps": steps, "seed": seed, "disp_file": "lcurve.out",
                "disp_freq": max(1, steps // 20), "save_freq": steps,
            },
        }
        (workdir / "input.json").write_text(json.dumps(config, indent=1))
        dp = [sys.executable, "-m", "deepmd", "--pt"]
        log = workdir / "train.log"
        returncode, train_s = common.run_logged(dp + ["train", "input.json"], log, workdir)
        if returncode == 0:
            returncode, _ = common.run_logged(dp + ["freeze", "-o", "frozen.pth"], log, workdir, append=True)
        model_file = workdir / "frozen.pth"
        if returncode or not model_file.is_file():
            raise common.program_failed("dp --pt", returncode, log)
        potential = DeepmdPotential(str(model_file))
        dp_model = getattr(potential.calculator, "dp", None)
        inner = getattr(getattr(dp_model, "deep_eval", None), "dp", None)
        epochs = p["epochs"]
        potential.info = {
            "package": "deepmd-kit", "version": common.package_version("deepmd-kit"), "backend": "pytorch",
            "device": "cpu", "n_parameters": _n_parameters(inner), "epochs": epochs, "steps": steps,
            "train_s": train_s, "train_s_per_epoch": train_s / epochs, "n_train": len(train), "n_valid": len(valid),
            "type_map": type_map, "n_systems": len(train_systems),
            "energy_reference": "DeePMD's output bias: per-type least squares of the training energies on the "
                                "composition (compute_output_stats)",
            "stress_trained": bool(p["start_pref_v"] or p["limit_pref_v"]),
            "deviations": ["validation = seeded hold-out of the training frames",
                           "virial prefactors 0 unless set (Metal-43 lists none)",
                           "train_s_per_epoch = wall time of dp train / epochs"],
        }
        return potential


def _n_parameters(module) -> int | None:
    try:
        return common.count_parameters(module)
    except Exception:  # noqa: BLE001 - a frozen TorchScript module without .parameters(): unknown
        return None


def write_systems(frames, root: Path, type_map: list[str]) -> list[str]:
    """DeePMD npy systems in its mixed-type format, one per (atom count, periodicity): ``type.raw`` (zeros, the
    atom count) and ``type_map.raw``, then per frame in ``set.000``: ``real_atom_types`` (index into ``type_map``),
    coord, box, energy, force and virial (= -V * stress, when every frame of the system has one). One system per
    atom count, not per species sequence: random alloys would otherwise give one-frame systems (a batch of one
    frame, whatever ``batch_size``). Non-periodic frames get DeePMD's ``nopbc`` marker (no box in the model; the
    box written is ``boxed``'s, unused)."""
    groups: dict[tuple, list] = {}
    for frame in frames:
        groups.setdefault((len(frame), bool(frame.pbc.any())), []).append(frame)
    paths = []
    for i, ((natoms, periodic), group) in enumerate(sorted(groups.items())):
        system = root / f"sys{i:03d}"
        sets = system / "set.000"
        sets.mkdir(parents=True, exist_ok=True)
        if not periodic:
            (system / "nopbc").write_text("")
            group = [common.boxed(f) for f in group]
        (system / "type_map.raw").write_text("\n".join(type_map) + "\n")
        (system / "type.raw").write_text("0\n" * natoms)
        np.save(sets / "real_atom_types.npy",
                np.array([[type_map.index(s) for s in f.get_chemical_symbols()] for f in group], dtype=np.int32))
        np.save(sets / "coord.npy", np.array([f.positions.reshape(-1) for f in group]))
        np.save(sets / "box.npy", np.array([np.array(f.cell).reshape(-1) for f in group]))
        np.save(sets / "energy.npy", np.array([fr.label(f, "energy") for f in group]))
        np.save(sets / "force.npy", np.array([np.asarray(fr.label(f, "forces")).reshape(-1) for f in group]))
        if periodic and all(fr.has_label(f, "stress") for f in group):
            from ase.stress import voigt_6_to_full_3x3_stress

            np.save(sets / "virial.npy", np.array([(-f.get_volume() * voigt_6_to_full_3x3_stress(
                fr.label(f, "stress"))).reshape(-1) for f in group]))
        paths.append(str(system))
    return paths
