"""Unit conversions used at the boundaries (readers, LAMMPS). Inside mlffbench everything is ASE units:
eV, Å, eV/Å, eV/Å³ with ASE's stress sign (positive = tensile)."""

from ase import units

#: 1 GPa in eV/Å³
GPA = units.GPa
#: 1 kbar in eV/Å³ (VASP, mlearn)
KBAR = 0.1 * units.GPa
#: 1 bar in eV/Å³ (LAMMPS metal units)
BAR = 1e-4 * units.GPa
#: 1 fs in ASE time units
FS = units.fs

#: stress units a data file may declare (canonical spelling), and their size in eV/Å³
STRESS_UNITS = ("eV/A3", "GPa", "kbar", "bar")
_STRESS_UNIT_SIZE = {"eV/A3": 1.0, "GPa": GPA, "kbar": KBAR, "bar": BAR}
_STRESS_UNIT_ALIASES = {"ev/a3": "eV/A3", "ev/å3": "eV/A3", "ev/a^3": "eV/A3", "ev/å^3": "eV/A3", "ev/å³": "eV/A3",
                        "gpa": "GPa", "kbar": "kbar", "bar": "bar"}
#: stress sign conventions: tensile = positive under tension (ASE); compressive = positive under compression
#: (VASP, LAMMPS pressure, FitSNAP)
STRESS_CONVENTIONS = ("tensile", "compressive")


def canonical_stress_unit(name: str) -> str | None:
    """The canonical spelling (one of STRESS_UNITS) of a declared stress unit, None when it is not one."""
    return _STRESS_UNIT_ALIASES.get(str(name).strip().lower())


def stress_factor(unit: str, convention: str) -> float:
    """Multiplier taking a stress declared in ``unit`` with ``convention`` to eV/Å³ with ASE's sign (tensile).

    Raises ValueError naming the allowed values when ``unit`` or ``convention`` is not one of them."""
    canonical = canonical_stress_unit(unit)
    if canonical is None:
        raise ValueError(f"unknown stress unit '{unit}'; use one of {', '.join(STRESS_UNITS)}")
    if convention not in STRESS_CONVENTIONS:
        raise ValueError(f"unknown stress convention '{convention}'; use one of {', '.join(STRESS_CONVENTIONS)}")
    return _STRESS_UNIT_SIZE[canonical] * (1.0 if convention == "tensile" else -1.0)
