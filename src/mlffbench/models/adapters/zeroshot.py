"""Zero-shot foundation models (CHGNet 0.4.2, SevenNet-0, any ASE calculator by import path) with the Metal-43
per-element constant energy shift.

Metal-43 (SI, "Unlike the smaller models ..."): pretrained models are used as released; because their DFT settings
differ from the benchmark's, "for each element, the shift was defined as the average difference between the
model-predicted energies and the reference DFT energies for the corresponding test system". Deviation: we fit the
shift on the *training* frames of the split (the "fit" of a zero-shot model), never on the test frames, so no
test label leaks into a prediction. The shift is a least-squares per-element constant on the composition
(E_pred - E_ref ≈ Σ_el n_el δ_el); for one element it is the mean per-atom difference. Forces and stresses are
unaffected. ``shift: false`` gives the unshifted model; configs list both (``label``s) to report both errors, and
``Potential.info`` records the shift and the training-set energy MAE with and without it.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model, Potential

SHIFT_NOTE = ("Metal-43 per-element energy shift fitted on the training frames (paper: on the test system); "
              "forces and stresses unshifted")


def make_calculator(spec: dict[str, Any]):
    """An ASE calculator from {"calculator": "module:Name", "kwargs": {...}}; Name may be a class or factory."""
    module, _, attr = spec["calculator"].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**spec.get("kwargs", {}))


#: The 89 elements of MPtrj (Materials Project relaxation trajectories: H..Pu without Po, At, Rn, Fr, Ra), the
#: training set of both pretrained models offered here. Hard-coded because reading them needs torch (planning
#: runs in the main venv without it). Sources, checked in their environments:
#: * CHGNet 0.3.0 (chgnet 0.4.2, the weights CHGNetCalculator loads by default): the atom embedding takes Z = 1..94
#:   but the model saw only MPtrj's 89 elements (its MPtrj AtomRef of Po..Ra is ~0, fitted on nothing);
#: * SevenNet-0 (sevenn 0.13.0): ``config["chemical_species"]`` of every shipped checkpoint (SevenNet_0__11Jul2024
#:   = 7net-0, SevenNet_0__22May2024, SevenNet_l3i5, SevenNet_MF_0) is exactly this set of 89.
MPTRJ_ELEMENTS = frozenset(chemical_symbols[1:95]) - {"Po", "At", "Rn", "Fr", "Ra"}
#: SevenNet model names (sevenn 0.13.0 ``pretrained_name_to_path``, lower-cased) whose checkpoint ships in the
#: wheel; any other name (downloaded models) is not checked at planning
SEVENNET_SHIPPED = frozenset(f"{head}-{tail}" for head in ("7net", "sevennet")
                             for tail in ("0", "0_11july2024", "0_11jul2024", "0_22may2024", "l3i5", "mf-0"))

#: named presets: weights inside the wheels, so they work offline
PRESETS = {
    "chgnet": {"calculator": "chgnet.model.dynamics:CHGNetCalculator",
               "kwargs": {"use_device": "cpu"}, "package": "chgnet"},
    "sevennet": {"calculator": "sevenn.calculator:SevenNetCalculator",
                 "kwargs": {"model": "7net-0", "device": "cpu"}, "package": "sevenn"},
    # a user-supplied NEP potential file (params.path) through calorine's CPU implementation
    "nep_model": {"calculator": "calorine.calculators:CPUNEP", "kwargs": {}, "package": "calorine"},
}


def fit_shift(frames: Sequence[Atoms], predicted: Sequence[float]) -> dict[str, float]:
    """Per-element δ (eV/atom) minimising Σ_frames (E_pred - E_ref - Σ_el n_el δ_el)²."""
    elements = sorted({s for f in frames for s in f.get_chemical_symbols()})
    diff = np.array(predicted) - np.array([fr.label(f, "energy") for f in frames])
    return fr.per_element_energy(frames, elements, diff)


class ZeroShotPotential(Potential):
    family = "ase_calculator"

    def __init__(self, spec: dict[str, Any], shift: dict[str, float], info: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.spec = dict(spec)
        self.shift = dict(shift)
        self.info = dict(info or {})
        self._calc = None

    def raw(self, atoms: Atoms):
        if self._calc is None:
            self._calc = make_calculator(self.spec)
        # a molecule goes in a fresh box with 20 Å of vacuum: CHGNet (pymatgen) needs a cell and treats every cell
        # as periodic; calculators that honour pbc=False ignore the box
        work = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work = common.boxed(work)
        work.calc = self._calc
        stress = work.get_stress(voigt=True) if atoms.pbc.all() else np.zeros(6)
        return float(work.get_potential_energy()), np.array(work.get_forces()), np.array(stress)

    def evaluate(self, atoms: Atoms):
        energy, forces, stress = self.raw(atoms)
        missing = sorted(set(atoms.get_chemical_symbols()) - set(self.shift)) if self.shift else []
        if missing:
            raise common.AdapterError(f"no energy shift for {missing}: not in the training frames")
        energy -= sum(self.shift.get(s, 0.0) for s in atoms.get_chemical_symbols())
        return energy, forces, stress

    def state(self) -> dict:
        return {"spec": self.spec, "shift": self.shift, "info": self.info}

    @classmethod
    def from_state(cls, state: dict):
        return cls(state["spec"], state["shift"], state.get("info"))


class AseCalculatorModel(Model):
    """Any ASE calculator. Params: ``calculator`` ("module:ClassOrFactory"), ``kwargs`` (dict), ``shift`` (bool,
    default true), ``elements`` (optional list of the symbols the calculator covers: a data set with others is
    refused at planning; without it nothing is refused). Runs where the model's ``python:`` points (no declared
    env: the calculator decides). Non-periodic frames are evaluated in a box with 20 Å of vacuum (pbc kept
    False), their stress is reported as zero."""

    name = "ase_calculator"
    env: str | None = None
    potential_class = ZeroShotPotential
    param_keys: tuple[str, ...] | None = ("calculator", "kwargs", "shift", "elements")
    preset: str | None = None

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        if cls.preset is None:
            calc = params.get("calculator")
            if not isinstance(calc, str) or ":" not in calc:
                raise ConfigError(f"{cls.name}: params.calculator must be 'module:ClassOrFactory' (got {calc!r})")
            elements = params.get("elements")
            if elements is not None and (not isinstance(elements, list) or not elements
                                         or any(el not in chemical_symbols[1:] for el in elements)):
                raise ConfigError(f"{cls.name}: params.elements must be a list of element symbols the calculator "
                                  f"covers (got {elements!r})")
        if not isinstance(params.get("kwargs", {}), dict):
            raise ConfigError(f"{cls.name}: params.kwargs must be a mapping")
        if not isinstance(params.get("shift", True), bool):
            raise ConfigError(f"{cls.name}: params.shift must be true or false")

    @classmethod
    def coverage(cls, params) -> tuple[frozenset[str] | None, str]:
        """(elements the model covers, what the model is); None: unknown, nothing is refused. Any ASE
        calculator: ``params.elements`` when given."""
        elements = params.get("elements")
        return (frozenset(elements) if elements else None), f"calculator {params.get('calculator')} (params.elements)"

    @classmethod
    def refuse(cls, data, params):
        covered, what = cls.coverage(params)
        missing = [el for el in data.elements if covered is not None and el not in covered]
        if missing:
            return f"{what} does not cover {', '.join(missing)}"
        if cls.labelled_by_itself(getattr(data, "reference", None), params):
            return (f"circular: {what} made this data set's labels (universal-potential labeler), so its "
                    "zero-shot error would be zero by construction")
        return None

    @classmethod
    def labelled_by_itself(cls, reference: dict | None, params) -> bool:
        """Whether ``reference`` (a labeler spec) is this very pretrained model (same family and checkpoint)."""
        from mlffbench.data.labelers.universal import FAMILIES, UniversalLabeler, is_universal

        if not is_universal(reference) or cls.preset is None or FAMILIES.get(reference.get("model", "sevennet")) \
                != cls.name:
            return False
        labeler = UniversalLabeler(**{k: v for k, v in reference.items() if k != "name"})
        return labeler.potential_spec()["kwargs"].get("model") == cls().spec(params)["kwargs"].get("model")

    def spec(self, params) -> dict:
        if self.preset is None:
            return {"calculator": params["calculator"], "kwargs": dict(params.get("kwargs", {}))}
        preset = PRESETS[self.preset]
        return {"calculator": preset["calculator"], "kwargs": {**preset["kwargs"], **params.get("kwargs", {})}}

    def fit(self, train, valid, params, workdir) -> ZeroShotPotential:
        self.check_params(params)
        spec = self.spec(params)
        unshifted = self.potential_class(spec, {})
        watch = common.Stopwatch()
        predicted = [unshifted.raw(f)[0] for f in train]
        seconds = watch.seconds()
        shift = fit_shift(train, predicted)
        ref = np.array([fr.label(f, "energy") for f in train])
        n_atoms = np.array([len(f) for f in train])
        correction = np.array([sum(shift[s] for s in f.get_chemical_symbols()) for f in train])
        pkg = PRESETS[self.preset]["package"] if self.preset else spec["calculator"].split(".")[0].split(":")[0]
        calc = unshifted._calc
        model = getattr(calc, "model", None)
        if model is None and getattr(calc, "models", None):
            model = calc.models[0]
        info = {
            "package": pkg, "version": common.package_version(pkg), "device": "cpu",
            "calculator": spec["calculator"], "n_parameters": _n_parameters(model),
            "energy_shift_eV_per_atom": shift, "shift_applied": bool(params.get("shift", True)),
            "shift_fitted_on": f"{len(train)} training frames",
            "train_energy_mae_unshifted_meV_per_atom": float(1e3 * np.mean(np.abs(np.array(predicted) - ref)
                                                                          / n_atoms)),
            "train_energy_mae_shifted_meV_per_atom": float(1e3 * np.mean(np.abs(np.array(predicted) - correction
                                                                                - ref) / n_atoms)),
            "train_s": 0.0, "train_s_per_epoch": None, "shift_fit_s": seconds,
            "deviations": [SHIFT_NOTE],
        }
        return self.potential_class(spec, shift if params.get("shift", True) else {}, info)


def _n_parameters(model) -> int | None:
    try:
        return common.count_parameters(model)
    except Exception:  # noqa: BLE001 - not a torch module: unknown
        return None


class ChgnetPotential(ZeroShotPotential):
    family = "chgnet"


class ChgnetModel(AseCalculatorModel):
    """CHGNet 0.4.2 pretrained (weights in the wheel). Params: ``shift``, ``kwargs`` (CHGNetCalculator)."""

    name = "chgnet"
    env = "chgnet"
    preset = "chgnet"
    potential_class = ChgnetPotential
    param_keys = ("kwargs", "shift")

    @classmethod
    def coverage(cls, params):
        return MPTRJ_ELEMENTS, "pretrained CHGNet 0.3.0 (trained on MPtrj's 89 elements)"


class SevennetPotential(ZeroShotPotential):
    family = "sevennet"


class SevennetModel(AseCalculatorModel):
    """SevenNet-0 (sevenn 0.13.0; weights in the wheel). Params: ``shift``, ``kwargs`` (SevenNetCalculator)."""

    name = "sevennet"
    env = "sevenn"
    preset = "sevennet"
    potential_class = SevennetPotential
    param_keys = ("kwargs", "shift")

    @classmethod
    def coverage(cls, params):
        model = str(params.get("kwargs", {}).get("model", PRESETS["sevennet"]["kwargs"]["model"]))
        if model.lower() not in SEVENNET_SHIPPED:
            return None, f"SevenNet model {model}"
        return MPTRJ_ELEMENTS, f"pretrained SevenNet {model} (trained on MPtrj's 89 elements)"


class NepZeroShotPotential(ZeroShotPotential):
    family = "nep_model"


class NepZeroShotModel(AseCalculatorModel):
    """A trained NEP potential file (``path``: GPUMD's nep.txt) evaluated by calorine 4.1's ``CPUNEP``, with the
    Metal-43 shift like the foundation models (``shift: false`` for the raw model). Nothing is trained here."""

    name = "nep_model"
    env = "calorine"
    preset = "nep_model"
    potential_class = NepZeroShotPotential
    param_keys = ("path", "shift")

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        if not isinstance(params.get("path"), str) or not params["path"]:
            raise ConfigError(f"{cls.name}: params.path must name a NEP potential file (nep.txt)")

    @classmethod
    def coverage(cls, params):
        """The element types named on the first line of the NEP file (``nep4 2 Cu Au``, GPUMD's nep.txt header);
        None when the file cannot be read (the job then fails naming the path)."""
        path = params.get("path")
        try:
            with open(path) as handle:
                header = handle.readline().split()
            n_types = int(header[1])
            types = header[2:2 + n_types]
        except (OSError, TypeError, ValueError, IndexError):
            return None, f"NEP file {path}"
        if len(types) != n_types:
            return None, f"NEP file {path}"
        return frozenset(types), f"NEP file {path} (types {' '.join(types)})"

    def spec(self, params) -> dict:
        import os

        return {"calculator": PRESETS["nep_model"]["calculator"],
                "kwargs": {"model_filename": os.path.abspath(params["path"])}}

    def fit(self, train, valid, params, workdir) -> ZeroShotPotential:
        import os

        self.check_params(params)
        path = os.path.abspath(params["path"])
        if not os.path.isfile(path):
            raise common.AdapterError(f"nep_model: params.path {path} is not a file")
        potential = super().fit(train, valid, params, workdir)
        from calorine.nep import read_model

        model = read_model(path)
        potential.info.update(n_parameters=_nep_parameter_count(model), nep_file=path,
                              nep_version=getattr(model, "version", None), nep_types=list(model.types))
        return potential


def _nep_parameter_count(model) -> int | None:
    n = getattr(model, "n_parameters", None)
    return int(n) if n is not None else None
