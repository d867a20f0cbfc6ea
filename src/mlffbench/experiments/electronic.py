"""Electronic structure near the Fermi level (Metal-43 SI Figs 11-18): how the sum of the Kohn-Sham eigenvalues
below the Fermi level changes when the Fermi level is shifted, per metal and smearing method.

For one element: its ground-state prototype (``mlffbench.elements``: fcc, bcc, hcp, omega, simple hexagonal) as a
primitive cell (1 atom fcc/bcc/simple hexagonal, 2 hcp, 3 omega-Ti) at a lattice constant from

* ``lattice: ase`` (default): ASE's ``reference_states`` (experimental). Where ASE's structure is the element's
  prototype its a (and c/a) are used as they are; otherwise ASE's reference volume per atom (from
  ``ase.build.bulk``) is kept and the prototype's c/a from ``mlffbench.data.build.initial_guess`` (Li fcc from bcc,
  Ti omega from hcp, In fcc from bct, Hg simple hexagonal from rhombohedral);
* ``lattice: gpaw``: that cell's volume relaxed with GPAW itself (E(V) at fixed c/a, 5 points ±8 %, recentred
  while the lowest energy is at an edge, Birch-Murnaghan fit; Methfessel-Paxton order 1 at the same width).

Then one GPAW SCF per smearing method (plane waves, PBE, PAW; k-points from a spacing, Gamma-centred), no spin
polarisation. From the converged eigenvalues ε_nk, k-weights w_k (sum 1) and the method's own Fermi level E_F:

    S(Δ) = 2/N_atoms Σ_nk w_k f((ε_nk − E_F − Δ)/σ) ε_nk          (eV/atom; 2 = spin degeneracy)

with that method's occupation function f (GPAW 22.8's formulas: Fermi-Dirac 1/(1+e^x); "gaussian" = Methfessel-
Paxton order 0 = erfc(x)/2; "methfessel-paxton" = order 1) on the frozen eigenvalues (rigid bands: the shifted
level is not self-consistent). Reported per method:

* ``S_minus_S0``: S(Δ) − S(0) on the shift grid (the paper's curves; absolute eigenvalues, GPAW's energy zero);
* ``S_ef_minus_S0``: the same with eigenvalues measured from E_F (ε − E_F), which does not depend on the energy zero;
* ``sensitivity`` = |S(+0.2) − S(−0.2)| / 0.4 eV (eV/atom per eV), the scalar this package correlates with the
  force errors; ``slope_0`` = dS/dΔ at 0 (analytic). Both ≈ E_F·DOS(E_F): they carry the code's energy zero
  (GPAW: average electrostatic potential), so compare them within one code only;
* ``dos_ef``: the smeared DOS at E_F, 2/N_atoms Σ w_k δ̃((ε_nk − E_F)/σ)/σ (states/eV/atom, δ̃ = −df/dx; for
  Methfessel-Paxton order 1 it may dip below the Gaussian value), zero-independent;
* ``curvature`` = [S_F(+0.2) + S_F(−0.2) − 2 S_F(0)] / 0.2², S_F with ε − E_F: ≈ the DOS averaged over ±0.2 eV;
* checks: ``occupation_error`` = max |f_ours − f_GPAW| over the states at Δ = 0, ``electron_error`` = N(0) − the
  valence electrons per atom.

GPAW runs under Debian's /usr/bin/python3 through ``electronic_driver.py`` (mpirun, as the gpaw labeler). Each SCF
is cached as JSON under ``$MLFFBENCH_GPAW_CACHE/electronic`` (default ~/.cache/mlffbench/gpaw/electronic), keyed by
the cell, settings, GPAW version and setup checksum, so a rerun is free.

    python -m mlffbench.experiments.electronic Al Cu Ti [--png fig.png] [--json out.json] [--ecut 300] ...
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.special import erfc

from mlffbench import elements as elements_db
from mlffbench.config.tasks import SMEARING_METHODS, SENSITIVITY_STEP
from mlffbench.config.tasks import ElectronicConfig as Settings
from mlffbench.errors import MlffbenchError

DRIVER = Path(__file__).with_name("electronic_driver.py")
NOT_INSTALLED = "GPAW not installed: run scripts/install_gpaw.sh"
#: config name -> GPAW occupations (name, Methfessel-Paxton order); "gaussian" is Methfessel-Paxton order 0 in GPAW
METHODS = dict(zip(SMEARING_METHODS, (("fermi-dirac", None), ("methfessel-paxton", 0), ("methfessel-paxton", 1))))
STEP = SENSITIVITY_STEP  # eV: the ±Δ of the scalar sensitivity and the curvature
MAGNETIC = ("Fe", "Co", "Ni")  # ferromagnetic ground states, run non-magnetic here
# the free-electron tail of Fermi-Dirac: f(12) = 6e-6, so bands are needed (and converged) up to E_F + Δmax + 12σ
TAIL_WIDTHS = 12.0


# ---------------------------------------------------------------------------------------------- settings


def grid(settings: Settings) -> np.ndarray:
    """The Fermi-level shifts Δ (eV) of the curves."""
    lo, hi, n = settings.shifts
    return np.linspace(float(lo), float(hi), int(n))


def need_above_ef(settings: Settings) -> float:
    """eV above E_F to which every band is converged and covered (3 eV unless the grid reaches further)."""
    return max(3.0, float(settings.shifts[1]) + TAIL_WIDTHS * settings.width_eV)


# ---------------------------------------------------------------------------------------------- the math


def occupation(method: str, x) -> tuple[np.ndarray, np.ndarray]:
    """(f, −df/dx) of a smearing method at x = (ε − μ)/σ, as GPAW 22.8 computes them (gpaw/occupations.py)."""
    x = np.asarray(x, dtype=float)
    name, order = METHODS[method]
    if name == "fermi-dirac":
        f = 1.0 / (1.0 + np.exp(np.clip(x, -100.0, 100.0)))
        return f, f * (1.0 - f)
    g = np.exp(-x * x)
    f = 0.5 * erfc(x)
    d = g / math.sqrt(math.pi)
    for i in range(1, order + 1):  # Methfessel-Paxton: A_i H_{2i-1}(x) e^{-x²}, A_i = (-1)^i / (i! 4^i √π)
        a = (-1) ** i / (math.factorial(i) * 4**i * math.sqrt(math.pi))
        f = f + a * _hermite(2 * i - 1, x) * g
        d = d + a * _hermite(2 * i, x) * g
    return f, d


def _hermite(n: int, x: np.ndarray) -> np.ndarray:
    """Physicists' Hermite polynomial H_n(x)."""
    h0, h1 = np.ones_like(x), 2 * x
    if n == 0:
        return h0
    for k in range(2, n + 1):
        h0, h1 = h1, 2 * x * h1 - 2 * (k - 1) * h0
    return h1


