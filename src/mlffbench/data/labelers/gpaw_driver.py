"""GPAW driver: labels a batch of frames with plane-wave PBE DFT. Runs under Debian's /usr/bin/python3 (GPAW 22.8,
ASE 3.22), started by ``mpirun -np N python3 gpaw_driver.py job.json`` from the ``gpaw`` labeler. Standalone: it
imports nothing from mlffbench (the system python does not have it).

job.json: {"settings": {...}, "frames": [{"key", "out", "numbers", "positions", "cell", "pbc"}, ...]}
Each frame's result is written by rank 0 as JSON to its ``out`` path, atomically (temporary file + rename), as soon
as it is done, so a killed batch keeps its finished frames. Frames whose ``out`` exists already are skipped
(restart). Consecutive frames with the same atoms and cell share one GPAW calculator, so GPAW starts each SCF from
the previous frame's wavefunctions. An SCF that does not converge is a failed result for that frame (cached: the same
settings fail the same way), and the batch goes on with a fresh calculator.

``python3 gpaw_driver.py --info El ...`` prints GPAW/ASE versions and the PAW setup of each element as JSON.
"""

import json
import os
import re
import sys
import time
import traceback

# This file sits beside our own gpaw.py: drop the script's folder so ``import gpaw`` finds GPAW itself.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]


def setup_info(symbols):
    """Version, file and valence of the PBE PAW setup of each symbol (None where GPAW has no setup)."""
    import hashlib

    from gpaw.setup_data import search_for_file

    out = {}
    for symbol in symbols:
        try:
            path, source = search_for_file(symbol + ".PBE")
        except (RuntimeError, FileNotFoundError, OSError):
            out[symbol] = None
            continue
        valence = re.search(rb'<atom[^>]*valence="([0-9.]+)"', source)
        out[symbol] = {"file": os.path.basename(path), "md5": hashlib.md5(source).hexdigest()[:12],
                       "valence": float(valence.group(1)) if valence else None}
    return out


def setups_version():
    """Version of Debian's gpaw-data package (the PAW setup release), or 'unknown'."""
    import subprocess

    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "gpaw-data"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def info(symbols):
    import ase
    import gpaw

    return {"gpaw": gpaw.__version__, "ase": ase.__version__, "setups_version": setups_version(),
            "setups": setup_info(symbols)}


def kpoint_grid(cell, kspacing):
    """VASP KSPACING rule (TM23 Table S1 'min k-point density', 1/Å incl. 2π): N_i = max(1, ceil(2π|b_i|/Δk))."""
    import numpy as np

    recip = np.linalg.inv(np.asarray(cell, dtype=float)).T  # rows b_i without 2π
    return [max(1, int(np.ceil(2 * np.pi * np.linalg.norm(b) / kspacing - 1e-9))) for b in recip]


def make_calc(settings, atoms, txt):
    from gpaw import GPAW, PW, MethfesselPaxton

    kpts = settings.get("kpts") or kpoint_grid(atoms.cell, settings["kspacing"])
    extra = float(settings.get("extra_electrons_per_atom", 0.0))
    kwargs = dict(
        mode=PW(settings["ecut"]),
        xc="PBE",
        setups=settings.get("setups", "paw"),
        kpts={"size": kpts, "gamma": True},
        occupations=MethfesselPaxton(settings["smearing"], order=settings.get("mp_order", 1)),
        spinpol=False,  # TM23: no spin polarisation
        charge=-extra * len(atoms),  # TM23 Fig 9d (VASP NELECT): electrons added per atom; GPAW adds a background
        maxiter=settings.get("maxiter", 333),
        txt=txt,
    )
    if settings.get("convergence"):
        kwargs["convergence"] = dict(settings["convergence"])
    if settings.get("nbands") is not None:
        kwargs["nbands"] = settings["nbands"]
    if settings.get("mixer_beta") is not None:
        from gpaw import Mixer

        kwargs["mixer"] = Mixer(settings["mixer_beta"], 5, 50.0)
    return GPAW(**kwargs), kpts


