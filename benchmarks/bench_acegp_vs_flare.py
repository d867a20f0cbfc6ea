"""ACE B2 sparse GP: mlffbench's native ``acegp`` vs FLARE 1.4.0 on identical data, descriptor, sparse set and
hyperparameters, side by side in one run.

Data: the mlearn Cu training/test sets (``../shared/data/mlearn/Cu``, frames with near-orthorhombic cells and 32-108
atoms -- FLARE 1.4.0 can miss neighbours in strongly skewed cells) or, when absent (or ``--data emt``), rattled
EMT-labelled fcc Cu cells of 32-108 atoms; by default the training mean energy per atom is subtracted from all energy
labels (``--energy-reference``). Both sides read the same extxyz files.

Every phase runs in a fresh process per side (ours: this script with ``--worker``; FLARE: the FLARE venv's python
with the inline ``FLARE_WORKER`` script, which reuses ``src/mlffbench/models/flare_driver.py``'s helpers), and only
the phase itself is timed inside that process (``time.perf_counter``), after an untimed warm-up frame:

  descriptors  descriptors + their gradients of every training frame: ours ``AceDescriptor.environments(atoms,
               gradients=True)``; FLARE ``Structure(cell, species, positions, rc, [B2])`` (computes both)
  train        fit with fixed hyperparameters. ours ``AceGPModel().fit`` (includes choosing the sparse set by
               FLARE's max-variance rule); FLARE: Structures + ``add_training_structure`` +
               ``add_specific_environments`` (our sparse set, given) + ``update_matrices_QR``. Then prediction
               (E, F, S) of the test frames: ours ``AceGPPotential.evaluate``; FLARE ``Structure`` +
               ``SparseGP.predict_mean`` (its mean-only path; FLARE's mapped fast path exists only inside LAMMPS)
  optimise     the same fit followed by hyperparameter optimisation. ours: L-BFGS-B over log-hyperparameters;
               FLARE: ``flare.bffs.sgp.sparse_gp.optimize_hyperparameters(method="L-BFGS-B")`` over the raw values
               (FLARE's own routine, unbounded as by default). Same start, same iteration cap and gtol.
  scaling      prediction cost (E, F, S) on rattled bulk fcc Cu supercells of ~100 to ~11,000 atoms with the model
               trained in ``train``; log-log slope of time vs atoms.

Peak memory: the phase process's peak resident set (Linux ``VmHWM``, reset via ``/proc/self/clear_refs`` just before
the phase, after imports, reading the data and the warm-up), and that peak minus the resident set at that moment
(not ``ru_maxrss``: a child process inherits its parent's high-water mark at fork). Threads: every process runs with
``--threads`` (default 1) BLAS/OpenMP/numba threads. Phases are repeated ``--repeats`` times (order of the two
sides alternating); medians and ratios ours/FLARE are printed. Conventions matched as in tests/test_flare_crosscheck.py:
energy noise on the total energy (``energy_noise="per_structure"``), FLARE's absolute K_uu jitter 1e-8 = our
unit-sigma jitter 1e-8/sigma^2, no energy shift. The run checks that both sides predict the same energies, forces and
stresses (printed under the table).

    .venv/bin/python benchmarks/bench_acegp_vs_flare.py                       # mlearn Cu, 100 train frames
    .venv/bin/python benchmarks/bench_acegp_vs_flare.py --n-train 200 --repeats 5 --out /tmp/acegp_flare.json
    .venv/bin/python benchmarks/bench_acegp_vs_flare.py --data emt --skip-scaling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DRIVER_DIR = ROOT / "src" / "mlffbench" / "models"  # flare_driver.py, imported by the FLARE worker
MLEARN_CU = ROOT.parent / "shared" / "data" / "mlearn" / "Cu"
SPECIES = (29,)
LATTICE = 3.615


# ------------------------------------------------------------------------------------------------ the FLARE side

FLARE_WORKER = r'''
import contextlib, json, os, resource, sys, time
import numpy as np
from ase.io import read

spec = json.load(open(sys.argv[1]))
sys.path.insert(0, spec["driver_dir"])
import flare_driver as fd
from flare.bffs.sgp import _C_flare

def mem_mb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass

train = read(spec["train"], index=":")
test = read(spec["test"], index=":")
species = list(spec["species"])
calc = fd.b2_calculator(len(species), spec["n_max"], spec["l_max"], spec["cutoff"])
h = spec["hyps"]
res = {"task": spec["task"]}

def structure(atoms):
    return fd.make_structure(atoms, species, spec["cutoff"], [calc])

def fit():
    """Structures with labels, training set, our sparse set, QR. The C++ SparseGP keeps raw pointers: keep refs."""
    kernel = _C_flare.NormalizedDotProduct(h["sigma"], spec["power"])
    sgp = _C_flare.SparseGP([kernel], h["sigma_e"], h["sigma_f"], h["sigma_s"])
    sgp.Kuu_jitter = spec["kuu_jitter"]
    sparse = {int(k): v for k, v in json.load(open(spec["sparse"])).items()}
    strucs = []
    for i, atoms in enumerate(train):
        s = structure(atoms)
        e, f, st = fd.labels(atoms)
        s.energy = np.array([[float(e)]])
        s.forces = np.asarray(f, dtype=float).reshape(-1)
        s.stresses = fd.ase_to_flare_stress(st)
        strucs.append(s)
        sgp.add_training_structure(s)
        if sparse.get(i):
            sgp.add_specific_environments(s, sparse[i])
    sgp.update_matrices_QR()
    return sgp, (kernel, strucs)

structure(train[0])  # warm-up (untimed)
task = spec["task"]
res["rss_base_mb"] = mem_mb("VmRSS")
reset_peak()
if task == "descriptors":
    t0 = time.perf_counter()
    for atoms in train:
        s = structure(atoms)
        del s
    res["wall_s"] = time.perf_counter() - t0
    res["n_atoms"] = sum(len(a) for a in train)
elif task in ("train", "optimise"):
    t0 = time.perf_counter()
    sgp, keep = fit()
    res["train_s"] = time.perf_counter() - t0
    if task == "optimise":
        from flare.bffs.sgp.sparse_gp import optimize_hyperparameters
        t1 = time.perf_counter()
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            opt = optimize_hyperparameters(sgp, gradient_tolerance=spec["gtol"], max_iterations=spec["max_iter"],
                                           method="L-BFGS-B", bounds=None)
        res["optimise_s"] = time.perf_counter() - t1
        res["total_s"] = time.perf_counter() - t0
        res["iterations"], res["evaluations"] = int(opt.nit), int(opt.nfev)
        res["message"] = str(opt.message)
        hy = np.array(sgp.hyperparameters, dtype=float)
        res["hyperparameters"] = dict(zip(("sigma", "sigma_e", "sigma_f", "sigma_s"), np.abs(hy).tolist()))
    res["rss_train_mb"] = mem_mb("VmHWM")
    res["lml"] = float(sgp.compute_likelihood_gradient_stable(False))
    if task == "train":
        s = structure(test[0]); sgp.predict_mean(s)  # warm-up
        t0 = time.perf_counter()
        preds = []
        for atoms in test:
            s = structure(atoms)
            sgp.predict_mean(s)
            preds.append(np.array(s.mean_efs, dtype=float))
        res["predict_s"] = time.perf_counter() - t0
        res["n_atoms_test"] = sum(len(a) for a in test)
        res["predictions"] = [[float(m[0]), m[1:-6].tolist(), fd.flare_to_ase_stress(m[-6:]).tolist()]
                              for m in preds]
elif task == "scaling":
    import resource
    sgp, keep = fit()
    cells = read(spec["cells"], index=":")
    s = structure(cells[0]); sgp.predict_mean(s); del s  # warm-up
    # FLARE 1.4.0's Structure::compute_neighbors allocates noa^2 * 27 rows (O(N^2) memory): cap the address space
    # so that a too large cell fails with bad_alloc here instead of pushing a shared machine into the OOM killer
    limit = int(spec["flare_mem_limit_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    rows = []
    for atoms in cells:
        times = []
        base = mem_mb("VmRSS")
        reset_peak()
        try:
            for _ in range(spec["scaling_repeats"]):
                t0 = time.perf_counter()
                s = structure(atoms)
                sgp.predict_mean(s)
                times.append(time.perf_counter() - t0)
                del s
        except MemoryError as exc:
            rows.append({"n_atoms": len(atoms), "error": f"MemoryError ({exc}) under a "
                         f"{spec['flare_mem_limit_gb']:g} GB address-space limit"})
            break
        rows.append({"n_atoms": len(atoms), "times_s": times, "rss_mb": mem_mb("VmHWM"), "rss_base_mb": base})
    res["rows"] = rows
res["rss_end_mb"] = mem_mb("VmHWM")
json.dump(res, open(sys.argv[2], "w"))
'''


# ------------------------------------------------------------------------------------------------ our side


def mem_mb(key: str) -> float:
    """VmRSS (current) or VmHWM (peak since exec or the last reset_peak) of this process, MB. Not ru_maxrss: a
    child's ru_maxrss starts from the parent's high-water mark at fork time."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); without it the peak includes imports and warm-up."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def ours_params(spec: dict, optimise: bool) -> dict:
    h = spec["hyps"]
    return dict(descriptor="B2", cutoff=spec["cutoff"], n_max=spec["n_max"], l_max=spec["l_max"],
                power=spec["power"], **h, energy_noise="per_structure", optimise=optimise,
                max_iter=spec["max_iter"], gtol=spec["gtol"], sparse_method="max_variance",
                sparse_per_frame=spec["sparse_per_frame"], train_on=["energy", "forces", "stress"],
                energy_shift="none", jitter=spec["kuu_jitter"] / h["sigma"] ** 2, seed=0,
                species=tuple(spec["species"]))