def band_sum(eps: np.ndarray, weights: np.ndarray, level: float, width: float, method: str, n_atoms: int,
             reference: float = 0.0) -> tuple[float, float]:
    """(S, N): the smeared sum of eigenvalues (measured from ``reference``) and of electrons below ``level``,
    per atom, no spin polarisation (2 electrons per state); ``weights`` sum to 1."""
    f, _ = occupation(method, (eps - level) / width)
    wf = 2.0 * weights[:, None] * f / n_atoms
    return float((wf * (eps - reference)).sum()), float(wf.sum())


def analyse(eps, weights, fermi: float, width: float, method: str, n_atoms: int, shifts) -> dict:
    """S(Δ) − S(0) curves, the scalar sensitivity, slope, DOS(E_F) and curvature of one SCF (see the module
    docstring); ``eps`` (k, n) eV, ``weights`` (k,) normalised here."""
    eps = np.asarray(eps, dtype=float)
    weights = np.asarray(weights, dtype=float)
    weights = weights / weights.sum()
    shifts = np.asarray(shifts, dtype=float)
    s0, n0 = band_sum(eps, weights, fermi, width, method, n_atoms)
    sf0, _ = band_sum(eps, weights, fermi, width, method, n_atoms, reference=fermi)
    S, N, SF = [], [], []
    for delta in shifts:
        s, n = band_sum(eps, weights, fermi + delta, width, method, n_atoms)
        sf, _ = band_sum(eps, weights, fermi + delta, width, method, n_atoms, reference=fermi)
        S.append(s - s0)
        N.append(n - n0)
        SF.append(sf - sf0)
    plus, _ = band_sum(eps, weights, fermi + STEP, width, method, n_atoms)
    minus, _ = band_sum(eps, weights, fermi - STEP, width, method, n_atoms)
    fplus, _ = band_sum(eps, weights, fermi + STEP, width, method, n_atoms, reference=fermi)
    fminus, _ = band_sum(eps, weights, fermi - STEP, width, method, n_atoms, reference=fermi)
    _, d = occupation(method, (eps - fermi) / width)
    wd = 2.0 * weights[:, None] * d / (width * n_atoms)  # d/dΔ of each state's occupation at Δ = 0
    return {"S0": s0, "N0": n0, "S_minus_S0": S, "S_ef_minus_S0": SF, "N_minus_N0": N,
            "sensitivity": abs(plus - minus) / (2 * STEP), "slope_0": float((wd * eps).sum()),
            "dos_ef": float(wd.sum()), "curvature": (fplus + fminus - 2 * sf0) / STEP**2}


