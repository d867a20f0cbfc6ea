"""Model families by name. A family registers its ``Model`` class here; nothing else picks models by name."""

from __future__ import annotations

import importlib

from mlffbench.errors import ConfigError

#: name -> "module:Class" (imported lazily, so a family's heavy dependencies load only when used). Families with
#: ``Model.env`` run in their own environment (mlffbench.envs); their modules still import here for planning.
_FAMILIES = {
    "acegp": "mlffbench.models.acegp.model:AceGPModel",
    "labeler": "mlffbench.models.reference:LabelerModel",
    "mean_energy": "mlffbench.models.reference:MeanEnergyModel",
    "published": "mlffbench.models.reference:PublishedModel",
    "mace": "mlffbench.models.adapters.mace:MaceModel",
    "nequip": "mlffbench.models.adapters.nequip:NequipModel",
    "allegro": "mlffbench.models.adapters.nequip:AllegroModel",
    "chgnet": "mlffbench.models.adapters.zeroshot:ChgnetModel",
    "sevennet": "mlffbench.models.adapters.zeroshot:SevennetModel",
    "ase_calculator": "mlffbench.models.adapters.zeroshot:AseCalculatorModel",
    "gap": "mlffbench.models.adapters.gap:GapModel",
    "deepmd": "mlffbench.models.adapters.deepmd:DeepmdModel",
    "nep": "mlffbench.models.adapters.external:NepModel",
    "mtp": "mlffbench.models.adapters.external:MtpModel",
    "nep_model": "mlffbench.models.adapters.zeroshot:NepZeroShotModel",
    "sgdml": "mlffbench.models.adapters.sgdml:SgdmlModel",
    "torchani": "mlffbench.models.adapters.torchani:TorchaniModel",
    "grace": "mlffbench.models.adapters.grace:GraceModel",
    "flare": "mlffbench.models.adapters.flare:FlareModel",
}


def model_names() -> list[str]:
    return sorted(_FAMILIES)


def get_model_class(name: str):
    try:
        module, cls = _FAMILIES[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown model '{name}' (known: {', '.join(model_names())})") from None
    return getattr(importlib.import_module(module), cls)


def make_model(name: str):
    return get_model_class(name)()
