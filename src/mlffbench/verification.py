"""Verification checks of a potential (as OpenKIM runs on every potential it publishes), on one structure.

Each check measures one number and passes when it is within its tolerance (``TOLERANCES``, stated with the
result):

* ``forces_fd``: forces are -dE/dx: central finite differences of the energy for 3 components of up to 3 atoms,
  at steps 1e-3 and 1e-2 Å (the smaller error is kept, so float32 models are not failed for rounding noise);
  largest deviation, eV/Å; tolerance 1e-2 eV/Å + 1 % of the largest force.
* ``stress_fd`` (periodic): stress is (1/V) dE/dε by finite strain (ASE's sign: positive = tensile), the same two
  steps; largest deviation in GPa; tolerance 0.05 GPa + 1 % of the largest stress component.
* ``translation``, ``rotation``, ``permutation``: the structure moved rigidly by a random vector, rotated (cell
  too) by a random rotation, its atoms re-ordered: energy change per atom (eV/atom) and largest force change
  (eV/Å, forces rotated / re-ordered with the atoms); tolerance 1e-5 eV/atom and 1e-4 eV/Å.
* ``extensivity``: periodic: the 2x2x2 supercell has 8x the energy and the same forces per atom; non-periodic: two
  copies 20 Å apart have 2x the energy; energy difference per atom, tolerance 1e-4 eV/atom (forces 1e-3 eV/Å).
* ``smoothness_dimer``: the energy of a dimer of the structure's two most common species (one species: a
  homonuclear dimer) from 0.8 x the structure's shortest distance to 8 Å in steps of 0.01 Å. An energy jump is a
  step whose energy change differs from the trapezoid integral of the forces (eV); a kink is a jump in the force
  (~ its size) or in the force's slope (~ slope jump x 0.01 Å), measured by the third difference of the force
  along the path (eV/Å); only what the local change along the path cannot explain counts (a steep but smooth
  repulsive wall passes). Tolerances 1e-3 eV and 1e-2 eV/Å.
* ``smoothness_compression``: the same along an isotropic scaling of the structure from 0.95 to 1.05 (step 1e-3),
  the derivative from the stress (periodic: dE/ds = V tr(σ)/s) or the forces (non-periodic); the kink is a jump
  in the pressure (GPa; non-periodic: in dE/ds, eV). Tolerances 1e-3 eV and 1e-2 GPa (eV).
* ``determinism``: the structure evaluated again after everything else gives the same energy and forces
  (tolerance 1e-8 eV/atom, 1e-8 eV/Å).

A check that the potential cannot evaluate (it raises, or returns non-finite numbers) fails with the reason; a
check that does not apply (stress of a molecule) is recorded "n/a" with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from ase import Atoms

from mlffbench.errors import one_line
from mlffbench.units import GPA

FD_STEPS = (1e-3, 1e-2)
DIMER_END_A, DIMER_STEP_A = 8.0, 0.01
SCALES = np.linspace(0.95, 1.05, 101)
SEPARATION_A = 20.0
EXPLAINED = 0.25  # a jump counts where it exceeds this fraction of the local change along the path
TOLERANCES = {"energy_per_atom_invariance": 1e-5, "forces_invariance": 1e-4, "extensive_energy_per_atom": 1e-4,
              "extensive_forces": 1e-3, "energy_jump": 1e-3, "force_kink": 1e-2, "pressure_kink_GPa": 1e-2,
              "deterministic": 1e-8}
CHECKS = ("forces_fd", "stress_fd", "translation", "rotation", "permutation", "extensivity", "smoothness_dimer",
          "smoothness_compression", "determinism")


@dataclass
class Check:
    name: str
    status: str  # pass / fail / n/a
    value: float | None  # the measured number (the worst of a check's measures, in ``unit``)
    tolerance: float | None
    unit: str
    detail: str  # what was measured; the reason of a failure or n/a
    # every measure of a check with several (smoothness: the energy jump and the kink), so that a caller with
    # other tolerances (a reference labeler: mlffbench.data.labelers.checks) can judge each without parsing text
    measures: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class EvaluationError(RuntimeError):
    pass


def evaluate(calc, atoms: Atoms, stress: bool | None = None) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy (eV), forces (eV/Å) and (periodic) stress (eV/Å³ Voigt) of ``atoms`` by ``calc``; non-finite numbers
    are an EvaluationError."""
    a = atoms.copy()
    a.calc = calc
    try:
        e, f = float(a.get_potential_energy()), np.array(a.get_forces(), dtype=float)
        s = np.array(a.get_stress(), dtype=float) if (a.pbc.all() if stress is None else stress) else None
    except Exception as exc:  # noqa: BLE001 - whatever the model raises is the check's result
        raise EvaluationError(one_line(exc)) from None
    if s is not None and np.isnan(s).all():
        s = None  # a potential without stress (sGDML): the checks that need one are n/a
    if not (np.isfinite(e) and np.isfinite(f).all() and (s is None or np.isfinite(s).all())):
        raise EvaluationError("non-finite energy, forces or stress")
    return e, f, s