# ---------------------------------------------------------------------------------------------- the cell


def reference_lattice(symbol: str, lattice: str) -> tuple[float, float | None, str]:
    """(a, c, source) of the prototype ``lattice`` at ASE's reference state (see the module docstring)."""
    from ase.build import bulk
    from ase.data import atomic_numbers, reference_states

    from mlffbench.data import build

    ref = reference_states[atomic_numbers[symbol]] or {}
    a, c = build.initial_guess(symbol, lattice)
    complex_ = getattr(build, "COMPLEX", {})  # experimental structures with atoms on general positions
    if lattice in complex_:
        return a, c, f"experimental structure ({complex_[lattice][-1]})"
    if ref.get("symmetry") == lattice:
        return a, c, f"ASE reference_states ({lattice}, experimental)"
    try:
        ase_cell = bulk(symbol)  # ASE's reference structure (bct In, rhombohedral Hg, ...)
    except Exception as exc:  # noqa: BLE001 - e.g. alpha-Mn has no basis in ASE
        raise MlffbenchError(f"{symbol}: ASE has no reference structure to take a volume from ({exc})") from None
    volume = ase_cell.get_volume() / len(ase_cell)
    guess = build.prototype(symbol, lattice, a, c)
    scale = (volume / (guess.get_volume() / len(guess))) ** (1 / 3)
    return (a * scale, None if c is None else c * scale,
            f"ASE reference_states volume of {ref.get('symmetry')} {symbol} ({volume:.2f} Å³/atom, experimental) "
            f"in the {lattice} prototype")


#: primitive vectors (rows, in units of the conventional ones) of the centred conventional cells build makes
CENTRED = {"alpha_Mn": [[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]],  # I-43m: body-centred, 58 -> 29
           "Cmce": [[0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]}  # C-centred (1/2, 1/2, 0), 8 -> 4


def primitive_cell(symbol: str, lattice: str, a: float, c: float | None):
    """The smallest cell of the prototype: 1 atom fcc/bcc/simple hexagonal, 2 hcp, 3 omega; a centred structure
    of ``build`` (alpha-Mn, Cmce Ga) reduced to its primitive cell (half the atoms)."""
    from ase import Atoms
    from ase.build import bulk

    from mlffbench.data import build

    if lattice in ("fcc", "bcc"):
        return bulk(symbol, lattice, a=a)
    if lattice == "hcp":
        return bulk(symbol, "hcp", a=a, c=c)
    atoms = build.prototype(symbol, lattice, a, c)  # MlffbenchError for a lattice build cannot make
    if lattice not in CENTRED:
        return atoms
    cell = np.asarray(CENTRED[lattice]) @ np.asarray(atoms.cell)
    frac = np.linalg.solve(cell.T, atoms.positions.T).T % 1.0
    frac = np.round(frac, 6) % 1.0  # the centring copies of an atom land on the same point
    unique = np.unique(frac, axis=0)
    if len(unique) * 2 != len(atoms):
        raise MlffbenchError(f"{symbol}: the {lattice} cell did not reduce to half its {len(atoms)} atoms")
    return Atoms(symbol * len(unique), scaled_positions=unique, cell=cell, pbc=True)


def buildable(symbol: str) -> str | None:
    """Why the experiment cannot build ``symbol``'s ground state, else None."""
    from mlffbench.data import build

    lattice = elements_db.get(symbol).lattice
    if lattice not in build.BUILDABLE:
        return (f"ground state '{lattice}' of {symbol} is not buildable as a small cell (buildable: "
                f"{', '.join(build.BUILDABLE)})")
    return None


# ---------------------------------------------------------------------------------------------- GPAW


def gpaw_info(symbols=()) -> dict | None:
    """GPAW/ASE versions and PAW setups (None when /usr/bin/python3 cannot import gpaw). One driver call for all 43
    metals (and ``symbols``), cached per process, so planning a run of many metals asks GPAW once."""
    from mlffbench.data.labelers.gpaw import SYSTEM_PYTHON, _info

    return _info(SYSTEM_PYTHON, tuple(sorted(set(elements_db.METAL43) | set(symbols))))


def refuse(symbol: str) -> str | None:
    """Why the experiment cannot run for ``symbol`` (one line), else None."""
    why = buildable(symbol)
    if why:
        return why
    info = gpaw_info([symbol])
    if info is None:
        return NOT_INSTALLED
    if not info["setups"].get(symbol):
        return f"no GPAW PBE PAW setup for {symbol} in gpaw-data (/usr/share/gpaw-setups)"
    return None


def cache_dir() -> Path:
    from mlffbench.data.labelers.gpaw import default_cache_dir

    return default_cache_dir() / "electronic"


def kpoints(cell, kspacing: float) -> list[int]:
    from mlffbench.data.labelers.gpaw_driver import kpoint_grid

    return kpoint_grid(np.asarray(cell), kspacing)


def _run_spec(atoms, settings: Settings, occupations: dict, info: dict, eigenvalues: bool = True) -> dict:
    symbol = atoms.get_chemical_symbols()[0]
    scf = {"ecut": float(settings.ecut), "kpts": kpoints(atoms.cell, settings.kspacing),
           "occupations": occupations, "need_above_ef": need_above_ef(settings), "maxiter": 300,
           "eigenvalues": eigenvalues}
    blob = {"numbers": atoms.numbers.tolist(), "positions": np.round(atoms.positions, 6).tolist(),
            "cell": np.round(np.asarray(atoms.cell), 6).tolist(), "settings": scf, "gpaw": info["gpaw"],
            "setup": info["setups"][symbol]["md5"], "spinpol": False}
    key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:32]
    return {"key": key, "numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
            "cell": np.asarray(atoms.cell).tolist(), "pbc": [True, True, True], "settings": scf}


