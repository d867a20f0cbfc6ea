"""Wall time per frame of the GPAW labeler vs cell size and k-points (Cu, PW PBE, MP 0.2 eV, 2 MPI ranks).

Each case labels two rattled frames of the same cell in one driver call: the first starts from scratch, the
second reuses the first one's wavefunctions (as neighbouring MD frames do). Rattled cells have no symmetry,
like MD frames, so k-points are not reduced beyond time reversal. Nothing is cached (a fresh cache folder).

Usage: .venv/bin/python benchmarks/bench_gpaw.py [--quick] [--ecut 350] [--out bench_gpaw.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data.labelers.gpaw import GpawLabeler

CASES = [  # (label, repeat of the cubic 4-atom cell or primitive, kpts)
    ("1 atom", "prim", [4, 4, 4]),
    ("4 atoms", (1, 1, 1), [2, 2, 2]),
    ("4 atoms", (1, 1, 1), [3, 3, 3]),
    ("4 atoms", (1, 1, 1), [4, 4, 4]),
    ("8 atoms", (2, 1, 1), [1, 2, 2]),
    ("8 atoms", (2, 1, 1), [2, 2, 2]),
    ("31 atoms (TM23 2x2x2 fcc - 1)", (2, 2, 2), [1, 1, 1]),
    ("31 atoms (TM23 2x2x2 fcc - 1)", (2, 2, 2), [2, 2, 2]),
]


def cell(repeat, seed: int):
    if repeat == "prim":
        atoms = bulk("Cu", "fcc", a=3.63)
        atoms.positions += np.random.default_rng(seed).normal(0, 0.0, (1, 3))
        atoms.cell[0, 0] += 0.02 * seed  # a slightly different cell per frame (one atom cannot be rattled)
        return atoms
    atoms = bulk("Cu", "fcc", a=3.63, cubic=True).repeat(repeat)
    if len(atoms) == 32:
        del atoms[0]  # TM23: one vacancy
    atoms.rattle(0.08, seed=seed)
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the 31-atom cases")
    parser.add_argument("--ecut", type=float, default=350.0)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--out", default="bench_gpaw.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label, repeat, kpts in CASES:
            if args.quick and "31" in label:
                continue
            lab = GpawLabeler(ecut=args.ecut, kpts=kpts, smearing=0.2, mpi_ranks=args.ranks, cache_dir=cache)
            frames = [cell(repeat, seed) for seed in (1, 2)]
            started = time.perf_counter()
            out = lab.label(frames)
            total = time.perf_counter() - started
            secs = [f.info.get("dft_seconds", float("nan")) for f in out]
            iters = [f.info.get("dft_iterations", -1) for f in out]
            failed = [f.info.get("label_failed") for f in out if "label_failed" in f.info]
            row = {"case": label, "natoms": len(frames[0]), "kpts": "x".join(map(str, kpts)), "ecut": args.ecut,
                   "first_frame_s": secs[0], "reused_frame_s": secs[1], "scf_iterations": iters,
                   "batch_wall_s": total, "failed": failed,
                   "max_force": float(np.abs(fr.label(out[0], "forces")).max()) if not failed else None}
            rows.append(row)
            print(f"{label:32s} k {row['kpts']:6s} first {secs[0]:7.1f} s  reused {secs[1]:7.1f} s  "
                  f"SCF iters {iters}  batch {total:6.1f} s", flush=True)
    with open(args.out, "w") as fd:
        json.dump({"provenance": lab.provenance(["Cu"]), "rows": rows}, fd, indent=1)


if __name__ == "__main__":
    main()
