"""Reference labelers behind one contract (``base.Labeler``), built by name with ``make_labeler``."""

from __future__ import annotations

from mlffbench.data.labelers.base import Labeler, NVTSpec
from mlffbench.errors import ConfigError


def labeler_names() -> list[str]:
    return ["lammps", "emt", "gpaw", "universal"]


def labeler_spec(spec: str | dict) -> dict:
    """A labeler spec as a fresh dict with ``name``: config files may give just the name."""
    return {"name": spec} if isinstance(spec, str) else dict(spec)


def make_labeler(spec: str | dict) -> Labeler:
    """Build a labeler from its spec: a name, or a dict with ``name`` and that labeler's options."""
    spec = labeler_spec(spec)
    name = spec.pop("name", None)
    if name == "lammps":
        from mlffbench.data.labelers.lammps import LammpsLabeler

        return LammpsLabeler(**spec)
    if name == "emt":
        from mlffbench.data.labelers.emt import EMTLabeler

        return EMTLabeler(**spec)
    if name == "gpaw":
        from mlffbench.data.labelers.gpaw import GpawLabeler

        return GpawLabeler(**spec)
    if name == "universal":
        from mlffbench.data.labelers.universal import UniversalLabeler

        return UniversalLabeler(**spec)
    raise ConfigError(f"unknown labeler '{name}': known labelers are {', '.join(labeler_names())}")


__all__ = ["Labeler", "NVTSpec", "make_labeler", "labeler_names", "labeler_spec"]
