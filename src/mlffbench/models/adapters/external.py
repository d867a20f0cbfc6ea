"""Families whose training program is an external binary that is not on PyPI: NEP (GPUMD's ``nep``) and MTP
(mlip-2's ``mlp``).

Planning accepts them (params are validated like any family); ``fit`` looks the program up. Missing, it raises a
one-line AdapterError that the run records as the job's failure reason, and the other models go on.

NEP is driven the way GPUMD users drive it: calorine 4.1's ``setup_training`` (mode ``fixed``) writes nep.in,
train.xyz and test.xyz, ``nep`` runs in that folder with its output kept in nep.log, and the nep.txt it writes is
evaluated through calorine's ``CPUNEP`` (the ``nep_model`` potential class). The jobs therefore run in the
``calorine`` env. Training needs GPUMD's GPU-only ``nep``; that path (run it, load nep.txt) is not exercised by
the tests here, which check the written input files only.

MTP stays unavailable: mlffbench does not drive mlip-2 (no mlip-2 Python tooling here to write its .cfg / .mtp
files and read the result back), with or without ``mlp`` on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import voigt_6_to_full_3x3_stress

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.adapters.zeroshot import PRESETS, NepZeroShotPotential, _nep_parameter_count
from mlffbench.models.base import Model, Potential

#: environment variable naming the `nep` executable (else `nep` on PATH)
NEP_ENV_VAR = "MLFFBENCH_NEP"

#: Metal-43 SI Table 3 (the NEP hyperparameters used for all 43 metals); keys not in the table (lambda_v, batch,
#: lambda_1, lambda_2, ...) are left to GPUMD's defaults unless given
METAL43_NEP = {"cutoff_radial": 6.0, "cutoff_angular": 4.0, "n_max_radial": 4, "n_max_angular": 4,
               "basis_size_radial": 8, "basis_size_angular": 8, "l_max": [4, 2, 0], "neurons": 50,
               "lambda_e": 1.0, "lambda_f": 1.0, "population": 50, "generation": 100000}


class ExternalProgramModel(Model):
    """A family trained by an external program ``program``; see the module docstring."""

    program: str = ""
    missing_message: str = ""
    positive_keys: tuple[str, ...] = ()
    integer_keys: tuple[str, ...] = ()

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_positive(cls.name, params, cls.positive_keys)
        common.check_positive(cls.name, params, cls.integer_keys, integer=True)

    def find_program(self) -> str:
        path = shutil.which(self.program)
        if path is None:
            raise common.AdapterError(self.missing_message)
        return path


class NepPotential(NepZeroShotPotential):
    """A nep.txt trained here, evaluated by calorine's CPUNEP (no energy shift: the model was fitted to our
    labels)."""

    family = "nep"


class NepModel(ExternalProgramModel):
    """NEP (neuroevolution potential, Metal-43) trained by GPUMD's GPU-only ``nep`` program (``$MLFFBENCH_NEP`` or
    ``nep`` on PATH). Params are nep.in keywords, defaults from Metal-43 SI Table 3: ``cutoff_radial cutoff_angular
    n_max_radial n_max_angular basis_size_radial basis_size_angular l_max`` (int or [3-body, 4-body, 5-body])
    ``neurons lambda_e lambda_f lambda_v batch population generation``; ``valid_fraction seed``: the seeded
    hold-out written as test.xyz when the split has no validation frames."""

    name = "nep"
    cutoff_params = {"cutoff_radial": METAL43_NEP["cutoff_radial"], "cutoff_angular": METAL43_NEP["cutoff_angular"]}
    env = "calorine"
    program = "nep"
    potential_class = NepPotential
    missing_message = "NEP training needs the GPUMD `nep` program on PATH (not found)"
    positive_keys = ("cutoff_radial", "cutoff_angular", "lambda_e", "lambda_f", "lambda_v", "valid_fraction")
    integer_keys = ("n_max_radial", "n_max_angular", "basis_size_radial", "basis_size_angular", "neurons",
                    "batch", "population", "generation")
    param_keys = positive_keys + integer_keys + ("l_max", "seed")

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        l_max = params.get("l_max", METAL43_NEP["l_max"])
        values = [l_max] if isinstance(l_max, int) and not isinstance(l_max, bool) else l_max
        if (not isinstance(values, list) or not 1 <= len(values) <= 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
                or values[0] <= 0):
            raise ConfigError(f"nep: params.l_max must be a positive integer or a list of 1-3 integers >= 0 "
                              f"[3-body, 4-body, 5-body] (got {l_max!r})")
        p = {**METAL43_NEP, **params}
        if p["cutoff_angular"] > p["cutoff_radial"]:
            raise ConfigError(f"nep: params.cutoff_angular ({p['cutoff_angular']}) must not exceed "
                              f"params.cutoff_radial ({p['cutoff_radial']})")
        if "valid_fraction" in params and params["valid_fraction"] >= 1:
            raise ConfigError(f"nep: params.valid_fraction must be < 1 (got {params['valid_fraction']!r})")
        if "seed" in params and (isinstance(params["seed"], bool) or not isinstance(params["seed"], int)):
            raise ConfigError(f"nep: params.seed must be an integer (got {params['seed']!r})")

    def find_program(self) -> str:
        named = os.environ.get(NEP_ENV_VAR)
        if named:
            path = shutil.which(named)
            if path is None:
                raise common.AdapterError(f"{NEP_ENV_VAR}={named} is not an executable `nep` program")
            return path
        return super().find_program()

    def fit(self, train, valid, params, workdir) -> NepPotential:
        self.check_params(params)
        program = self.find_program()
        p = {**METAL43_NEP, "valid_fraction": 0.1, "seed": 0, **params}
        train, test = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        folder = write_nep_inputs(train, test, p, Path(workdir).resolve() / "nep")
        log = folder / "nep.log"
        returncode, train_s = common.run_logged([program], log, folder)
        nep_file = folder / "nep.txt"
        if returncode != 0:
            raise common.program_failed("nep", returncode, log, markers=("Error", "error"))
        if not nep_file.is_file():
            raise common.AdapterError(f"nep wrote no nep.txt; {common.program_failed('nep', returncode, log)}")
        return trained_potential(folder, program, p, train, test, train_s)


def trained_potential(folder: Path, program: str, p: dict, train, test, train_s: float) -> NepPotential:
    """The potential of a finished nep run in ``folder`` (nep.txt, loss.out, nep.log), with its info."""
    from calorine.nep import read_loss, read_model

    nep_file, log = folder / "nep.txt", folder / "nep.log"
    model = read_model(str(nep_file))
    try:
        generations = int(read_loss(str(folder / "loss.out")).index[-1])
    except Exception:  # noqa: BLE001 - loss.out is diagnostics: its absence does not void the model
        generations = None
    info = {
        "package": "GPUMD nep", "version": _nep_version(log.read_text(errors="replace")),
        "program": program, "calorine": common.package_version("calorine"),
        "device": "cpu", "train_device": "gpu (nep)", "n_parameters": _nep_parameter_count(model),
        "nep_types": list(model.types), "nep_in": nep_in_parameters(p, _elements(list(train) + list(test))),
        "generations_requested": p["generation"], "generations": generations,
        "train_s": train_s, "train_s_per_epoch": None,
        "train_s_per_generation": train_s / generations if generations else None,
        "n_train": len(train), "n_valid": len(test),
        "nep_file": str(nep_file), "log": str(log),
        "deviations": ["test.xyz = the split's validation frames, else a seeded hold-out of the training "
                       "frames (nep only reports its errors; no early stopping)",
                       "nep's evolutionary search is not seeded by mlffbench",
                       "prediction through calorine's CPUNEP (CPU), training on GPU"],
    }
    spec = {"calculator": PRESETS["nep_model"]["calculator"], "kwargs": {"model_filename": str(nep_file)}}
    return NepPotential(spec, {}, info)


def _elements(frames) -> list[str]:
    return sorted({s for f in frames for s in f.get_chemical_symbols()})


def nep_in_parameters(params: dict, elements: list[str]) -> dict:
    """nep.in keywords in the order nep needs them (``type`` before ``cutoff``); only the given optional ones."""
    l_max = params["l_max"] if isinstance(params["l_max"], list) else [params["l_max"]]
    out = {"version": 4, "type": [len(elements), *elements],
           "cutoff": [params["cutoff_radial"], params["cutoff_angular"]],
           "n_max": [params["n_max_radial"], params["n_max_angular"]],
           "basis_size": [params["basis_size_radial"], params["basis_size_angular"]],
           "l_max": list(l_max), "neuron": params["neurons"]}
    for key in ("lambda_e", "lambda_f", "lambda_v", "batch", "population", "generation"):
        if key in params:
            out[key] = params[key]
    return out


def nep_structure(frame: Atoms) -> Atoms:
    """A frame as GPUMD's train.xyz wants it: energy (eV per cell) and forces (eV/Å) on a single-point calculator,
    and ``virial`` = -σ V (eV per cell, 3x3; σ the ASE stress, positive = tensile), GPUMD's own keyword, which nep
    divides by the number of atoms. No ASE stress is written, so nep never sees two virial sources."""
    atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=frame.pbc)
    if not atoms.pbc.all() or atoms.cell.volume <= 0:
        raise common.AdapterError("nep: every frame needs a periodic cell with a volume (GPUMD's `lattice`)")
    atoms.calc = SinglePointCalculator(atoms, energy=float(fr.label(frame, "energy")),
                                       forces=np.asarray(fr.label(frame, "forces"), dtype=float))
    stress = fr.label(frame, "stress")
    if stress is not None:
        atoms.info["virial"] = -voigt_6_to_full_3x3_stress(np.asarray(stress)) * atoms.get_volume()
    return atoms


def write_nep_inputs(train, test, params: dict, rootdir: Path) -> Path:
    """nep.in, train.xyz and test.xyz through calorine's ``setup_training`` (mode fixed); returns their folder."""
    from calorine.nep import setup_training

    elements = _elements(list(train) + list(test))
    with warnings.catch_warnings():
        # calorine warns for each structure without an ASE stress; ours carry GPUMD's virial instead
        warnings.filterwarnings("ignore", message="Failed to retrieve stresses")
        setup_training(nep_in_parameters(params, elements), train_structures=[nep_structure(f) for f in train],
                       test_structures=[nep_structure(f) for f in test], rootdir=str(rootdir), mode="fixed",
                       overwrite=True)
    return Path(rootdir) / "nepmodel"


