"""sGDML 1.0.3 (symmetric gradient-domain machine learning, as in the TEA Challenge 2023), in the ``sgdml`` env.

sGDML is a global kernel model of one system: every training frame must have the same atoms in the same order,
and, for a periodic system, the same cell (its descriptor uses minimum-image distances in that one lattice).
``fit`` refuses anything else, naming the first differing frame; a data set whose frames differ in atoms or order
(``DataSummary.uniform`` false) is refused already at planning (``refuse``). Molecules (pbc F) have no lattice in
the sGDML data set. TM23-style data (one fixed cell per element, a vacancy, NVT MD) qualifies. Trained on
energies and forces (eV, eV/Å, Å: sGDML is unit-agnostic; the dataset says e_unit eV, r_unit Ang). sGDML has no
stress: predictions carry NaN stress, so the stress metrics of an sGDML model are NaN (the metrics skip NaN
pairs). Prediction refuses a frame whose atoms or cell differ from the training ones.
The kernel width ``sig`` may be a list: each value is trained and the one with the lowest validation force MAE
kept (sGDML's own model selection). Deviations: no permutational symmetry search (``use_sym`` false by default:
a crystal's symmetries are not molecular permutations); one solve, no epochs (``train_s_per_epoch`` None).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model, Potential

DEFAULTS = {"sig": [10, 20, 40, 80], "lam": 1e-10, "use_E_cstr": False, "use_sym": False, "valid_fraction": 0.1,
            "seed": 0}


def check_same_system(frames, reference=None, what="training") -> None:
    """One atom ordering and one cell for all frames (sGDML models one fixed system); AdapterError otherwise."""
    ref = reference if reference is not None else frames[0]
    for i, f in enumerate(frames):
        if len(f) != len(ref) or not np.array_equal(f.numbers, ref.numbers):
            raise common.AdapterError(f"sgdml: {what} frame {i} has a different species order/count than "
                                      f"the first training frame (sGDML models one fixed system)")
        if not np.array_equal(f.pbc, ref.pbc) or (ref.pbc.any() and not np.allclose(f.cell[:], ref.cell[:],
                                                                                     atol=1e-8)):
            raise common.AdapterError(f"sgdml: {what} frame {i} has a different cell than the first training "
                                      f"frame (sGDML handles one fixed cell)")


def dataset(frames, name: str) -> dict:
    first = frames[0]
    d = {"type": "d", "code_version": _version(), "name": name, "theory": "mlffbench labels",
         "R": np.array([f.positions for f in frames]), "z": np.array(first.numbers),
         "E": np.array([fr.label(f, "energy") for f in frames], dtype=float),
         "F": np.array([fr.label(f, "forces") for f in frames], dtype=float),
         "e_unit": "eV", "r_unit": "Ang"}
    if first.pbc.all():
        d["lattice"] = np.array(first.cell[:])
    from sgdml.utils import io

    d["md5"] = io.dataset_md5(d)
    return {k: np.array(v) for k, v in d.items()}  # sGDML expects what np.load gives (0-d string arrays)


def _version() -> str:
    return common.package_version("sgdml")


class SgdmlPotential(Potential):
    family = "sgdml"

    def __init__(self, model_file: str, info: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.model_file = str(model_file)
        self.info = dict(info or {})
        self._gdml = None
        self._ref = None

    def _load(self):
        if self._gdml is None:
            from ase import Atoms
            from sgdml.predict import GDMLPredict

            model = dict(np.load(self.model_file, allow_pickle=True))
            self._gdml = GDMLPredict(model, max_processes=1)
            lattice = model.get("lattice")
            self._ref = Atoms(numbers=model["z"], cell=lattice if lattice is not None else None,
                              pbc=lattice is not None)
        return self._gdml

    def evaluate(self, atoms):
        gdml = self._load()
        check_same_system([atoms], self._ref, what="predicted")
        energy, forces = gdml.predict(atoms.positions.reshape(1, -1))
        return float(energy[0]), np.asarray(forces, dtype=float).reshape(-1, 3), np.full(6, np.nan)

    def state(self) -> dict:
        return {"model_file": self.model_file, "info": self.info}

    @classmethod
    def from_state(cls, state):
        return cls(state["model_file"], state.get("info"))


class SgdmlModel(Model):
    """sGDML on energies + forces of one fixed system; params: ``sig`` (number or list), ``lam``, ``use_E_cstr``,
    ``use_sym``, ``valid_fraction``, ``seed``."""

    name = "sgdml"
    env = "sgdml"
    potential_class = SgdmlPotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def refuse(cls, data, params):
        if not data.uniform:
            return ("sGDML models one fixed system (same atoms in the same order in every frame); the frames of "
                    "this data set differ")
        return None

    @classmethod
    def check_params(cls, params):
        if any(k.startswith("stress") for k in params):
            raise ConfigError(f"{cls.name}: sGDML has no stress (params {sorted(k for k in params if 'stress' in k)})")
        super().check_params(params)
        sig = params.get("sig", DEFAULTS["sig"])
        sigs = sig if isinstance(sig, list) else [sig]
        if not sigs:
            raise ConfigError(f"{cls.name}: params.sig must be a positive integer or a non-empty list of them")
        for s in sigs:
            common.check_positive(cls.name, {"sig": s}, ("sig",), integer=True)
        common.check_positive(cls.name, params, ("lam", "valid_fraction"))
        for key in ("use_E_cstr", "use_sym"):
            if not isinstance(params.get(key, False), bool):
                raise ConfigError(f"{cls.name}: params.{key} must be true or false")

    def fit(self, train, valid, params, workdir) -> SgdmlPotential:
        self.check_params(params)
        p = {**DEFAULTS, **params}
        sigs = p["sig"] if isinstance(p["sig"], list) else [p["sig"]]
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        check_same_system(train)
        check_same_system(valid, train[0], what="validation")
        from sgdml.predict import GDMLPredict
        from sgdml.train import GDMLTrain

        workdir = Path(workdir) / "sgdml"
        workdir.mkdir(parents=True, exist_ok=True)
        train_set, valid_set = dataset(train, "train"), dataset(valid, "valid")
        trainer = GDMLTrain(max_processes=1)
        watch = common.Stopwatch()
        scores = {}
        best = None
        for sig in sigs:
            task = trainer.create_task(train_set, len(train), valid_set, len(valid), sig=sig, lam=p["lam"],
                                       use_sym=p["use_sym"], use_E=True, use_E_cstr=p["use_E_cstr"])
            model = trainer.train(task)
            gdml = GDMLPredict(model, max_processes=1)
            _, f_pred = gdml.predict(valid_set["R"].reshape(len(valid), -1))
            scores[sig] = float(np.mean(np.abs(f_pred.reshape(valid_set["F"].shape) - valid_set["F"])))
            if best is None or scores[sig] < scores[best[0]]:
                best = (sig, model)
        train_s = watch.seconds()
        model_file = workdir / "model.npz"
        np.savez_compressed(model_file, **best[1])
        info = {
            "package": "sgdml", "version": _version(), "device": "cpu",
            "n_parameters": int(np.asarray(best[1]["alphas_F"]).size + np.asarray(best[1].get("alphas_E", [])).size),
            "train_s": train_s, "train_s_per_epoch": None, "n_train": len(train), "n_valid": len(valid),
            "sig": best[0], "valid_force_mae_eV_per_A_by_sig": {str(k): v for k, v in scores.items()},
            "stress": "not predicted (NaN): sGDML has no stress",
            "deviations": ["no permutational symmetries (use_sym false)", "units eV / Å, not kcal/mol",
                           "no stress: stress metrics NaN"],
        }
        return SgdmlPotential(str(model_file), info)
