"""acegp (ACE B2 + sparse GP) fit cost vs number of species, frames and n_max, on multi-element EMT data.

Data: random substitutional fcc alloys of the first 1-5 of Cu, Ni, Pd, Ag, Pt (ASE's EMT covers them), 50 atoms
each (the fcc primitive cell repeated 5x5x2), every atom's element drawn uniformly (so compositions vary from frame
to frame and the per-element energy references are determined), lattice constant by Vegard's law from the EMT
equilibrium constants, the cell strained by a random symmetric strain of 2% rms and positions rattled by 0.08 Å,
seeded; energy, forces and stress from EMT.

Fit: ``AceGPModel().fit(frames, None, params)`` with descriptor B2, cutoff 5 Å, l_max 3, power 2,
energy_shift composition, sparse_per_frame 1 (FLARE/TM23: m = number of frames), hyperparameters optimised (L-BFGS-B,
TM23's 200 iterations / gtol 1e-4). Each point (species, frames, n_max[, kernel path]) runs in a fresh process
(this script with ``--point``), BLAS / OpenMP / numba threads set to ``--threads`` (default 1) there. Measured:

  dim          B2 descriptor dimension (n_species n_max)(n_species n_max + 1)/2 (l_max + 1)
  select_s     sparse selection stage (descriptors of every frame + FLARE's max-variance rule), potential.info timings
  kernels_s    kernel stage (single-bond basis or dB/dr, label-sparse covariances, whitening, streaming QR)
  hyper_s      hyperparameter optimisation (O(m^3) per likelihood evaluation, m sparse environments)
  fit_s        wall time of the whole fit call (also includes labelling bookkeeping and the final solve)
  peak_mb      peak resident memory during the fit above the resident set before it (VmHWM reset through
               /proc/self/clear_refs after the frames are built; not ru_maxrss, which a child inherits at fork)
  pred_us      prediction (energy, forces, stress) per atom, median over test frames after a warm-up

``--kernels`` runs each point with the kernel-stage implementations named (``structured``: contracting the sparse
environments with dB/dr in the single-bond basis per central species, never forming dB/dr; ``dense``: the previous
path, U @ dB/dr over the full descriptor dimension and all sparse environments; ``auto``, the model's default:
structured with several species, dense with one), so before/after come from the same run (the streamed selection
stage and the prediction path are the current ones for all).

Extrapolation to ``--target`` (default 4 species, 1000 frames, n_max 8): with one sparse environment per frame,
m = F. A frame's kernel-stage cost is O(1) (descriptors) + O(m) (covariances with the m sparse environments) +
O(m^2) (whitening, streaming QR), i.e. the kernel stage is linear in frames for a fixed sparse set, and
~ a F + b F^2 + c F^3 when m grows with F; the selection stage likewise (its O(m^2) is the whitening of each frame's
variances). Both are fitted so by non-negative least squares over the measured frame counts; hyperparameters as
c + d m^3 per iteration (m^3 per likelihood evaluation; iteration count of the largest point). The full run also
measures the target point itself and its 1-species counterpart (n_d of 1 species = what species-compressed radial
channels with one channel would give); ``--no-target`` skips that.

Timings are wall clock on whatever else the machine runs: use the medians of repeated runs and the ratios within
one run (dense / auto or structured is printed when both ran).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_acegp_species.py --quick
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_acegp_species.py --out /tmp/species.json
    .venv/bin/python benchmarks/bench_acegp_species.py --species 4 --frames 1000 --n-max 8 --no-target  # the goal only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_acegp_vs_flare import mem_mb, reset_peak  # /proc peak-memory helpers (this folder)

ROOT = Path(__file__).resolve().parents[1]
ELEMENTS = ("Cu", "Ni", "Pd", "Ag", "Pt")
N_ATOMS = 50
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def emt_lattice(symbol: str) -> float:
    """EMT's equilibrium fcc lattice constant: its s0 is the Wigner-Seitz radius (bohr), a = s0 (16 pi / 3)^(1/3)."""
    from ase.calculators.emt import parameters
    from ase.units import Bohr

    return parameters[symbol][1] * Bohr * (16 * np.pi / 3) ** (1 / 3)