def _verdict(name: str, value: float, tolerance: float, unit: str, detail: str) -> Check:
    return Check(name, "pass" if value <= tolerance else "fail", float(value), float(tolerance), unit, detail)


# ----------------------------------------------------------------------------------------------- the checks
def forces_fd(calc, atoms: Atoms, rng) -> Check:
    _, f, _ = evaluate(calc, atoms)
    picks = sorted(set([0] + rng.choice(len(atoms), size=min(2, len(atoms)), replace=False).tolist()))[:3]
    worst = 0.0
    for i in picks:
        for k in range(3):
            errs = []
            for h in FD_STEPS:
                e = []
                for sign in (1, -1):
                    a = atoms.copy()
                    a.positions[i, k] += sign * h
                    e.append(evaluate(calc, a)[0])
                errs.append(abs(-(e[0] - e[1]) / (2 * h) - f[i, k]))
            worst = max(worst, min(errs))
    tol = 1e-2 + 1e-2 * float(np.abs(f).max())
    return _verdict("forces_fd", worst, tol, "eV/Å",
                    f"max |F - (-dE/dx)| over atoms {picks} x 3 components (central differences)")


def _strained(atoms: Atoms, eps: np.ndarray) -> Atoms:
    a = atoms.copy()
    a.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    return a


def stress_fd(calc, atoms: Atoms, rng) -> Check:
    if not atoms.pbc.all():
        return Check("stress_fd", "n/a", None, None, "GPa", "not periodic: no stress")
    _, _, s = evaluate(calc, atoms)
    if s is None:
        return Check("stress_fd", "n/a", None, None, "GPa", "the potential gives no stress")
    volume = atoms.get_volume()
    worst = 0.0
    for v, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        errs = []
        for h in FD_STEPS:
            e = []
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[i, j] += sign * h
                if i != j:
                    eps[j, i] += sign * h
                e.append(evaluate(calc, _strained(atoms, eps))[0])
            numeric = (e[0] - e[1]) / ((2 if i == j else 4) * h * volume)
            errs.append(abs(numeric - s[v]))
        worst = max(worst, min(errs))
    tol = 0.05 + 1e-2 * float(np.abs(s).max()) / GPA
    return _verdict("stress_fd", worst / GPA, tol, "GPa", "max |σ - (1/V) dE/dε| over the 6 Voigt components")


def _invariance(name: str, calc, atoms: Atoms, moved: Atoms, forces_map: Callable[[np.ndarray], np.ndarray],
                what: str) -> Check:
    e0, f0, _ = evaluate(calc, atoms)
    e1, f1, _ = evaluate(calc, moved)
    de, df = abs(e1 - e0) / len(atoms), float(np.abs(f1 - forces_map(f0)).max())
    ok = de <= TOLERANCES["energy_per_atom_invariance"] and df <= TOLERANCES["forces_invariance"]
    return Check(name, "pass" if ok else "fail", de, TOLERANCES["energy_per_atom_invariance"], "eV/atom",
                 f"{what}: |ΔE|/N {de:.2e} eV/atom, max |ΔF| {df:.2e} eV/Å (tolerance "
                 f"{TOLERANCES['forces_invariance']:g})")


def translation(calc, atoms: Atoms, rng) -> Check:
    moved = atoms.copy()
    moved.positions += rng.uniform(-2.0, 2.0, 3)
    return _invariance("translation", calc, atoms, moved, lambda f: f, "rigid translation by a random vector")


