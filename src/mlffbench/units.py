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