def make_frames(n_species: int, n_frames: int, seed: int):
    """Random substitutional fcc alloys (50 atoms) of the first n_species ELEMENTS, labelled by EMT."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.data import atomic_numbers

    from mlffbench import frames as fr

    symbols = ELEMENTS[:n_species]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        kinds = rng.integers(0, n_species, N_ATOMS)
        a = float(np.mean([emt_lattice(symbols[k]) for k in kinds]))
        atoms = bulk("Cu", "fcc", a=a).repeat((5, 5, 2))
        atoms.numbers = [atomic_numbers[symbols[k]] for k in kinds]
        eps = rng.normal(scale=0.02, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        atoms.calc = EMT()
        out.append(fr.labelled(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def run_point(spec: dict) -> dict:
    """One measurement, in this (fresh) process."""
    sys.path.insert(0, str(ROOT / "src"))
    from mlffbench.models.acegp import sgp
    from mlffbench.models.acegp.model import AceGPModel

    if spec.get("kernels"):
        sgp.KERNEL_PATH = spec["kernels"]
    t0 = time.perf_counter()
    frames = make_frames(spec["species"], spec["frames"] + spec["test_frames"], spec["seed"])
    train, test = frames[:spec["frames"]], frames[spec["frames"]:]
    label_s = time.perf_counter() - t0
    params = {"descriptor": "B2", "cutoff": spec["cutoff"], "n_max": spec["n_max"], "l_max": spec["l_max"],
              "power": 2, "energy_shift": "composition", "sparse_per_frame": 1, "max_iter": spec["max_iter"]}
    # warm-up: numba JIT (cached on disk after the first run) and BLAS initialisation, on 2 frames
    AceGPModel().fit(train[:2], None, {**params, "optimise": False})
    base = mem_mb("VmRSS")
    reset_peak()
    t0 = time.perf_counter()
    pot = AceGPModel().fit(train, None, params)
    fit_s = time.perf_counter() - t0
    peak = mem_mb("VmHWM")
    tm = pot.info["timings"]
    pot.evaluate(test[0])
    times = []
    for atoms in test:
        t0 = time.perf_counter()
        pot.evaluate(atoms)
        times.append((time.perf_counter() - t0) / len(atoms))
    pred = pot.predict(test)
    from mlffbench import frames as fr

    f_err = np.concatenate([(fr.label(p, "forces") - fr.label(t, "forces")).ravel() for p, t in zip(pred, test)])
    e_err = [(fr.label(p, "energy") - fr.label(t, "energy")) / len(t) for p, t in zip(pred, test)]
    opt = pot.info["optimisation"]
    return {**spec, "dim": pot.info["descriptor_dim"], "n_sparse": pot.info["n_sparse"],
            "select_s": tm["sparse_selection_s"], "kernels_s": tm["kernels_s"],
            "hyper_s": tm.get("hyperparameters_s", 0.0), "fit_s": fit_s, "peak_mb": peak - base, "rss_base_mb": base,
            "pred_us": 1e6 * statistics.median(times), "iterations": opt.get("iterations"),
            "test_e_mae_mev": 1000 * float(np.mean(np.abs(e_err))), "test_f_mae": float(np.mean(np.abs(f_err))),
            "label_s": label_s, "threads": os.environ.get("NUMBA_NUM_THREADS"), "module": sgp.__file__}


def spawn(spec: dict, threads: int) -> dict:
    env = {**os.environ, **{k: str(threads) for k in THREAD_VARS}}
    proc = subprocess.run([sys.executable, __file__, "--point", json.dumps(spec)], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"point {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


COLUMNS = [("species", "{:d}"), ("frames", "{:d}"), ("n_max", "{:d}"), ("kernels", "{}"), ("dim", "{:d}"),
           ("select_s", "{:.1f}"), ("kernels_s", "{:.1f}"), ("hyper_s", "{:.1f}"), ("iterations", "{}"),
           ("fit_s", "{:.1f}"), ("peak_mb", "{:.0f}"), ("pred_us", "{:.0f}"), ("test_f_mae", "{:.3f}")]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---:" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(f.format(r[c]) if r.get(c) is not None else "-" for c, f in COLUMNS) + " |")
    return "\n".join(lines)


def extrapolate(rows: list[dict], target: dict) -> list[dict]:
    """Per kernel path, from the points at the target's species and n_max (m = F frames): selection and kernel
    stages as a F + b F^2 + c F^3, hyperparameters per iteration as c + d m^3 (times the iteration count of the
    largest point), all by non-negative least squares over the measured frame counts. Rough when every point is
    small (--quick): there the m^2 and m^3 terms are barely visible."""
    from scipy.optimize import nnls

    out = []
    for path in sorted({r["kernels"] for r in rows}):
        same = sorted((r for r in rows if r["kernels"] == path and r["species"] == target["species"]
                       and r["n_max"] == target["n_max"]), key=lambda r: r["frames"])
        if not same:
            continue
        F = np.array([r["frames"] for r in same], dtype=float)
        Ft = float(target["frames"])
        est = {"kernels": path, "from_frames": [int(f) for f in F]}
        for stage in ("select_s", "kernels_s"):
            t = np.array([r[stage] for r in same])
            coef = nnls(np.stack([F, F**2, F**3], axis=1), t)[0]
            est[stage] = float(coef @ [Ft, Ft**2, Ft**3])
            est[stage + "_per_frame_ms"] = [round(1e3 * float(v), 1) for v in t / F]
        per_iter = np.array([r["hyper_s"] / max(1, r["iterations"] or 1) for r in same])
        c, d = nnls(np.stack([np.ones_like(F), F**3], axis=1), per_iter)[0]
        est["hyper_s"] = float((c + d * Ft**3) * (same[-1]["iterations"] or 1))
        est["fit_s"] = est["select_s"] + est["kernels_s"] + est["hyper_s"]
        out.append(est)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--point", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="a ~1 minute run: 1, 2 and 4 species, 20 and 40 frames, n_max 8, both kernel paths")
    ap.add_argument("--species", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--n-max", type=int, nargs="+", default=[6, 8])
    ap.add_argument("--l-max", type=int, default=3)
    ap.add_argument("--cutoff", type=float, default=5.0)
    ap.add_argument("--max-iter", type=int, default=200)
    ap.add_argument("--kernels", nargs="+", default=["auto"], choices=["auto", "structured", "dense"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test-frames", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="4,1000,8", help="species,frames,n_max to extrapolate to")
    ap.add_argument("--no-target", action="store_true",
                    help="skip measuring the target point itself (and its 1-species counterpart, the descriptor "
                         "dimension species-compressed channels would give); --quick skips it too")
    ap.add_argument("--out", help="write the rows and the extrapolation as JSON")
    args = ap.parse_args()
    if args.point:
        print(json.dumps(run_point(json.loads(args.point))))
        return
    if args.quick:
        args.species, args.frames, args.n_max, args.kernels = [1, 2, 4], [20, 40], [8], ["dense", "auto"]
    rows = []
    for n_max in args.n_max:
        for ns in args.species:
            for nf in args.frames:
                for path in args.kernels:
                    spec = {"species": ns, "frames": nf, "n_max": n_max, "l_max": args.l_max, "cutoff": args.cutoff,
                            "max_iter": args.max_iter, "kernels": path, "test_frames": args.test_frames,
                            "seed": args.seed}
                    r = spawn(spec, args.threads)
                    rows.append(r)
                    print(table([r]).splitlines()[-1], flush=True)
    ts, tf, tn = (int(v) for v in args.target.split(","))
    target = {"species": ts, "frames": tf, "n_max": tn}
    measured_target = []
    if not (args.quick or args.no_target):
        for ns in dict.fromkeys([ts, 1]):
            spec = {"species": ns, "frames": tf, "n_max": tn, "l_max": args.l_max, "cutoff": args.cutoff,
                    "max_iter": args.max_iter, "kernels": "auto", "test_frames": args.test_frames,
                    "seed": args.seed}
            r = spawn(spec, args.threads)
            measured_target.append(r)
            print(table([r]).splitlines()[-1], flush=True)
    print()
    print(f"l_max {args.l_max}, cutoff {args.cutoff} Å, {N_ATOMS} atoms/frame, {args.threads} thread(s); "
          f"elements {', '.join(ELEMENTS[:max(args.species)])}")
    print(table(rows))
    if measured_target:
        print("\nmeasured at the target size:")
        print(table(measured_target))
    est = extrapolate(rows, target)
    if est and max(r["frames"] for r in rows) < 200:
        print("(rough: every measured point is small, so the m^2 / m^3 terms are guessed from noise; the full run "
              "measures the target itself)")
    for e in est:
        print(f"extrapolated to {ts} species x {tf} frames x {N_ATOMS} atoms, n_max {tn}, m = {tf}, "
              f"{args.threads} thread(s) ({e['kernels']}, from {e['from_frames']} frames; kernel stage per frame "
              f"{e['kernels_s_per_frame_ms']} ms): selection {e['select_s']:.0f} s + kernels {e['kernels_s']:.0f} s "
              f"+ hyperparameters {e['hyper_s']:.0f} s = {e['fit_s'] / 60:.1f} min")
    pairs = {}
    for r in rows:
        pairs.setdefault((r["species"], r["frames"], r["n_max"]), {})[r["kernels"]] = r
    new = next((p for p in ("auto", "structured") if p in args.kernels), None)
    ratios = [(k, v["dense"]["kernels_s"] / v[new]["kernels_s"], v["dense"]["fit_s"] / v[new]["fit_s"])
              for k, v in pairs.items() if "dense" in v and new in v]
    if ratios:
        print(f"dense / {new} (species, frames, n_max): kernel stage, whole fit: " + "; ".join(
            f"{k}: {a:.1f}x, {b:.1f}x" for k, a, b in ratios))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "target": target, "extrapolated": est,
                                              "measured_target": measured_target}, indent=1))


if __name__ == "__main__":
    main()