def _occupations(method: str, width: float) -> dict:
    name, order = METHODS[method]
    return {"name": name, "width": float(width)} if order is None else {"name": name, "width": float(width),
                                                                        "order": order}


def _cached(key: str) -> dict | None:
    try:
        result = json.loads((cache_dir() / key[:2] / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("key") == key else None


def run_scfs(runs: list[dict], settings: Settings, deadline: float) -> list[dict]:
    """Each run's driver result: cached ones from disk, the rest in one mpirun (killed at ``deadline``, a
    ``time.monotonic()``; unfinished runs come back failed, not cached)."""
    from mlffbench.data.labelers.gpaw import SYSTEM_PYTHON

    results = [_cached(r["key"]) for r in runs]
    for r in results:
        if r is not None:
            r["cached"] = True
    todo = [i for i, r in enumerate(results) if r is None]
    if not todo:
        return results
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="electronic-", dir=base))
    try:
        job = {"txt": str(work / "gpaw.txt"), "runs": [{**runs[i], "out": str(work / f"{runs[i]['key']}.json")}
                                                      for i in todo]}
        (work / "job.json").write_text(json.dumps(job))
        cmd = [SYSTEM_PYTHON, str(DRIVER), str(work / "job.json")]
        if settings.mpi_ranks > 1:
            cmd = ["mpirun", "-np", str(settings.mpi_ranks)] + (["--allow-run-as-root"] if os.geteuid() == 0 else []) \
                + (["--oversubscribe"] if settings.mpi_ranks > (os.cpu_count() or 1) else []) + cmd
        error = _launch(cmd, work, deadline - time.monotonic())
        for i in todo:
            out = work / f"{runs[i]['key']}.json"
            try:
                result = json.loads(out.read_text())
            except (OSError, ValueError):
                results[i] = {"key": runs[i]["key"], "failed": True,
                              "reason": error or "the GPAW driver wrote no result"}
                continue
            if result.get("cache"):
                path = base / runs[i]["key"][:2] / f"{runs[i]['key']}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(out, path)
            result["cached"] = False
            results[i] = result
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _launch(cmd: list[str], work: Path, timeout: float) -> str | None:
    """Run the driver in its own process group (so a timeout kills every MPI rank); the one-line problem or None."""
    from mlffbench.data.labelers.gpaw import _clean_env

    if timeout <= 0:
        return "timed out before the SCF started (tasks.electronic.timeout_s)"
    try:
        proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_clean_env(1), start_new_session=True)
    except FileNotFoundError as exc:
        raise MlffbenchError(f"electronic: cannot start {exc.filename} ({NOT_INSTALLED})") from None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"timed out after {timeout:.0f} s (tasks.electronic.timeout_s)"
    if proc.returncode != 0:
        return f"GPAW driver exited with status {proc.returncode}: " + " | ".join(out.strip().splitlines()[-3:])
    return None


