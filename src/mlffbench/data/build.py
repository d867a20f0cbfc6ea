"""Ground-state cells relaxed with the labeler itself, TM23 supercells and the single vacancy.

Prototypes whose atoms all sit on symmetry-fixed sites (fcc, bcc, hcp, omega, simple hexagonal) relax exactly by a
minimisation over lattice parameters, so we minimise the labeler's energy over (a) or (a, c) with fixed
fractional coordinates and report the residual stress. The initial guesses come from ``ase.data.reference_states``
and are only starting points. Two ground states have atoms on general positions (``COMPLEX``: alpha-Mn, alpha-Ga):
they are built from their experimental structures and relaxed by one isotropic scale only (internal coordinates
and axial ratios stay experimental; the residual stress and forces are what that approximation leaves, and the MD
that follows relaxes the internal coordinates at temperature).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from scipy.optimize import minimize

from mlffbench import elements as elements_db
from mlffbench.errors import MlffbenchError

#: lattice -> (space group number, experimental cell lengths (Å), Wyckoff representatives, source)
COMPLEX = {
    "alpha_Mn": (217, (8.911, 8.911, 8.911),
                 ((0, 0, 0), (0.31787, 0.31787, 0.31787), (0.35706, 0.35706, 0.03457), (0.08958, 0.08958, 0.28194)),
                 "alpha-Mn, I-43m, 58 atoms: Lawson, Larson, Aronson et al., J. Appl. Phys. 76, 7049 (1994)"),
    "Cmce": (64, (4.5192, 7.6586, 4.5258), ((0, 0.1549, 0.0810),),
             "alpha-Ga, Cmce (Cmca), 8 atoms: Sharma and Donohue, Z. Kristallogr. 117, 293 (1962)"),
}
BUILDABLE = ("fcc", "bcc", "hcp", "omega", "simple_hexagonal", *COMPLEX)


def prototype(symbol: str, lattice: str, a: float, c: float | None = None) -> Atoms:
    """Conventional cell of ``lattice``: cubic for fcc/bcc, hexagonal for hcp/omega/simple hexagonal; a ``COMPLEX``
    structure scaled so that its first cell length is ``a``."""
    if lattice in COMPLEX:
        from ase.spacegroup import crystal

        number, lengths, basis, _ = COMPLEX[lattice]
        scale = a / lengths[0]
        return crystal([symbol] * len(basis), basis, spacegroup=number,
                       cellpar=[*(scale * x for x in lengths), 90, 90, 90])
    if lattice in ("fcc", "bcc"):
        return bulk(symbol, lattice, a=a, cubic=True)
    if lattice == "hcp":
        return bulk(symbol, "hcp", a=a, c=c)
    hexagonal = [[a, 0, 0], [-a / 2, a * math.sqrt(3) / 2, 0], [0, 0, c]]
    if lattice == "omega":  # P6/mmm, Wyckoff 1a + 2d (TM23's Ti, mp-72)
        frac = [[0, 0, 0], [1 / 3, 2 / 3, 1 / 2], [2 / 3, 1 / 3, 1 / 2]]
        return Atoms(symbol * 3, scaled_positions=frac, cell=hexagonal, pbc=True)
    if lattice == "simple_hexagonal":
        return Atoms(symbol, scaled_positions=[[0, 0, 0]], cell=hexagonal, pbc=True)
    raise MlffbenchError(
        f"cannot build the '{lattice}' ground state of {symbol}: buildable lattices are {', '.join(BUILDABLE)}"
    )


def initial_guess(symbol: str, lattice: str) -> tuple[float, float | None]:
    """Starting lattice parameters (Å) from ASE's reference states, converted between prototypes by volume."""
    if lattice in COMPLEX:
        return COMPLEX[lattice][1][0], None
    ref = reference_states[atomic_numbers[symbol]] or {}
    if ref.get("symmetry") == lattice and "a" in ref:
        a = ref["a"]
        c = a * ref["c/a"] if "c/a" in ref else ref.get("c")
        return a, c
    # Different prototype in ASE's table: keep ASE's volume per atom.
    volume = _reference_volume_per_atom(ref)
    if lattice == "fcc":
        return (4 * volume) ** (1 / 3), None
    if lattice == "bcc":
        return (2 * volume) ** (1 / 3), None
    if lattice == "hcp":
        a = (2 * volume / (math.sqrt(3) / 2 * 1.633)) ** (1 / 3)
        return a, 1.633 * a
    if lattice == "omega":  # c/a ~ 0.62 for omega-Ti/Zr
        a = (3 * volume / (math.sqrt(3) / 2 * 0.62)) ** (1 / 3)
        return a, 0.62 * a
    if lattice == "simple_hexagonal":
        a = (volume / (math.sqrt(3) / 2 * 0.95)) ** (1 / 3)
        return a, 0.95 * a
    raise MlffbenchError(f"no initial guess for {symbol} in lattice '{lattice}'")


