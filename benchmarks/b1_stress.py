"""Why ace-B1's stress is worse than predicting zero stress (issue 18): the quick protocol on Cu and W, ace-B1 and
ace-B2 with FLARE's normalised dot-product kernel, the same with an un-normalised term added
(``raw_dot_weight``), and mean_energy. Prints each model's stress MAE split into its pressure part (the isotropic
third of the trace) and its deviatoric part, and how little a B1 descriptor's direction moves under compression
compared with its length (the normalised kernel sees only the direction).

    .venv/bin/python benchmarks/b1_stress.py [--run-dir DIR] [--elements Cu W]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from mlffbench.config import load_config
from mlffbench.engine.runner import MainJob
from mlffbench.units import GPA

PARAMS = {"B1": {"descriptor": "B1", "cutoff": 5.0, "n_max": 8, "power": 2},
          "B2": {"descriptor": "B2", "cutoff": 5.0, "n_max": 8, "l_max": 3, "power": 2}}


def config(elements: list[str]) -> dict:
    models = []
    for d, p in PARAMS.items():
        models.append({"name": "acegp", "label": f"ace-{d}", "params": p})
        models.append({"name": "acegp", "label": f"ace-{d}+raw", "params": {**p, "raw_dot_weight": 10.0,
                                                                          "raw_dot_power": 1}})
    models.append({"name": "mean_energy"})
    return {"name": "b1-stress", "seed": 0,
            "data": {"elements": elements, "labeler": "lammps", "temperatures": {"cold": 0.25, "warm": 0.75,
                                                                                  "melt": 1.25},
                     "frames_per_temperature": 100, "equilibration_fs": 5000, "interval_fs": 50, "timestep_fs": 5,
                     "min_length": 7.0},
            "split": {"test_last": 0.1}, "models": models, "tasks": {"accuracy": True},
            "execution": {"executor": "inprocess"}}


def stress_parts(run_dir: Path, result: dict) -> tuple[float, float, float]:
    """(stress MAE, pressure MAE, deviatoric MAE) in GPa over the job's test frames."""
    from mlffbench.report.predictions import predict_test

    ref, pred = predict_test(run_dir, result, max_frames=None)
    r = np.array([f.get_stress() for f in ref]) / GPA
    p = np.array([f.get_stress() for f in pred]) / GPA
    pr, pp = r[:, :3].mean(axis=1), p[:, :3].mean(axis=1)
    dev_r, dev_p = r.copy(), p.copy()
    dev_r[:, :3] -= pr[:, None]
    dev_p[:, :3] -= pp[:, None]
    return float(np.abs(p - r).mean()), float(np.abs(pp - pr).mean()), float(np.abs(dev_p - dev_r).mean())


def descriptor_motion(element: str) -> tuple[float, float]:
    """Under a 2 % isotropic compression of the fcc/bcc crystal: the relative change of the B1 descriptor's length
    and the change of its direction (1 - cos)."""
    from ase.build import bulk

    from mlffbench.models.acegp.descriptors import AceDescriptor

    atoms = bulk(element, cubic=True).repeat(2)
    desc = AceDescriptor(kind="B1", cutoff=5.0, n_max=8, l_max=0, species=(int(atoms.numbers[0]),))
    d0 = desc.environments(atoms).desc[0]
    atoms.set_cell(atoms.cell * 0.98, scale_atoms=True)
    d1 = desc.environments(atoms).desc[0]
    cos = float(d0 @ d1 / np.linalg.norm(d0) / np.linalg.norm(d1))
    return float(np.linalg.norm(d1) / np.linalg.norm(d0) - 1), 1 - cos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="b1-stress-run")
    parser.add_argument("--elements", nargs="+", default=["Cu", "W"])
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "b1-stress.yaml"
    path.write_text(yaml.safe_dump(config(args.elements)))
    jobs = MainJob(load_config(path), run_dir / "run").run(progress=False)
    print(f"{'element':8} {'model':14} {'S MAE':>8} {'pressure':>9} {'deviatoric':>10} {'F MAE':>7}  (GPa; meV/Å)")
    for job in sorted((j for j in jobs if j.kind == "fit_score" and j.status == "done"),
                      key=lambda j: (j.result["dataset"], j.result["label"])):
        r = job.result
        total, pressure, deviatoric = stress_parts(run_dir / "run", {**r, "_inputs": job.inputs})
        print(f"{r['dataset']:8} {r['label']:14} {total:8.2f} {pressure:9.2f} {deviatoric:10.2f} "
              f"{1e3 * r['tests']['test']['overall']['forces.mae']:7.1f}")
    for element in args.elements:
        length, turn = descriptor_motion(element)
        print(f"{element}: 2 % compression changes the B1 descriptor's length by {100 * length:+.1f} % and its "
              f"direction by 1 - cos = {turn:.1e}")


if __name__ == "__main__":
    main()