def ours_worker(spec_path: str, out_path: str) -> None:
    from ase.io import read

    from mlffbench.models.acegp import AceDescriptor, AceGPModel

    spec = json.loads(Path(spec_path).read_text())
    train = read(spec["train"], index=":")
    test = read(spec["test"], index=":")
    d = AceDescriptor("B2", spec["cutoff"], spec["n_max"], spec["l_max"], tuple(spec["species"]))
    d.environments(train[0], gradients=True)  # warm-up: numba (cached) dispatch, untimed
    task = spec["task"]
    res: dict = {"task": task, "rss_base_mb": mem_mb("VmRSS")}
    reset_peak()
    if task == "descriptors":
        t0 = time.perf_counter()
        for atoms in train:
            d.environments(atoms, gradients=True)  # computed and dropped: the throughput is the point
        res["wall_s"] = time.perf_counter() - t0
        res["n_atoms"] = sum(len(a) for a in train)
    elif task in ("train", "optimise"):
        t0 = time.perf_counter()
        pot = AceGPModel().fit(train, None, ours_params(spec, task == "optimise"), None)
        res["train_s" if task == "train" else "total_s"] = time.perf_counter() - t0
        res["rss_train_mb"] = mem_mb("VmHWM")
        res["lml"] = pot.info["log_marginal_likelihood"]
        res["timings"] = pot.info["timings"]
        res["sparse_atoms"] = pot.info["sparse_atoms"]
        if task == "optimise":
            opt = pot.info["optimisation"]
            res["iterations"], res["message"] = opt["iterations"], opt["message"]
            res["optimise_s"] = pot.info["timings"]["hyperparameters_s"]
            res["hyperparameters"] = {k: pot.hyperparameters[k] for k in ("sigma", "sigma_e", "sigma_f", "sigma_s")}
        else:
            pot.evaluate(test[0])  # warm-up
            t0 = time.perf_counter()
            preds = [pot.evaluate(atoms) for atoms in test]
            res["predict_s"] = time.perf_counter() - t0
            res["n_atoms_test"] = sum(len(a) for a in test)
            res["predictions"] = [[float(e), np.asarray(f).ravel().tolist(), np.asarray(s).tolist()]
                                  for e, f, s in preds]
    elif task == "scaling":
        pot = AceGPModel().fit(train, None, ours_params(spec, False), None)
        cells = read(spec["cells"], index=":")
        pot.evaluate(cells[0])  # warm-up
        rows = []
        for atoms in cells:
            times = []
            base = mem_mb("VmRSS")
            reset_peak()
            for _ in range(spec["scaling_repeats"]):
                t0 = time.perf_counter()
                pot.evaluate(atoms)
                times.append(time.perf_counter() - t0)
            rows.append({"n_atoms": len(atoms), "times_s": times, "rss_mb": mem_mb("VmHWM"), "rss_base_mb": base})
        res["rows"] = rows
    res["rss_end_mb"] = mem_mb("VmHWM")
    Path(out_path).write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------------ orchestration


