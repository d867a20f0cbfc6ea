"""Cost of a labelled frame: the universal-potential labelers (SevenNet-0, CHGNet, in their environments) vs the
classical LAMMPS labeler vs real DFT (GPAW), on the TM23 cell of each element (ground state at ASE's reference
lattice constant, supercell >= 7 Å, one vacancy, rattled 0.05 Å).

Per labeler and element: wall and CPU seconds per static call (energy + forces + stress), the median over
``--calls`` calls on fresh positions after one untimed warm-up call (model loading, LAMMPS start), and the wall
time per step of the labeler's own NVT MD (30 steps: LAMMPS's fix nvt; the universal models: ASE's Nose-Hoover
chain, one model call per step). The projection is the data generation of the built-in configs at the quick frame
count (100 frames per temperature, 5 ps equilibration at 5 fs, a frame every 10 steps: 2000 steps per trajectory)
from a per-step cost fitted over the elements measured (cost ~ a + b * atoms).

    .venv/bin/python benchmarks/labeler_cost.py [--elements Cu W Hf] [--labelers sevennet chgnet lammps gpaw]
        [--calls 5] [--threads 2]

GPAW (needs scripts/install_gpaw.sh) is timed on one call per element (each costs minutes: PW 350 eV, k-spacing
0.5 1/Å, MP 0.2 eV, 2 MPI ranks, as configs/dft-small.yaml), wall time only (it runs under mpirun).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from mlffbench import elements as elements_db
from mlffbench import envs
from mlffbench.data import build, temperatures

#: one call of each labeler, timed where it runs; prints one JSON line {"wall": [...], "cpu": [...], "atoms": n}
TIMER = r"""
import json, sys, time
import numpy as np
from mlffbench.data import build
from mlffbench.data.labelers import make_labeler
spec, element, calls = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cell = build.tm23_cell(build.prototype(element, build.elements_db.get(element).lattice,
                                       *build.initial_guess(element, build.elements_db.get(element).lattice)),
                       7.0, np.random.default_rng(0))[0]
labeler = make_labeler(spec)
calc = labeler.calculator([element])
rng = np.random.default_rng(1)
wall, cpu = [], []
for i in range(calls + 1):
    atoms = cell.copy()
    atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
    atoms.calc = calc
    w, c = time.perf_counter(), time.process_time()
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()
    if i:  # the first call loads the model / starts the engine
        wall.append(time.perf_counter() - w); cpu.append(time.process_time() - c)
md = None
if sys.argv[4] == "md":  # 30 MD steps (10 equilibration + 2 frames x 10) with the labeler's own MD engine
    from mlffbench.data.labelers import NVTSpec
    spec = NVTSpec(temperature=300.0, n_frames=2, timestep_fs=5.0, interval_fs=50.0, equilibration_fs=50.0)
    w = time.perf_counter()
    labeler.run_nvt(cell, spec)
    md = (time.perf_counter() - w) / 30
print("RESULT " + json.dumps({"wall": wall, "cpu": cpu, "atoms": len(cell), "md_step": md,
                              "provenance": labeler.provenance([element])}))
"""

LABELERS = {
    "sevennet": ({"name": "universal", "model": "sevennet"}, "sevenn"),
    "chgnet": ({"name": "universal", "model": "chgnet"}, "chgnet"),
    "lammps": ({"name": "lammps"}, None),
    "gpaw": ({"name": "gpaw", "ecut": 350, "kspacing": 0.5, "smearing": 0.2, "mpi_ranks": 2}, None),
}


def time_labeler(name: str, element: str, calls: int, threads: int) -> dict | None:
    spec, env = LABELERS[name]
    python = envs.python_of_env(env, quiet=True) if env else sys.executable
    if name == "gpaw":
        calls = 1
    run_env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if env:
        spec = {**spec, "threads": threads}
    md = "static" if name == "gpaw" else "md"
    proc = subprocess.run([python, "-c", TIMER, json.dumps(spec), element, str(calls), md], capture_output=True,
                          text=True, env=run_env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(line[len("RESULT "):])


def trajectory_calls(temperatures_cfg: dict, element: str, frames=100, equilibration=1000, every=10) -> int:
    """Model calls of one element's data generation with the generic MD (one per step)."""
    n_labels = len(temperatures.for_element(temperatures_cfg, element))
    return n_labels * (equilibration + frames * every)


def cell_atoms(element: str) -> int:
    lattice = elements_db.get(element).lattice
    ground = build.prototype(element, lattice, *build.initial_guess(element, lattice))
    return len(ground.repeat(build.supercell_repeats(ground.cell, 7.0))) - 1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", nargs="+", default=["Cu", "W", "Ti"])
    parser.add_argument("--labelers", nargs="+", default=list(LABELERS), choices=list(LABELERS))
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    rows = []
    print(f"{'labeler':9} {'element':7} {'atoms':>5} {'wall s/call':>11} {'cpu s/call':>10} {'s/MD step':>9}  "
          "provenance", flush=True)
    for name in args.labelers:
        for element in args.elements:
            started = time.perf_counter()
            r = time_labeler(name, element, args.calls, args.threads)
            if "error" in r:
                print(f"{name:9} {element:7}   n/a  {r['error']}", flush=True)
                continue
            wall, cpu = statistics.median(r["wall"]), statistics.median(r["cpu"])
            step = r["md_step"]
            rows.append({"labeler": name, "element": element, "atoms": r["atoms"], "wall": wall, "cpu": cpu,
                         "step": step if step is not None else wall})
            shown = f"{step:9.4f}" if step is not None else f"{'-':>9}"
            print(f"{name:9} {element:7} {r['atoms']:5d} {wall:11.4f} {cpu:10.4f} {shown}  {r['provenance']} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    print("\nprojected data generation at the quick frame count (100 frames per temperature, 2000 MD steps per "
          "trajectory; GPAW: one static call per step, i.e. AIMD), serial, from cost = a + b * atoms per step:")
    tm23 = {"cold": 0.25, "warm": 0.75, "melt": 1.25}
    metal43 = {c: f"metal43 {c}" for c in elements_db.METAL43_COLUMNS}
    for name in args.labelers:
        got = [r for r in rows if r["labeler"] == name]
        if not got:
            continue
        x = np.array([r["atoms"] for r in got], float)
        y = np.array([r["step"] for r in got])
        a, b = (np.polyfit(x, y, 1)[::-1] if len(set(x)) > 1 else (0.0, float(y.mean() / x.mean())))
        a, b = max(a, 0.0), max(b, 0.0)
        for config, table, temps in (("tm23-all", elements_db.TM23, tm23), ("metal43", elements_db.METAL43, metal43)):
            calls = sum(trajectory_calls(temps, el) * (a + b * cell_atoms(el)) for el in table)
            n_traj = sum(len(temperatures.for_element(temps, el)) for el in table)
            print(f"  {name:9} {config:9} {n_traj:4d} trajectories: {calls / 3600:8.1f} h of labeler wall time "
                  f"(cost {a:.3f} s + {b * 1e3:.2f} ms x atoms per step)")


if __name__ == "__main__":
    main()
