"""The model contract.

``Model.fit(train, valid, params, workdir) -> Potential``; a ``Potential`` is an ASE calculator with a batched
``predict(frames)`` and ``save``/``load``. Nothing in the benchmark cares which architecture it talks to.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from mlffbench import frames as fr
from mlffbench.errors import ConfigError


class Potential(Calculator, ABC):
    """A fitted model as an ASE calculator (energy eV, forces eV/Å, stress eV/Å³ Voigt, ASE sign)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    #: registry name of the model family that produced this potential (used by ``load_potential``)
    family: str = ""

    @abstractmethod
    def evaluate(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy, forces (N, 3) and stress (6,) of one structure."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """JSON-able state from which ``from_state`` rebuilds an identical potential."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any]) -> "Potential":
        """Inverse of ``state``."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy, forces, stress = self.evaluate(self.atoms)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": stress}

    def predict(self, frames: Sequence[Atoms]) -> list[Atoms]:
        """Predicted labels for each frame, as labelled copies (metadata kept). Families override to batch."""
        out = []
        for frame in frames:
            energy, forces, stress = self.evaluate(frame)
            out.append(fr.labelled(frame, energy, forces, stress, **frame.info))
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the potential to one file (atomically: a crash never leaves a half-written model)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"family": self.family, "state": self.state()}, indent=1))
        os.replace(tmp, path)


def load_potential(path: str | os.PathLike) -> Potential:
    """Load a potential saved by ``Potential.save`` (any registered family); a file that is not one (garbage, cut)
    is a DataError naming it."""
    from mlffbench.errors import DataError
    from mlffbench.models.registry import get_model_class

    try:
        blob = json.loads(Path(path).read_text())
        family, state = blob["family"], blob["state"]
    except FileNotFoundError:
        raise DataError(f"{path}: saved potential missing") from None
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DataError(f"{path}: not a saved potential ({type(exc).__name__}); re-run to re-fit it") from None
    return get_model_class(family).potential_class.from_state(state)


class Model(ABC):
    """A model family: trains a ``Potential`` from labelled frames."""

    name: str = ""
    potential_class: type[Potential] = Potential
    #: name of the environment its jobs run in (``mlffbench.envs``; built on first use); None = this one
    env: str | None = None
    #: params this family accepts; None = any (families that validate override ``check_params``)
    param_keys: tuple[str, ...] | None = None
    #: params that are cutoff radii (Å) -> the family's default (None: the family picks one at fit time); a cutoff
    #: below the data's shortest interatomic distance leaves every atom without neighbours
    cutoff_params: dict[str, float | None] = {}
    #: the param naming the species the model is built for (symbols or atomic numbers; None/absent: the data's)
    species_param: str | None = None
    #: trained by epochs on a validation set under the run's training protocol (``mlffbench.models.training``):
    #: the engine holds out the validation frames, passes ``training=`` to ``fit`` and stores the curve it returns
    #: in ``info["training"]``
    epoch_trained: bool = False

    @classmethod
    def cutoffs(cls, params: dict[str, Any]) -> dict[str, float]:
        """The cutoff radii (Å) these params give, by param name: explicit or the family default."""
        values = {key: params.get(key, default) for key, default in cls.cutoff_params.items()}
        return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @classmethod
    def data_problem(cls, params: dict[str, Any], elements, shortest: float | None) -> str | None:
        """Why these params cannot fit data of ``elements`` whose shortest interatomic distance is ``shortest`` (Å;
        None: not known), in one line naming the param, else None. Checked at planning where the data are known
        then (files), else at fit time (generated data)."""
        given = params.get(cls.species_param) if cls.species_param else None
        if given is not None:
            from ase.data import chemical_symbols

            names = {chemical_symbols[s] if isinstance(s, int) and 0 < s < len(chemical_symbols) else s
                     for s in given}
            missing = sorted(set(elements) - names)
            if missing:
                return f"params.{cls.species_param} = {given!r} lacks the data's element(s) {missing}"
        if shortest is not None:
            for key, value in cls.cutoffs(params).items():
                if value <= shortest:
                    found = f"{shortest:.3f} Å" if shortest < float("inf") else "none within 10 Å"
                    return (f"params.{key} = {value:g} Å is not above the shortest interatomic distance in the data "
                            f"({found}): no atom would have a neighbour within it")
        return None

    def check_data(self, frames: Sequence[Atoms], params: dict[str, Any], label: str) -> None:
        """Fit-time ``data_problem`` on the training frames: a ConfigError naming the model and param."""
        cutoffs = self.cutoffs(params)
        # searched beyond the cutoffs (the radius shrinks after the first frame), so the message can give it
        shortest = fr.shortest_distance(frames, max(10.0, *cutoffs.values())) if cutoffs else None
        elements = sorted({s for f in frames for s in f.get_chemical_symbols()})
        problem = self.data_problem(params, elements, shortest)
        if problem:
            raise ConfigError(f"{label}: {problem}")

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Raise ConfigError for params this family cannot use; called when a run is planned, before any work."""
        if cls.param_keys is not None:
            unknown = sorted(set(params) - set(cls.param_keys))
            if unknown:
                raise ConfigError(f"{cls.name}: unknown param(s) {unknown} (known: {list(cls.param_keys)})")

    @classmethod
    def refuse(cls, data, params: dict[str, Any]) -> str | None:
        """Why this family cannot run on a data set (``data``: ``mlffbench.datasets.DataSummary``), in one line,
        or None. Called at planning: the run records the reason instead of failing mid-run."""
        return None

    @abstractmethod
    def fit(
        self,
        train: Sequence[Atoms],
        valid: Sequence[Atoms] | None,
        params: dict[str, Any],
        workdir: str | os.PathLike,
        training=None,
    ) -> Potential:
        """Train on ``train`` (``valid`` for early stopping where the family uses it) and return the Potential.
        Epoch-trained families (``epoch_trained``) get the protocol as ``training``
        (``mlffbench.models.training.Training``; None: its defaults) and return its record in
        ``potential.info["training"]`` (``training.record``)."""


def encode_array(a: np.ndarray) -> dict:
    """A numpy array as a JSON-able dict (exact: raw little-endian float64/int64 bytes in base64)."""
    import base64

    a = np.ascontiguousarray(a)
    dtype = "<f8" if a.dtype.kind == "f" else "<i8"
    return {"dtype": dtype, "shape": list(a.shape), "data": base64.b64encode(a.astype(dtype).tobytes()).decode()}


def decode_array(d: dict) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(d["data"]), dtype=d["dtype"]).reshape(d["shape"]).copy()