def relax_volume(symbol: str, lattice: str, a: float, c: float | None, settings: Settings, info: dict,
                 deadline: float) -> tuple[float, float | None, dict]:
    """GPAW volume of the prototype at fixed c/a: 5-point E(V) scans (±8 %) recentred while the lowest energy is at
    an edge (at most 4 scans), then a Birch-Murnaghan fit. Returns (a, c, record)."""
    from ase import units
    from ase.eos import EquationOfState

    occupations = _occupations("methfessel-paxton", settings.width_eV)
    factors = np.linspace(0.92, 1.08, 5)  # volume factors
    centre, scans = 1.0, []
    for _ in range(4):
        cells = [primitive_cell(symbol, lattice, a * (centre * f) ** (1 / 3),
                                None if c is None else c * (centre * f) ** (1 / 3)) for f in factors]
        results = run_scfs([_run_spec(cell, settings, occupations, info, eigenvalues=False) for cell in cells],
                           settings, deadline)
        bad = [r for r in results if r.get("failed")]
        if bad:
            raise MlffbenchError(f"{symbol}: GPAW volume scan failed: {bad[0]['reason']}")
        energies = [r["free_energy"] / r["n_atoms"] for r in results]
        scans += [(centre * f, e) for f, e in zip(factors, energies)]
        low = int(np.argmin(energies))
        if 0 < low < len(factors) - 1:
            break
        centre *= factors[low]
    else:
        raise MlffbenchError(f"{symbol}: GPAW volume scan found no minimum within 4 scans")
    start = primitive_cell(symbol, lattice, a, c)
    v_ref = start.get_volume() / len(start)
    pts = sorted(scans)
    eos = EquationOfState([v_ref * s for s, _ in pts], [e for _, e in pts], eos="birchmurnaghan")
    v0, e0, bulk_modulus = eos.fit()
    scale = (v0 / v_ref) ** (1 / 3)
    return (a * scale, None if c is None else c * scale,
            {"volume_per_atom": float(v0), "energy_per_atom": float(e0),
             "bulk_modulus_GPa": float(bulk_modulus / units.GPa),
             "points": len(pts), "smearing": "methfessel-paxton order 1", "start_volume_per_atom": float(v_ref)})


# ---------------------------------------------------------------------------------------------- one element