def rotation(calc, atoms: Atoms, rng) -> Check:
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    moved.positions = atoms.positions @ rot.T
    return _invariance("rotation", calc, atoms, moved, lambda f: f @ rot.T, "random rotation (cell too)")


def permutation(calc, atoms: Atoms, rng) -> Check:
    order = rng.permutation(len(atoms))
    return _invariance("permutation", calc, atoms, atoms[order], lambda f: f[order], "atoms re-ordered")


def extensivity(calc, atoms: Atoms, rng) -> Check:
    e0, f0, _ = evaluate(calc, atoms)
    if atoms.pbc.all():
        big, copies, what = atoms.repeat((2, 2, 2)), 8, "2x2x2 supercell"
    else:
        second = atoms.copy()
        second.positions += [np.ptp(atoms.positions[:, 0]) + SEPARATION_A, 0.0, 0.0]
        big, copies, what = atoms + second, 2, f"two copies {SEPARATION_A:g} Å apart"
        big.cell = [2 * (np.ptp(big.positions[:, 0]) + SEPARATION_A)] * 3
    e1, f1, _ = evaluate(calc, big)
    de = abs(e1 - copies * e0) / len(big)
    df = float(np.abs(f1 - np.tile(f0, (copies, 1))).max())
    ok = de <= TOLERANCES["extensive_energy_per_atom"] and df <= TOLERANCES["extensive_forces"]
    return Check("extensivity", "pass" if ok else "fail", de, TOLERANCES["extensive_energy_per_atom"], "eV/atom",
                 f"{what}: |E - {copies} E0|/N {de:.2e} eV/atom, max |ΔF| {df:.2e} eV/Å (tolerance "
                 f"{TOLERANCES['extensive_forces']:g})")


def _path_jumps(energies: np.ndarray, derivatives: np.ndarray, step: float) -> tuple[float, float, int, int]:
    """(largest energy jump, largest kink, where each is as a point index) along a path sampled
    at a uniform ``step``. An energy jump is a step's energy change minus the trapezoid integral of the derivative;
    a kink is a jump J in the derivative, seen as |third difference| / 2 ~ J. A smooth curve leaves O(step^3) in
    both, which on a steep repulsive wall is still sizeable in absolute terms, so only the parts that the step's
    own change cannot explain count (more than ``EXPLAINED`` of the largest first difference around them)."""
    change = np.abs(np.diff(energies))
    residual = np.abs(np.diff(energies) - step * (derivatives[1:] + derivatives[:-1]) / 2)
    jumps = np.where(residual > EXPLAINED * change, residual, 0.0)
    kink, at = 0.0, 0
    if derivatives.size > 3:
        third = np.abs(np.diff(derivatives, 3)) / 2
        first = np.abs(np.diff(derivatives))
        around = np.maximum(np.maximum(first[:-2], first[1:-1]), first[2:])
        kinks = np.where(third > EXPLAINED * around, third, 0.0)
        kink, at = float(kinks.max()), int(kinks.argmax()) + 1
    return float(jumps.max()), kink, int(jumps.argmax()), at


def smoothness_dimer(calc, atoms: Atoms, rng) -> Check:
    symbols, counts = np.unique(atoms.get_chemical_symbols(), return_counts=True)
    pair = list(symbols[np.argsort(-counts)][:2])
    pair = pair if len(pair) == 2 else pair * 2
    start = 0.8 * _shortest(atoms)
    r = np.arange(start, DIMER_END_A + DIMER_STEP_A / 2, DIMER_STEP_A)
    box = 2 * DIMER_END_A + 30.0
    energies, derivative = np.empty(r.size), np.empty(r.size)
    for k, d in enumerate(r):
        dimer = Atoms(pair, positions=[[0, 0, 0], [d, 0, 0]], cell=[box] * 3, pbc=atoms.pbc.all())
        dimer.center()
        e, f, _ = evaluate(calc, dimer, stress=False)
        energies[k], derivative[k] = e, -f[1, 0]  # dE/dr = -F_x on the second atom
    jump, kink, where, at = _path_jumps(energies, derivative, DIMER_STEP_A)
    ok = jump <= TOLERANCES["energy_jump"] and kink <= TOLERANCES["force_kink"]
    return Check("smoothness_dimer", "pass" if ok else "fail", jump, TOLERANCES["energy_jump"], "eV",
                 f"{pair[0]}-{pair[1]} dimer {start:.2f}-{DIMER_END_A:g} Å: energy jump {jump:.2e} eV (worst at "
                 f"{r[where]:.2f} Å), force kink {kink:.2e} eV/Å (at {r[at]:.2f} Å; tolerance "
                 f"{TOLERANCES['force_kink']:g})",
                 {"energy_jump": jump, "energy_jump_at_A": float(r[where]), "force_kink": kink,
                  "force_kink_at_A": float(r[at])})


