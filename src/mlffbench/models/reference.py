"""The two reference members of the model contract, which bracket every real model's score:

* ``labeler``: the reference labeler itself used as a "model" (zero error up to the 1e-8 Å/eV/Å precision of
  extxyz per-atom columns; proves the pipeline is consistent end to end and is the oracle row of every table);
* ``mean_energy``: per-element mean energy (least squares on composition), zero forces and zero stress
  (the trivial baseline: its force and stress errors equal the label scale, i.e. 100 % error).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms

from mlffbench import frames as fr
from mlffbench.data.labelers import make_labeler
from mlffbench.errors import MlffbenchError
from mlffbench.models.base import Model, Potential


class LabelerPotential(Potential):
    family = "labeler"

    def __init__(self, labeler_spec: dict, **kwargs):
        super().__init__(**kwargs)
        self.labeler_spec = labeler_spec
        self._labeler = make_labeler(labeler_spec)
        self._calculators: dict[tuple, Any] = {}

    def evaluate(self, atoms: Atoms):
        symbols = tuple(sorted(set(atoms.get_chemical_symbols())))
        if symbols not in self._calculators:
            self._calculators[symbols] = self._labeler.calculator(symbols)
        work = atoms.copy()
        work.calc = self._calculators[symbols]
        return work.get_potential_energy(), work.get_forces(), work.get_stress(voigt=True)

    def state(self) -> dict:
        return {"labeler": self.labeler_spec}

    @classmethod
    def from_state(cls, state: dict) -> "LabelerPotential":
        return cls(state["labeler"])


class LabelerModel(Model):
    """Params: ``labeler`` (spec of the reference labeler; default: the one recorded on the training frames)."""

    name = "labeler"
    potential_class = LabelerPotential
    param_keys = ("labeler",)

    def fit(self, train, valid, params, workdir) -> LabelerPotential:
        spec = params.get("labeler")
        if spec is None:
            raise MlffbenchError("model 'labeler' needs params.labeler (the labeler spec the data was made with)")
        return LabelerPotential(spec)


class MeanEnergyPotential(Potential):
    family = "mean_energy"

    def __init__(self, energy_per_element: dict[str, float], **kwargs):
        super().__init__(**kwargs)
        self.energy_per_element = dict(energy_per_element)

    def evaluate(self, atoms: Atoms):
        try:
            energy = sum(self.energy_per_element[s] for s in atoms.get_chemical_symbols())
        except KeyError as exc:
            raise MlffbenchError(f"mean_energy baseline was not trained on element {exc.args[0]}") from None
        return float(energy), np.zeros((len(atoms), 3)), np.zeros(6)

    def state(self) -> dict:
        return {"energy_per_element": self.energy_per_element}

    @classmethod
    def from_state(cls, state: dict) -> "MeanEnergyPotential":
        return cls(state["energy_per_element"])


class MeanEnergyModel(Model):
    name = "mean_energy"
    potential_class = MeanEnergyPotential
    param_keys = ()

    def fit(self, train: Sequence[Atoms], valid, params, workdir) -> MeanEnergyPotential:
        if not train:
            raise MlffbenchError("mean_energy baseline: empty training set")
        species = sorted({s for frame in train for s in frame.get_chemical_symbols()})
        return MeanEnergyPotential(fr.per_element_energy(train, species))
