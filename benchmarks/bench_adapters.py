"""Per model family on this CPU: training time per epoch and inference µs/atom on a 32-atom and a 500-atom cell.

Every family is trained through the engine (MainJob, accuracy task) on the same tiny LAMMPS Cu data set
(3 x 10 frames of the 31-atom TM23 cell, last 20 % of each trajectory for test), each in its own environment
(mlffbench.envs; built on first use), with short training (a few epochs: the timing, not the accuracy, is the
point here). Inference is timed in the family's environment on fcc Cu 2x2x2 (32 atoms) and 5x5x5 (500 atoms)
conventional cells, rattled by 0.05 Å: energy + forces + stress per call, one untimed warm-up call.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_adapters.py [--families mace,nequip,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: family -> params: short training on purpose (the timing, not the accuracy, is measured)
FAMILIES = {
    "acegp": {"descriptor": "B2", "cutoff": 5.0, "n_max": 8, "l_max": 3, "power": 2},
    "flare": {"descriptor": "B2", "cutoff": 5.0, "n_max": 8, "l_max": 3, "power": 2},
    "mace": {"num_channels": 32, "max_L": 1, "correlation": 3, "r_max": 5.0, "epochs": 5, "batch_size": 2,
             "stage_two_fraction": 0.2},
    "nequip": {"num_layers": 4, "l_max": 1, "num_features": [32, 16], "r_cut": 5.0, "max_epochs": 5,
               "batch_size": 1},
    "allegro": {"num_layers": 2, "l_max": 1, "num_scalar_features": 32, "num_tensor_features": 8, "mlp_width": 32,
                "r_cut": 5.0, "max_epochs": 5, "batch_size": 1},
    "gap": {"n_sparse_soap": 500, "n_max": 8, "l_max": 4, "cutoff": 5.0},
    "deepmd": {"epochs": 5, "batch_size": 1, "start_pref_v": 1.0, "limit_pref_v": 1.0},
    "torchani": {"hidden": [64, 32], "epochs": 5, "batch_size": 2},
    "sgdml": {"sig": [20, 40]},
    "grace": {"epochs": 5, "batch_size": 2},
    "chgnet": {},
    "sevennet": {},
}


def infer_timing(potential_json: str, min_seconds: float = 2.0) -> dict:
    """Run inside the family env: µs/atom of energy+forces+stress on 32- and 500-atom fcc Cu.

    A model that refuses a cell (sGDML knows only its one training system) gets the reason instead of a time.
    """
    from ase.build import bulk

    from mlffbench.models.base import load_potential

    pot = load_potential(potential_json)
    out = {}
    for reps in ((2, 2, 2), (5, 5, 5)):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
        atoms.rattle(0.05, seed=0)
        try:
            pot.evaluate(atoms)  # warm-up (model load, compilation, neighbour-list setup)
        except Exception as exc:  # noqa: BLE001 - reported in the table, not fatal
            out[len(atoms)] = f"refused: {str(exc).splitlines()[0][:60]}"
            continue
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < min_seconds:
            atoms.positions[0, 0] += 1e-6  # a new structure each call (no calculator caching)
            pot.evaluate(atoms)
            calls += 1
            if calls >= 50:
                break
        out[len(atoms)] = 1e6 * (time.perf_counter() - start) / calls / len(atoms)
    return out


def _us(value) -> str:
    """A timing cell: µs/atom, the refusal reason, or nan when inference failed."""
    if isinstance(value, str):
        return "n/a"
    return f"{value if value is not None else float('nan'):.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--infer", help=argparse.SUPPRESS)  # internal: time one saved potential, print JSON
    args = parser.parse_args()
    if args.infer:
        print(json.dumps(infer_timing(args.infer)))
        return 0

    import yaml

    from mlffbench import envs
    from mlffbench.config import load_config
    from mlffbench.engine.runner import MainJob

    families = [f for f in args.families.split(",") if f]
    run_root = Path(args.out or tempfile.mkdtemp(prefix="bench_adapters_"))
    run_root.mkdir(parents=True, exist_ok=True)
    models, unavailable = [], {}
    for family in families:
        try:
            python = envs.python_for(family)
        except envs.EnvBuildError as exc:
            unavailable[family] = str(exc)
            continue
        models.append({"name": family, "params": FAMILIES[family], **({"python": python} if python else {})})
    cfg = {"name": "bench-adapters", "seed": 0,
           "data": {"elements": ["Cu"], "frames_per_temperature": 10, "equilibration_fs": 200},
           "split": {"test_last": 0.2}, "models": models,
           "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
           "execution": {"executor": "inprocess"}}
    (run_root / "bench.yaml").write_text(yaml.safe_dump(cfg))
    jobs = MainJob(load_config(run_root / "bench.yaml"), run_root / "run").run(progress=False)
    rows = []
    for job in jobs:
        if job.kind != "fit_score":
            continue
        family = job.inputs["model"]
        if job.status != "done":
            rows.append((family, "-", "-", "-", "-", "-", "-", "-", f"failed: {job.error}"))
            continue
        model_json = run_root / "run" / "models" / job.inputs["job_id"] / "potential.json"
        python = next((m.get("python") for m in models if m["name"] == family), None) or sys.executable
        proc = subprocess.run([python, __file__, "--infer", str(model_json)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        timing = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
        info = json.loads(model_json.read_text())["state"].get("info", {})
        r = job.result
        per_epoch = info.get("train_s_per_epoch")
        overall = r["tests"]["test"]["overall"]
        rows.append((
            family, info.get("version", "(native)"), str(r["cost"].get("n_parameters") or info.get("n_parameters")),
            f"{r['cost']['fit_s']:.1f}", f"{per_epoch:.2f}" if per_epoch else "-",
            _us(timing.get("32")), _us(timing.get("500")),
            f"{1e3 * overall['forces.mae']:.0f}",
            "; ".join(f"{n} atoms {v}" for n, v in timing.items() if isinstance(v, str))
            if proc.returncode == 0 else f"inference failed: {proc.stderr.strip().splitlines()[-1:]}"))
    for family, why in unavailable.items():
        rows.append((family, "-", "-", "-", "-", "-", "-", "-", f"unavailable: {why}"))
    head = ("family", "version", "params", "fit s", "s/epoch", "us/atom 32", "us/atom 500", "F MAE meV/A", "note")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    print(f"Cu, 24 training frames of 31 atoms, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs; run dir {run_root}")
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
