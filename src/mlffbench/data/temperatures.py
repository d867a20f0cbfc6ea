"""MD temperatures of a generated data set, per label: a fraction of T_melt (TM23), a fraction of T_c (Metal-43), an
absolute temperature, or a column of Metal-43's SI Table 1.

Forms of a label's value in a config (``data.temperatures``):

* ``0.25`` or ``"0.25 T_melt"``: 0.25 x the element's experimental melting point (TM23 Methods IV.A; TM23's values
  for its 27 metals, ``mlffbench elements``);
* ``"0.5 T_c"``: 0.5 x Metal-43's T_c (its melting temperature; the printed T_c column, else the 1.2T_c column /
  1.2 where T_c is blank); an element without a T_c (Hg) has no frames at this label;
* ``"300 K"``: absolute kelvin, the same for every element;
* ``"metal43 1.2T_c"`` (columns ``300K``, ``0.5T_c``, ``T_c``, ``1.2T_c``): the temperature Metal-43 printed for
  the element in that column of SI Table 1, exactly as printed (a few printed values are not the stated fraction
  of T_c: ``mlffbench elements`` notes them); where the cell is blank the paper ran no MD there, and neither do
  we: the element has no frames at this label.
"""

from __future__ import annotations

import re

from mlffbench import elements as elements_db
from mlffbench.errors import ConfigError

_FRACTION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*?\s*(T_?melt|T_?c)\s*$")
_KELVIN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*K\s*$")
_METAL43 = re.compile(r"^\s*metal43\s+(\S+)\s*$")
FORMS = "a number (x T_melt), 'x T_melt', 'x T_c', 'N K' or 'metal43 <column>' (300K, 0.5T_c, T_c, 1.2T_c)"


def parse(value) -> tuple[str, float | str]:
    """(kind, number or column): kind is ``t_melt``, ``t_c``, ``kelvin`` or ``metal43``; ValueError if unreadable."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a temperature")
    if isinstance(value, (int, float)):
        return "t_melt", float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a temperature")
    if m := _FRACTION.match(value):
        return ("t_melt" if "melt" in m.group(2) else "t_c"), float(m.group(1))
    if m := _KELVIN.match(value):
        return "kelvin", float(m.group(1))
    if m := _METAL43.match(value):
        if m.group(1) not in elements_db.METAL43_COLUMNS:
            raise ValueError(f"'{value}': Metal-43 SI Table 1 has columns {', '.join(elements_db.METAL43_COLUMNS)}")
        return "metal43", m.group(1)
    raise ValueError(f"'{value}' is not a temperature: use {FORMS}")


def check(where: str, value) -> None:
    """ConfigError naming ``where`` for a value that is not a temperature or is not positive."""
    try:
        kind, number = parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if kind != "metal43" and not number > 0:
        raise ConfigError(f"{where}: must be positive, got {value!r}")


def kelvin(value, element: str) -> float | None:
    """The temperature (K) of a label's value for ``element``; None where the element has none (a blank Metal-43
    cell, no T_c)."""
    kind, number = parse(value)
    facts = elements_db.get(element)
    if kind == "t_melt":
        return number * facts.t_melt
    if kind == "kelvin":
        return number
    if kind == "t_c":
        return None if facts.t_c is None else number * facts.t_c
    printed = facts.metal43_temperatures.get(number)
    return None if printed is None else float(printed)


def for_element(temperatures: dict, element: str) -> dict[str, float]:
    """label -> K for ``element``, in config order, leaving out labels the element has no temperature for."""
    out = {}
    for label, value in temperatures.items():
        t = kelvin(value, element)
        if t is not None:
            out[label] = t
    return out


def describe(value) -> str:
    """The value as the report states it, e.g. '0.25 x T_melt', '300 K', 'Metal-43 Table 1, 1.2T_c'."""
    kind, number = parse(value)
    if kind == "metal43":
        return f"Metal-43 Table 1, {number}"
    return {"t_melt": f"{number:g} x T_melt", "t_c": f"{number:g} x T_c", "kelvin": f"{number:g} K"}[kind]
