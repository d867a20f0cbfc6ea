"""GPAW driver of the electronic-structure experiment (Metal-43 SI Figs 11-18): one plane-wave PBE SCF per run
(a cell and a smearing method), returning the converged Kohn-Sham eigenvalues of every irreducible k-point, the
k-point weights, the Fermi level and GPAW's own occupation numbers. Runs under Debian's /usr/bin/python3 (GPAW 22.8,
ASE 3.22), started by ``mpirun -np N python3 electronic_driver.py job.json`` from
``mlffbench.experiments.electronic``. Standalone: it imports nothing from mlffbench (the system python does not have
it).

job.json: {"txt": path or null, "runs": [{"key", "out", "numbers", "positions", "cell", "pbc", "settings"}, ...]}
settings: ecut (eV), kpts ([n1, n2, n3], Gamma-centred), occupations ({"name": "fermi-dirac" | "methfessel-paxton",
"width": eV, "order": int}), need_above_ef (eV: every band below E_F + this is converged and the highest band at
every k-point must lie above it, else the run is repeated with more bands), maxiter, eigenvalues (bool: False for
the lattice-constant scan, which needs only energies).

Each run's result is written by rank 0 to its ``out`` path atomically as soon as it is done; runs whose ``out``
exists are skipped (restart). No spin polarisation (see the experiment's module docstring).
"""

import json
import os
import sys
import time
import traceback

# drop the script's folder from sys.path so that nothing beside this file shadows gpaw or ase
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

MAX_BAND_RETRIES = 3


def write_json(path, data):
    tmp = "%s.tmp%d" % (path, os.getpid())
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(tmp, "w") as fd:
        json.dump(data, fd)
    os.replace(tmp, path)


def scf(atoms, settings, extra_bands, txt):
    """One SCF; returns (calc, energies) or raises (KohnShamConvergenceError when it does not converge)."""
    from gpaw import GPAW, PW

    occ = settings["occupations"]
    occupations = {"name": occ["name"], "width": float(occ["width"])}
    if occ["name"] == "methfessel-paxton":
        occupations["order"] = int(occ.get("order", 0))
    need = float(settings.get("need_above_ef", 3.0))
    calc = GPAW(
        mode=PW(float(settings["ecut"])),
        xc="PBE",
        kpts={"size": list(settings["kpts"]), "gamma": True},
        occupations=occupations,
        spinpol=False,  # Metal-43 does not state it; Fe/Co/Ni are run non-magnetic (a stated deviation)
        # negative nbands = the occupied bands + this many empty ones (GPAW's rule)
        nbands=-int(extra_bands),
        # converge every band below E_F + need (GPAW: 'CBM+x' with no gap counts from E_F), not only the occupied
        # ones: the shifted Fermi level reaches into the empty bands
        convergence={"bands": "CBM+%g" % need},
        maxiter=int(settings.get("maxiter", 300)),
        txt=txt,
    )
    atoms.calc = calc
    free = atoms.get_potential_energy(force_consistent=True)
    extrapolated = atoms.get_potential_energy()
    return calc, float(free), float(extrapolated)


def one_run(run, txt):
    import numpy as np
    from ase import Atoms

    settings = run["settings"]
    atoms = Atoms(numbers=run["numbers"], positions=run["positions"], cell=run["cell"], pbc=run["pbc"])
    need = float(settings.get("need_above_ef", 3.0))
    extra = int(settings.get("extra_bands") or 4 + 3 * len(atoms))  # doubled below while too few
    want_eigs = bool(settings.get("eigenvalues", True))
    for attempt in range(MAX_BAND_RETRIES + 1):
        calc, free, extrapolated = scf(atoms, settings, extra, txt)
        ef = float(calc.get_fermi_level())
        nk = len(calc.get_ibz_k_points())
        eps = np.array([calc.get_eigenvalues(kpt=k, spin=0) for k in range(nk)])
        top = float(eps[:, -1].min() - ef)  # the lowest top band over k, relative to E_F
        if not want_eigs or top >= need or attempt == MAX_BAND_RETRIES:
            break
        extra *= 2  # too few empty bands to reach E_F + need at some k-point: repeat with twice as many
    result = {"key": run["key"], "failed": False, "fermi_level": ef, "free_energy": free,
              "energy_extrapolated": extrapolated, "n_atoms": len(atoms), "kpts": list(settings["kpts"]),
              "n_ibz": nk, "nbands": int(eps.shape[1]), "top_band_above_ef": top, "bands_cover": top >= need,
              "nelectrons": float(calc.get_number_of_electrons()),
              "iterations": int(calc.get_number_of_iterations()), "volume": float(atoms.get_volume())}
    if want_eigs:
        weights = np.asarray(calc.get_k_point_weights(), dtype=float)
        # GPAW's occupations carry the k-point weight and the spin degeneracy: divide both out (0..1 per state;
        # Methfessel-Paxton can go slightly outside)
        occ = np.array([calc.get_occupation_numbers(kpt=k, spin=0) for k in range(nk)])
        result.update(eigenvalues=eps.tolist(), weights=weights.tolist(),
                      occupations=(occ / (2.0 * weights[:, None])).tolist())
    return result


def run_batch(job):
    from gpaw import KohnShamConvergenceError
    from gpaw.mpi import world

    txt = job.get("txt") or None
    for run in job["runs"]:
        if os.path.exists(run["out"]):  # restart: finished runs are kept
            continue
        start = time.time()
        try:
            result = one_run(run, txt)
        except KohnShamConvergenceError as exc:
            result = {"key": run["key"], "failed": True, "cache": True,
                      "reason": "SCF did not converge in %d iterations (%s)"
                      % (run["settings"].get("maxiter", 300), str(exc).strip() or "KohnShamConvergenceError")}
        except Exception as exc:  # noqa: BLE001 - one bad run must not lose the others
            result = {"key": run["key"], "failed": True, "cache": False,
                      "reason": "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""),
                      "traceback": traceback.format_exc()[-2000:]}
        result["seconds"] = time.time() - start
        result.setdefault("cache", True)
        if world.rank == 0:
            write_json(run["out"], result)
        world.barrier()


def main(argv):
    with open(argv[0]) as fd:
        job = json.load(fd)
    run_batch(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
