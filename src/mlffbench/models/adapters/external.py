"""Families whose training program is an external binary that is not on PyPI: NEP (GPUMD's ``nep``) and MTP
(mlip-2's ``mlp``).

Planning accepts them (params are validated like any family); ``fit`` looks the program up on PATH. Missing, it
raises a one-line AdapterError that the run records as the job's failure reason, and the other models go on.
Present, it still raises: driving these programs (writing nep.in / train.xyz, the .mtp level file, reading the
result back through calorine / the mlp ASE interface) is not implemented yet, and we do not pretend to train.
NEP inference of a user-supplied ``nep.txt`` is the ``nep_model`` family (zeroshot.py, calorine's CPUNEP).
"""

from __future__ import annotations

import shutil

from mlffbench.models.adapters import common
from mlffbench.models.base import Model, Potential


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

    def fit(self, train, valid, params, workdir) -> Potential:
        self.check_params(params)
        if shutil.which(self.program) is None:
            raise common.AdapterError(self.missing_message)
        raise common.AdapterError(f"training through `{self.program}` is not implemented yet "
                                  f"({shutil.which(self.program)} found)")


class _NoPotential(Potential):
    """Never constructed (fit always raises); present so load_potential has a class to name."""

    def evaluate(self, atoms):  # pragma: no cover
        raise common.AdapterError(f"{self.family}: no trained model")

    def state(self):  # pragma: no cover
        return {}

    @classmethod
    def from_state(cls, state):  # pragma: no cover
        raise common.AdapterError(f"{cls.family}: no trained model can be loaded (training not implemented)")


class NepPotential(_NoPotential):
    family = "nep"


class MtpPotential(_NoPotential):
    family = "mtp"


class NepModel(ExternalProgramModel):
    """NEP (neuroevolution potential, Metal-43) trained by GPUMD's GPU-only ``nep`` program. Params follow nep.in
    keywords: ``cutoff_radial cutoff_angular n_max_radial n_max_angular basis_size_radial basis_size_angular
    l_max neurons lambda_e lambda_f lambda_v batch population generation``."""

    name = "nep"
    program = "nep"
    potential_class = NepPotential
    missing_message = "NEP training needs the GPUMD `nep` program on PATH (not found)"
    positive_keys = ("cutoff_radial", "cutoff_angular", "lambda_e", "lambda_f", "lambda_v")
    integer_keys = ("n_max_radial", "n_max_angular", "basis_size_radial", "basis_size_angular", "l_max", "neurons",
                    "batch", "population", "generation")
    param_keys = positive_keys + integer_keys


class MtpModel(ExternalProgramModel):
    """Moment tensor potential (MS25) trained by mlip-2's ``mlp train``. Params: ``level`` (the .mtp level file,
    e.g. 16), ``radial_basis_size min_dist max_dist max_iter energy_weight force_weight stress_weight``."""

    name = "mtp"
    program = "mlp"
    potential_class = MtpPotential
    missing_message = "MTP needs `mlp` (mlip-2) on PATH (not found)"
    positive_keys = ("min_dist", "max_dist", "energy_weight", "force_weight", "stress_weight")
    integer_keys = ("level", "radial_basis_size", "max_iter")
    param_keys = positive_keys + integer_keys