def _reference_volume_per_atom(ref: dict) -> float:
    sym, a = ref.get("symmetry"), ref.get("a")
    if sym == "fcc":
        return a**3 / 4
    if sym == "bcc":
        return a**3 / 2
    if sym == "hcp":
        return math.sqrt(3) / 2 * a * a * a * ref["c/a"] / 2
    return 20.0  # unknown: a typical transition-metal volume, Å³/atom (only a starting point)


@dataclass
class GroundState:
    atoms: Atoms  # relaxed conventional cell
    lattice: str
    a: float
    c: float | None
    energy_per_atom: float
    residual_stress: float  # max |stress component|, eV/Å³, after relaxation


def relax_ground_state(symbol: str, calculator, lattice: str | None = None) -> GroundState:
    """Relax the lattice parameters of ``symbol``'s ground-state prototype with ``calculator``."""
    lattice = lattice or elements_db.get(symbol).lattice
    a0, c0 = initial_guess(symbol, lattice)
    two_params = lattice in ("hcp", "omega", "simple_hexagonal")
    x0 = np.array([a0, c0]) if two_params else np.array([a0])

    def energy(x):
        atoms = prototype(symbol, lattice, *x)
        atoms.calc = calculator
        return atoms.get_potential_energy() / len(atoms)

    step = 0.02 * x0
    simplex = np.vstack([x0] + [x0 + np.eye(len(x0))[i] * step[i] for i in range(len(x0))])
    result = minimize(
        energy, x0, method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-6, "fatol": 1e-10, "maxiter": 2000},
    )
    atoms = prototype(symbol, lattice, *result.x)
    atoms.calc = calculator
    e = atoms.get_potential_energy() / len(atoms)
    stress = float(np.abs(atoms.get_stress()).max())
    atoms.calc = None
    if not np.isfinite(e):
        raise MlffbenchError(f"relaxation of {symbol} ({lattice}) gave a non-finite energy")
    return GroundState(atoms, lattice, float(result.x[0]), float(result.x[1]) if two_params else None, e, stress)


def supercell_repeats(cell: np.ndarray, min_length: float) -> tuple[int, int, int]:
    """Smallest repeats so that every lattice vector of the supercell is at least ``min_length`` Å long."""
    lengths = np.linalg.norm(np.asarray(cell), axis=1)
    return tuple(int(max(1, math.ceil(min_length / length - 1e-9))) for length in lengths)


def tm23_cell(ground: Atoms, min_length: float, rng: np.random.Generator) -> tuple[Atoms, int, tuple]:
    """TM23 cell: supercell with every lattice vector >= ``min_length`` Å, one atom removed at random.

    Returns the cell, the index (in the perfect supercell) of the removed atom and the repeats.
    """
    repeats = supercell_repeats(ground.cell, min_length)
    cell = ground.repeat(repeats)
    removed = int(rng.integers(len(cell)))
    del cell[removed]
    return cell, removed, repeats