def d_dos(calc, settings):
    """Total d-projected DOS per atom (both spins) on an energy grid relative to E_F, and the d-band centre.

    The centre is the d-DOS-weighted mean energy (TM23 Fig S4: "an average of the energies of the d-states weighted
    by their intensities") inside ``dos_window`` (default -10..+10 eV around E_F): the window keeps out semicore p
    states and the small d-projector weight of high plane-wave-like bands, which would otherwise move the centre
    by eV depending on the number of bands. Gaussian broadening ``dos_width`` (eV) for plots (Fig 9b/d, S6).
    """
    import numpy as np

    natoms = len(calc.atoms)
    ef = calc.get_fermi_level()
    width = float(settings.get("dos_width", 0.1))
    npts = int(settings.get("dos_npts", 2001))
    lo, hi = settings.get("dos_window") or (-10.0, 10.0)
    energies, total = None, None
    for a in range(natoms):
        e, ldos = calc.get_orbital_ldos(a, spin=0, angular="d", npts=npts, width=width)
        if energies is None:
            energies, total = np.asarray(e), np.array(ldos)
        else:
            total = total + np.interp(energies, e, ldos)
    rel = energies - ef
    per_atom = total * (2.0 if calc.get_number_of_spins() == 1 else 1.0) / natoms  # GPAW gives one spin channel
    inside = (rel >= lo) & (rel <= hi)
    x, y = rel[inside], per_atom[inside]
    centre = float(np.trapz(y * x, x) / np.trapz(y, x))
    occupied = x <= 0
    return {"energies": x.tolist(), "d_dos_per_atom": y.tolist(), "d_band_centre": centre, "window": [lo, hi],
            "d_electrons_below_ef": float(np.trapz(y[occupied], x[occupied]))}


def write_json(path, data):
    tmp = "%s.tmp%d" % (path, os.getpid())
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(tmp, "w") as fd:
        json.dump(data, fd)
    os.replace(tmp, path)


def label_batch(job):
    import numpy as np
    from ase import Atoms
    from gpaw import KohnShamConvergenceError
    from gpaw.mpi import world

    settings = job["settings"]
    txt = job.get("txt") or None
    todo = [f for f in job["frames"] if not os.path.exists(f["out"])]  # restart: skip finished frames
    calc, state = None, None
    for frame in todo:
        atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"], cell=frame["cell"], pbc=frame["pbc"])
        this_state = (tuple(frame["numbers"]), np.round(np.asarray(frame["cell"]), 10).tobytes(), tuple(frame["pbc"]))
        reused = calc is not None and this_state == state
        if not reused:
            calc, kpts = make_calc(settings, atoms, txt)
            state = this_state
        atoms.calc = calc
        start = time.time()
        result = {"key": frame["key"], "kpts": kpts, "reused_wavefunctions": reused}
        try:
            energy_extrapolated = atoms.get_potential_energy()  # sigma -> 0 extrapolation (not variational)
            free_energy = atoms.get_potential_energy(force_consistent=True)
            forces = atoms.get_forces()
            stress = atoms.get_stress(voigt=True) if all(frame["pbc"]) else None
            result.update(
                failed=False, free_energy=float(free_energy), energy_extrapolated=float(energy_extrapolated),
                forces=np.asarray(forces).tolist(), stress=None if stress is None else np.asarray(stress).tolist(),
                fermi_level=float(calc.get_fermi_level()), iterations=int(calc.get_number_of_iterations()),
            )
            if settings.get("pdos"):
                result["dos"] = d_dos(calc, settings)
            result["cache"] = True
        except KohnShamConvergenceError as exc:
            result.update(failed=True, reason="SCF did not converge in %d iterations (%s)"
                          % (settings.get("maxiter", 333), str(exc).strip() or "KohnShamConvergenceError"),
                          cache=True)
            calc, state = None, None  # never continue from an unconverged density
        except Exception as exc:  # noqa: BLE001 - one bad frame must not lose the batch
            result.update(failed=True, reason="%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                                                          else ""), cache=False,
                          traceback=traceback.format_exc()[-2000:])
            calc, state = None, None
        result["seconds"] = time.time() - start
        if world.rank == 0:
            write_json(frame["out"], result)
        world.barrier()


def main(argv):
    if len(argv) >= 1 and argv[0] == "--info":
        print(json.dumps(info(argv[1:])))
        return 0
    with open(argv[0]) as fd:
        job = json.load(fd)
    label_batch(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
