"""Model families by name. A family registers its ``Model`` class here; nothing else picks models by name."""

from __future__ import annotations

import importlib

from mlffbench.errors import ConfigError

#: name -> "module:Class" (imported lazily, so a family's heavy dependencies load only when used)
_FAMILIES = {
    "acegp": "mlffbench.models.acegp.model:AceGPModel",
    "labeler": "mlffbench.models.reference:LabelerModel",
    "mean_energy": "mlffbench.models.reference:MeanEnergyModel",
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