def run_element(symbol: str, settings: Settings | dict | None = None) -> dict:
    """The experiment for one element (see the module docstring): a JSON-able dict with the cell, the settings,
    and per method either ``status: ok`` with the curves and scalars or ``status: failed`` with the reason.
    Raises MlffbenchError (one line) when the element cannot run or no method succeeded."""
    if not isinstance(settings, Settings):
        from mlffbench.config.schema import from_dict

        settings = from_dict(Settings, settings or {}, "electronic")
    settings.check("electronic")
    why = refuse(symbol)
    if why:
        raise MlffbenchError(f"{symbol}: {why}" if why != NOT_INSTALLED else NOT_INSTALLED)
    info = gpaw_info([symbol])
    started = time.monotonic()
    deadline = started + settings.timeout_s
    lattice = elements_db.get(symbol).lattice
    a, c, source = reference_lattice(symbol, lattice)
    eos = None
    if settings.lattice == "gpaw":
        a, c, eos = relax_volume(symbol, lattice, a, c, settings, info, deadline)
        source = f"GPAW-relaxed volume (PBE, this run's settings) in the shape of the {source}"
    atoms = primitive_cell(symbol, lattice, a, c)
    methods = list(settings.methods)
    runs = [_run_spec(atoms, settings, _occupations(m, settings.width_eV), info) for m in methods]
    raw = run_scfs(runs, settings, deadline)
    shifts = grid(settings)
    valence = info["setups"][symbol].get("valence")
    out_methods = {}
    for method, r in zip(methods, raw):
        if r.get("failed"):
            out_methods[method] = {"status": "failed", "reason": r["reason"]}
            continue
        eps = np.asarray(r["eigenvalues"])
        curves = analyse(eps, r["weights"], r["fermi_level"], settings.width_eV, method, r["n_atoms"], shifts)
        f, _ = occupation(method, (eps - r["fermi_level"]) / settings.width_eV)
        out_methods[method] = {
            "status": "ok", "fermi_level": r["fermi_level"], "free_energy_per_atom": r["free_energy"] / r["n_atoms"],
            "iterations": r["iterations"], "seconds": r["seconds"], "cached": r.get("cached", False),
            "nbands": r["nbands"], "n_ibz": r["n_ibz"], "top_band_above_ef": r["top_band_above_ef"],
            "bands_cover": r["bands_cover"], **curves,
            "occupation_error": float(np.abs(f - np.asarray(r["occupations"])).max()),
            "electron_error": None if valence is None else curves["N0"] - float(valence),
        }
    notes = [f"{symbol} is ferromagnetic; run non-spin-polarised (Metal-43 does not state its spin setting)"] \
        if symbol in MAGNETIC else []
    notes += [f"{method}: the bands reach only {m['top_band_above_ef']:.2f} eV above E_F at some k-point, so S(Δ) "
              "misses states near the top of the grid" for method, m in out_methods.items()
              if m["status"] == "ok" and not m["bands_cover"]]
    if not any(m["status"] == "ok" for m in out_methods.values()):
        first = next(iter(out_methods.values()))
        raise MlffbenchError(f"{symbol}: no smearing method finished: {first['reason']}")
    return {
        "element": symbol, "lattice": lattice, "a": a, "c": c, "lattice_source": source, "eos": eos,
        "n_atoms": len(atoms), "cell": np.asarray(atoms.cell).tolist(), "kpts": runs[0]["settings"]["kpts"],
        "settings": asdict(settings), "shifts": shifts.tolist(), "step_eV": STEP, "gpaw": info["gpaw"],
        "setup": info["setups"][symbol], "spin_polarised": False, "notes": notes,
        "methods": out_methods, "seconds": time.monotonic() - started,
    }


# ---------------------------------------------------------------------------------------------- command line


def main(argv=None) -> list[dict]:
    import argparse

    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elements", nargs="+")
    parser.add_argument("--methods", nargs="+", default=defaults.methods)
    parser.add_argument("--width", type=float, default=defaults.width_eV, help="smearing width, eV")
    parser.add_argument("--shifts", type=float, nargs=3, default=defaults.shifts, metavar=("MIN", "MAX", "N"))
    parser.add_argument("--ecut", type=float, default=defaults.ecut)
    parser.add_argument("--kspacing", type=float, default=defaults.kspacing)
    parser.add_argument("--mpi-ranks", type=int, default=defaults.mpi_ranks)
    parser.add_argument("--lattice", default=defaults.lattice, choices=("ase", "gpaw"))
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="per element, s")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--png", help="write the small-multiples figure here")
    args = parser.parse_args(argv)
    settings = Settings(methods=args.methods, width_eV=args.width, shifts=[args.shifts[0], args.shifts[1],
                                                                           int(args.shifts[2])],
                        ecut=args.ecut, kspacing=args.kspacing, mpi_ranks=args.mpi_ranks, lattice=args.lattice,
                        timeout_s=args.timeout)
    results = []
    for symbol in args.elements:
        start = time.perf_counter()
        try:
            r = run_element(symbol, settings)
        except MlffbenchError as exc:
            print(f"{symbol:<3} n/a: {exc}", flush=True)
            results.append({"element": symbol, "error": str(exc)})
            continue
        r["wall_s"] = time.perf_counter() - start
        results.append(r)
        line = "  ".join(f"{m} sens {v['sensitivity']:.3f} DOS {v['dos_ef']:.3f} E_F {v['fermi_level']:.2f}"
                         if v["status"] == "ok" else f"{m} failed: {v['reason']}" for m, v in r["methods"].items())
        print(f"{symbol:<3} {r['lattice']:<6} {r['n_atoms']} atom(s) k {'x'.join(map(str, r['kpts']))}  "
              f"{r['wall_s']:6.1f} s  {line}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.png:
        from mlffbench.report.electronic import curves_figure
        from mlffbench.report.figures import png_bytes

        Path(args.png).write_bytes(png_bytes(curves_figure([r for r in results if "methods" in r]), dpi=110))
    return results


if __name__ == "__main__":
    main()