def smoothness_compression(calc, atoms: Atoms, rng) -> Check:
    periodic = atoms.pbc.all()
    if periodic and evaluate(calc, atoms)[2] is None:
        return Check("smoothness_compression", "n/a", None, None, "eV", "the potential gives no stress")
    centre = atoms.positions.mean(axis=0)
    energies, derivative, scale = np.empty(SCALES.size), np.empty(SCALES.size), np.empty(SCALES.size)
    for k, s in enumerate(SCALES):
        a = atoms.copy()
        if periodic:
            a.set_cell(atoms.cell.array * s, scale_atoms=True)
        else:
            a.positions = centre + s * (atoms.positions - centre)
        e, f, stress = evaluate(calc, a)
        energies[k] = e
        if periodic:  # dE/ds = V tr(σ) / s; the kink is measured on the pressure -tr(σ)/3
            derivative[k] = a.get_volume() * stress[:3].sum() / s
            scale[k] = 3 * a.get_volume() / s * GPA
        else:
            derivative[k] = -float(np.sum(f * (atoms.positions - centre)))
            scale[k] = 1.0
    step = float(SCALES[1] - SCALES[0])
    jump, _, where, _ = _path_jumps(energies, derivative, step)
    _, kink, _, at = _path_jumps(energies, derivative / scale, step)  # pressure (GPa) or dE/ds (eV)
    unit, tol = ("GPa", TOLERANCES["pressure_kink_GPa"]) if periodic else ("eV", TOLERANCES["force_kink"])
    ok = jump <= TOLERANCES["energy_jump"] and kink <= tol
    return Check("smoothness_compression", "pass" if ok else "fail", jump, TOLERANCES["energy_jump"], "eV",
                 f"isotropic scaling {SCALES[0]:g}-{SCALES[-1]:g}: energy jump {jump:.2e} eV (worst at s="
                 f"{SCALES[where]:.3f}), {'pressure' if periodic else 'dE/ds'} kink {kink:.2e} {unit} "
                 f"(at s={SCALES[at]:.3f}; tolerance {tol:g})",
                 {"energy_jump": jump, ("pressure_kink_GPa" if periodic else "dE_ds_kink"): kink})


def _shortest(atoms: Atoms) -> float:
    from mlffbench.frames import shortest_distance

    d = shortest_distance([atoms], 6.0)
    return float(d) if d is not None and np.isfinite(d) else 1.0


CHECK_FUNCTIONS = {"forces_fd": forces_fd, "stress_fd": stress_fd, "translation": translation, "rotation": rotation,
                   "permutation": permutation, "extensivity": extensivity, "smoothness_dimer": smoothness_dimer,
                   "smoothness_compression": smoothness_compression}


def run_checks(calc, atoms: Atoms, seed: int) -> list[Check]:
    """Every check on ``atoms`` (labels and metadata dropped); each check's failure to evaluate is its result."""
    atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    rng = np.random.default_rng(seed)
    out = []
    try:
        first = evaluate(calc, atoms)
    except EvaluationError as exc:
        return [Check(name, "fail", None, None, "", f"cannot evaluate the structure: {exc}") for name in CHECKS]
    for name, func in CHECK_FUNCTIONS.items():
        try:
            out.append(func(calc, atoms, rng))
        except EvaluationError as exc:
            out.append(Check(name, "fail", None, None, "", f"evaluation failed: {exc}"))
    again = evaluate(calc, atoms)
    de = abs(again[0] - first[0]) / len(atoms)
    df = float(np.abs(again[1] - first[1]).max())
    worst = max(de, df)
    out.append(_verdict("determinism", worst, TOLERANCES["deterministic"], "eV/atom | eV/Å",
                        f"same structure again after {len(CHECK_FUNCTIONS)} checks: |ΔE|/N {de:.1e} eV/atom, "
                        f"max |ΔF| {df:.1e} eV/Å"))
    return out