def find_flare_python(explicit: str | None) -> Path | None:
    """--flare-python, else mlffbench.models.flare_env (MLFFBENCH_FLARE_PYTHON or the built `flare` env)."""
    if explicit:
        return Path(explicit)
    from mlffbench.models.flare_env import flare_python

    return flare_python()


def near_orthorhombic(atoms, tol_deg: float = 1.0) -> bool:
    return bool(np.all(np.abs(atoms.cell.cellpar()[3:] - 90.0) < tol_deg))


def evenly(items: list, n: int) -> list:
    if n >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def load_data(kind: str, n_train: int, n_test: int):
    """(train, test, description)."""
    if kind in ("auto", "mlearn") and (MLEARN_CU / "training.json").is_file():
        from mlffbench.data.io import read_frames

        def pick(name):
            frames = read_frames(MLEARN_CU / name)
            return [a for a in frames if 32 <= len(a) <= 108 and near_orthorhombic(a)]

        train, test = pick("training.json"), pick("test.json")
        return evenly(train, n_train), evenly(test, n_test), f"mlearn Cu ({MLEARN_CU})"
    if kind == "mlearn":
        raise SystemExit(f"bench: {MLEARN_CU / 'training.json'} not found")
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from mlffbench import frames as fr

    def cell(seed):
        rng = np.random.default_rng(seed)
        rep = [(2, 2, 2), (3, 2, 2), (3, 3, 2), (3, 3, 3)][seed % 4]  # 32, 48, 72, 108 atoms
        atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(rep)
        atoms.set_cell(np.diag(atoms.cell.lengths() * (1 + rng.uniform(-0.02, 0.02, 3))), scale_atoms=True)
        atoms.rattle(0.1, seed=seed)
        atoms.calc = EMT()
        return fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())

    return ([cell(s) for s in range(n_train)], [cell(10_000 + s) for s in range(n_test)],
            "EMT Cu (rattled, strained fcc, 32-108 atoms)")


