"""Physical observables and crash tests, each computed with any ASE calculator and scored model vs reference.

One module per observable, each with ``NAME`` and ``run(element, model_calc, reference_calc, settings,
workdir) -> dict`` returning ``{"status", "error", "wall_s", "model", "reference", "errors", "settings"}``
(JSON-able; non-finite numbers are None). ``run_all`` runs a list of them, each isolated.
"""

from __future__ import annotations

import importlib
import time
import traceback

from mlffbench.errors import ConfigError, one_line
from mlffbench.observables.settings import Settings

NAMES = ("eos", "elastic", "phonons", "vacancy", "rdf", "stability", "speed")


def module(name: str):
    if name not in NAMES:
        raise ConfigError(f"unknown observable '{name}' (known: {', '.join(NAMES)})")
    return importlib.import_module(f"mlffbench.observables.{name}")


def run_all(element: str, names, model_calc, reference_calc, settings: Settings, workdir=None) -> dict:
    """Run each observable; one that raises (a bug, not a physical failure) is recorded and the rest go on."""
    for name in names:
        module(name)  # unknown names fail before any work
    out = {}
    for name in names:
        start = time.perf_counter()
        try:
            out[name] = module(name).run(element, model_calc, reference_calc, settings, workdir)
        except Exception as exc:  # noqa: BLE001
            out[name] = {"status": "failed", "error": one_line(exc), "wall_s": time.perf_counter() - start,
                         "model": {}, "reference": {}, "errors": {}, "settings": settings.to_dict(),
                         "traceback": traceback.format_exc(limit=6)}
    return out


__all__ = ["NAMES", "Settings", "module", "run_all"]