def _nep_version(log: str) -> str | None:
    """The GPUMD version nep prints in its banner, if it does."""
    match = re.search(r"GPUMD\s+([0-9][0-9A-Za-z.\-]*)|[Vv]ersion[:\s]+([0-9][0-9A-Za-z.\-]*)", log)
    return next((g for g in match.groups() if g), None) if match else None


class _NoPotential(Potential):
    """Never constructed (fit always raises); present so load_potential has a class to name."""

    def evaluate(self, atoms):  # pragma: no cover
        raise common.AdapterError(f"{self.family}: no trained model")

    def state(self):  # pragma: no cover
        return {}

    @classmethod
    def from_state(cls, state):  # pragma: no cover
        raise common.AdapterError(f"{cls.family}: no trained model can be loaded (mlffbench does not drive mlp)")


class MtpPotential(_NoPotential):
    family = "mtp"


class MtpModel(ExternalProgramModel):
    """Moment tensor potential (MS25), trained by mlip-2's ``mlp train``. Params: ``level`` (the .mtp level file,
    e.g. 16), ``radial_basis_size min_dist max_dist max_iter energy_weight force_weight stress_weight``.
    Unavailable: mlffbench does not drive mlip-2 (see the module docstring)."""

    name = "mtp"
    cutoff_params = {"max_dist": None}  # no default: mlip-2 takes it from the .mtp file
    program = "mlp"
    potential_class = MtpPotential
    missing_message = "MTP needs `mlp` (mlip-2) on PATH (not found)"
    positive_keys = ("min_dist", "max_dist", "energy_weight", "force_weight", "stress_weight")
    integer_keys = ("level", "radial_basis_size", "max_iter")
    param_keys = positive_keys + integer_keys

    def fit(self, train, valid, params, workdir) -> Potential:
        self.check_params(params)
        path = self.find_program()
        raise common.AdapterError(f"MTP: `mlp` found ({path}), but driving mlip-2 is not supported by mlffbench "
                                  "(no mlip-2 Python tooling here to write its .cfg/.mtp files and read the "
                                  "trained potential back)")