def reference_energies(train, test):
    """Subtract the training set's mean energy per atom from every frame (as FLARE's single-atom energies do): with
    raw total energies (~ -400 eV per mlearn frame, sigma_e 0.05 eV) log p is the small difference of ~1e10-sized
    terms and hyperparameter optimisation drives sigma to ~1e6 to absorb the offset."""
    from mlffbench import frames as fr

    ref = float(np.mean([fr.label(a, "energy") / len(a) for a in train]))

    def shift(frames):
        return [fr.labelled(a, fr.label(a, "energy") - ref * len(a), fr.label(a, "forces"), fr.label(a, "stress"),
                            **a.info) for a in frames]

    return shift(train), shift(test), ref


def supercells(sizes: list[int]):
    from ase.build import bulk

    out = []
    for n in sizes:
        atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat((n, n, n))
        atoms.rattle(0.05, seed=n)
        out.append(atoms)
    return out


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[key] = str(threads)
    return env


def run_worker(side: str, spec: dict, work: Path, flare_py: Path, env: dict, tag: str) -> dict:
    spec_path, out_path = work / f"spec-{tag}.json", work / f"out-{tag}.json"
    spec_path.write_text(json.dumps(spec))
    if side == "ours":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path), str(out_path)]
    else:
        cmd = [str(flare_py), "-c", FLARE_WORKER, str(spec_path), str(out_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {side} worker ({spec['task']}) failed:\n{proc.stderr[-4000:]}")
    return json.loads(out_path.read_text())


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / np.abs(b).max())


def loglog_slope(n, t) -> float:
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["auto", "mlearn", "emt"], default="auto")
    p.add_argument("--n-train", type=int, default=100)
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--n-max", type=int, default=8)
    p.add_argument("--l-max", type=int, default=3)
    p.add_argument("--power", type=int, default=2)
    p.add_argument("--sparse-per-frame", type=int, default=2)
    p.add_argument("--energy-reference", choices=["mean", "none"], default="mean",
                   help="mean: subtract the training mean energy per atom from all labels (default); none: raw")
    p.add_argument("--sigma", type=float, default=2.0)
    p.add_argument("--sigma-e", type=float, default=0.05, help="eV, on the total energy (FLARE's convention)")
    p.add_argument("--sigma-f", type=float, default=0.05)
    p.add_argument("--sigma-s", type=float, default=0.005)
    p.add_argument("--max-iter", type=int, default=200, help="optimiser iteration cap, both sides")
    p.add_argument("--gtol", type=float, default=1e-4, help="optimiser gradient tolerance, both sides")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/numba threads per process, both sides")
    p.add_argument("--scaling-sizes", default="3,4,5,6,8,9,10,12,14",
                   help="fcc cubic repeats n (4 n^3 atoms: 108 ... 10976)")
    p.add_argument("--scaling-repeats", type=int, default=3)
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--no-flare-scaling", action="store_true", help="scaling for ours only")
    p.add_argument("--flare-mem-limit-gb", type=float, default=10.0,
                   help="address-space limit of FLARE's scaling process (its neighbour search is O(N^2) in memory)")
    p.add_argument("--flare-python", help="FLARE env python (default: the built `flare` env, see `mlffbench env build flare`)")
    p.add_argument("--out", help="write all raw results as JSON")
    p.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        ours_worker(*args.worker)
        return 0

    flare_py = find_flare_python(args.flare_python)
    if flare_py is None or not flare_py.is_file():
        raise SystemExit("bench: FLARE env not found (run `mlffbench env build flare` or set MLFFBENCH_FLARE_PYTHON)")
    from ase.io import read, write

    from mlffbench.models.acegp import AceDescriptor, AceGPModel

    work = Path(tempfile.mkdtemp(prefix="bench-acegp-flare-"))
    train, test, data_desc = load_data(args.data, args.n_train, args.n_test)
    if args.energy_reference == "mean":
        train, test, e_ref = reference_energies(train, test)
        data_desc += f", training mean energy {e_ref:.4f} eV/atom subtracted from the energy labels"
    write(work / "train.extxyz", train)
    write(work / "test.extxyz", test)
    train = read(work / "train.extxyz", index=":")
    sizes = [int(s) for s in args.scaling_sizes.split(",") if s]
    write(work / "cells.extxyz", supercells(sizes))
    spec = {
        "train": str(work / "train.extxyz"), "test": str(work / "test.extxyz"), "cells": str(work / "cells.extxyz"),
        "species": list(SPECIES), "cutoff": args.cutoff, "n_max": args.n_max, "l_max": args.l_max,
        "power": args.power, "sparse_per_frame": args.sparse_per_frame, "kuu_jitter": 1e-8,
        "hyps": {"sigma": args.sigma, "sigma_e": args.sigma_e, "sigma_f": args.sigma_f, "sigma_s": args.sigma_s},
        "max_iter": args.max_iter, "gtol": args.gtol, "scaling_repeats": args.scaling_repeats,
        "driver_dir": str(DRIVER_DIR), "sparse": str(work / "sparse.json"),
        "flare_mem_limit_gb": args.flare_mem_limit_gb,
    }
    # the sparse set: ours (FLARE's max-variance rule), handed to FLARE (untimed, in this process)
    pot = AceGPModel().fit(train, None, ours_params(spec, False), None)
    (work / "sparse.json").write_text(json.dumps({str(k): v for k, v in enumerate(pot.info["sparse_atoms"])}))
    dim = AceDescriptor("B2", args.cutoff, args.n_max, args.l_max, SPECIES).dim
    n_train_atoms = sum(len(a) for a in train)
    n_test_atoms = sum(len(a) for a in test)
    env = thread_env(args.threads)
    print(f"bench: {data_desc}: {len(train)} train frames ({n_train_atoms} atoms), {len(test)} test frames "
          f"({n_test_atoms} atoms); B2 rc={args.cutoff} n_max={args.n_max} l_max={args.l_max} (dim {dim}), "
          f"zeta {args.power}, {pot.info['n_sparse']} sparse environments; {args.threads} thread(s)/process; "
          f"work dir {work}", file=sys.stderr, flush=True)

    results: dict = {"ours": {}, "flare": {}}
    for rep in range(args.repeats):
        for task in ("descriptors", "train", "optimise"):
            sides = ("ours", "flare") if rep % 2 == 0 else ("flare", "ours")
            for side in sides:
                t0 = time.perf_counter()
                r = run_worker(side, dict(spec, task=task), work, flare_py, env, f"{side}-{task}-{rep}")
                results[side].setdefault(task, []).append(r)
                (work / "results.json").write_text(json.dumps(results))
                print(f"bench: repeat {rep + 1}/{args.repeats} {task:<11} {side:<5} done in "
                      f"{time.perf_counter() - t0:6.1f} s", file=sys.stderr, flush=True)
    if not args.skip_scaling:
        for side in ("ours",) if args.no_flare_scaling else ("ours", "flare"):
            t0 = time.perf_counter()
            results[side]["scaling"] = run_worker(side, dict(spec, task="scaling"), work, flare_py, env,
                                                  f"{side}-scaling")
            (work / "results.json").write_text(json.dumps(results))
            print(f"bench: scaling {side} done in {time.perf_counter() - t0:6.1f} s", file=sys.stderr, flush=True)

    def med(side, task, key):
        return statistics.median(r[key] for r in results[side][task])

    rows = []

    def row(label, ours, flare, fmt, unit):
        ratio = ours / flare if flare else float("nan")
        rows.append((label, fmt.format(ours), fmt.format(flare), f"{ratio:.3g}", unit))

    row("descriptors + gradients", n_train_atoms / med("ours", "descriptors", "wall_s"),
        n_train_atoms / med("flare", "descriptors", "wall_s"), "{:,.0f}", "atoms/s (higher is faster)")
    row("training, fixed hyperparameters", med("ours", "train", "train_s"), med("flare", "train", "train_s"),
        "{:.2f}", "s")
    row("training + optimisation", med("ours", "optimise", "total_s"), med("flare", "optimise", "total_s"),
        "{:.2f}", "s")
    row("  of which optimisation", med("ours", "optimise", "optimise_s"), med("flare", "optimise", "optimise_s"),
        "{:.3f}", "s")
    row("prediction E+F+S", 1e6 * med("ours", "train", "predict_s") / n_test_atoms,
        1e6 * med("flare", "train", "predict_s") / n_test_atoms, "{:.1f}", "us/atom")
    row("peak RSS during training", med("ours", "train", "rss_train_mb"), med("flare", "train", "rss_train_mb"),
        "{:.0f}", "MB")
    row("  above the RSS before training", med("ours", "train", "rss_train_mb") - med("ours", "train", "rss_base_mb"),
        med("flare", "train", "rss_train_mb") - med("flare", "train", "rss_base_mb"), "{:.0f}", "MB")
    row("  RSS before (imports + data)", med("ours", "train", "rss_base_mb"), med("flare", "train", "rss_base_mb"),
        "{:.0f}", "MB")
    row("peak RSS during train + optimise", med("ours", "optimise", "rss_train_mb"),
        med("flare", "optimise", "rss_train_mb"), "{:.0f}", "MB")

    lines = [f"ACE B2 sparse GP, mlffbench acegp vs FLARE 1.4.0: {data_desc}, {len(train)} train frames "
             f"({n_train_atoms} atoms), {len(test)} test frames ({n_test_atoms} atoms); B2 rc={args.cutoff} "
             f"n_max={args.n_max} l_max={args.l_max} (dim {dim}), zeta {args.power}, {pot.info['n_sparse']} sparse "
             f"environments; {args.threads} thread(s) per process; median of {args.repeats}",
             "", f"{'phase':<34} {'ours':>10} {'FLARE':>10} {'ours/FLARE':>10}  unit",
             "-" * 90]
    lines += [f"{a:<34} {b:>10} {c:>10} {d:>10}  {e}" for a, b, c, d, e in rows]
    # identical setups: same predictions, same log p at the fixed hyperparameters
    o, f = results["ours"]["train"][0], results["flare"]["train"][0]
    agree = {
        "energy": rel_diff([x[0] for x in o["predictions"]], [x[0] for x in f["predictions"]]),
        "forces": rel_diff(np.concatenate([x[1] for x in o["predictions"]]),
                           np.concatenate([x[1] for x in f["predictions"]])),
        "stress": rel_diff([x[2] for x in o["predictions"]], [x[2] for x in f["predictions"]]),
    }
    lml_rel = abs(o["lml"] - f["lml"]) / abs(f["lml"])
    lines += ["", "agreement of the two fits (fixed hyperparameters, max |ours - FLARE| / max |FLARE|): "
              + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()) + f"; log p {lml_rel:.1e} "
              f"(ours {o['lml']:.6f}, FLARE {f['lml']:.6f})"]
    oo, fo = results["ours"]["optimise"][0], results["flare"]["optimise"][0]
    fmt_h = lambda h: ", ".join(f"{k} {v:.4g}" for k, v in h.items())  # noqa: E731
    lines += [f"optimisation: ours {oo['iterations']} iterations ({oo['message']}), log p {oo['lml']:.4f}, "
              f"{fmt_h(oo['hyperparameters'])}",
              f"              FLARE {fo['iterations']} iterations / {fo['evaluations']} evaluations "
              f"({fo['message']}), log p {fo['lml']:.4f}, {fmt_h(fo['hyperparameters'])}"]
    ot = statistics.median(r["timings"]["sparse_selection_s"] for r in results["ours"]["train"])
    lines += [f"ours' training includes choosing the sparse set (median {ot:.2f} s); FLARE is given that set."]

    if "scaling" in results["ours"]:
        sc = {s: results[s]["scaling"]["rows"] for s in ("ours", "flare") if "scaling" in results[s]}
        lines += ["", f"prediction cost vs size (bulk fcc Cu supercells, E+F+S, median of {args.scaling_repeats})",
                  f"{'atoms':>7} {'ours ms':>10} {'ours us/atom':>13} {'ours peak MB':>12}"
                  + (f" {'FLARE ms':>10} {'FLARE us/atom':>14} {'FLARE peak MB':>13}" if "flare" in sc else "")]
        errors = []
        for k, r in enumerate(sc["ours"]):
            t = statistics.median(r["times_s"])
            line = f"{r['n_atoms']:>7} {1e3 * t:>10.1f} {1e6 * t / r['n_atoms']:>13.1f} {r['rss_mb']:>12.0f}"
            rf = sc["flare"][k] if "flare" in sc and k < len(sc["flare"]) else None
            if rf is not None and "error" not in rf:
                tf = statistics.median(rf["times_s"])
                line += f" {1e3 * tf:>10.1f} {1e6 * tf / rf['n_atoms']:>14.1f} {rf['rss_mb']:>13.0f}"
            elif "flare" in sc:
                line += f" {'failed' if rf is not None else '-':>10} {'':>14} {'':>13}"
                if rf is not None:
                    errors.append(f"FLARE at {rf['n_atoms']} atoms: {rf['error']}")
            lines.append(line)
        for side, label in (("ours", "ours"), ("flare", "FLARE")):
            ok = [r for r in sc.get(side, []) if "error" not in r]
            if len(ok) >= 2:
                n = [r["n_atoms"] for r in ok]
                t = [statistics.median(r["times_s"]) for r in ok]
                lines.append(f"log-log slope (time ~ atoms^k), {label}, {n[0]}-{n[-1]} atoms: "
                             f"k = {loglog_slope(n, t):.3f}")
        lines += errors
    print("\n".join(lines), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "data": data_desc, "results": results,
                                              "table": lines}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
