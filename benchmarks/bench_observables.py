#!/usr/bin/env python
"""Observables of the native ACE GP vs its LAMMPS reference on TM23-style data (issue 6).

For each metal: train ``acegp`` on the TM23 full split's training frames of the data in ``--data`` (made by
``mlffbench generate --out DIR --elements Cu,Ni,W --frames 40``), save the potential, then run the
``observables`` task (``mlffbench.tasks.observables.run``: every observable, model vs the LAMMPS labeler the
data was made with) and print each observable's error per metal and each observable's wall time.

    .venv/bin/mlffbench generate --out /tmp/obs/data --elements Cu,Ni,W --frames 40
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_observables.py --data /tmp/obs/data --out /tmp/obs/run

``--quick`` halves the MD lengths (ramp/hold 2.5 ps, RDF 1.2 ps); ``--json`` writes every result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlffbench.data import splits  # noqa: E402
from mlffbench.data.io import read_frames  # noqa: E402
from mlffbench.models.registry import make_model  # noqa: E402
from mlffbench.observables import NAMES  # noqa: E402
from mlffbench.tasks import observables as task  # noqa: E402

PARAMS = {"descriptor": "B2", "cutoff": 5.0, "n_max": 8, "l_max": 3, "power": 2}
QUICK = {"ramp_steps": 1250, "hold_steps": 1250, "nve_steps": 1000, "rdf_equilibration_steps": 200,
         "rdf_steps": 600}


def train(data: Path, element: str, out: Path) -> tuple[Path, float, dict]:
    frames = []
    for label in ("cold", "warm", "melt"):
        frames += read_frames(data / element / f"{element}_{label}.extxyz", require=("energy", "forces"))
    split = splits.tm23_full(frames, 0.1)
    workdir = out / element / "model"
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    potential = make_model("acegp").fit([frames[i] for i in split.train], None, PARAMS, workdir)
    fit_s = time.perf_counter() - start
    path = workdir / "potential.json"
    potential.save(path)
    labeler = json.loads((data / element / "cell.json").read_text())["labeler"]
    return path, fit_s, {"n_train": len(split.train), "labeler": labeler}


def report(result: dict) -> list[str]:
    """One line per observable: its main errors and wall time."""
    lines = []
    for name, r in result["observables"].items():
        e, m, ref = r.get("errors") or {}, r.get("model") or {}, r.get("reference") or {}
        if r["status"] != "ok":
            lines.append(f"  {name:9s} FAILED ({r['error']})  [{r['wall_s']:.1f} s]")
            continue
        if name == "eos":
            text = (f"a0 {m['a0']:.4f} vs {ref['a0']:.4f} Å ({e['a0_percent']:.2f} %), B {m['B_GPa']:.1f} vs "
                    f"{ref['B_GPa']:.1f} GPa ({e['B_percent']:.1f} %), V0 {e['v0_percent']:.2f} %")
        elif name == "elastic":
            text = ", ".join(f"{k} {m['constants_GPa'][k]:.1f}/{v:.1f} ({e[k]['percent']:.0f} %)"
                             for k, v in ref["constants_GPa"].items())
            text += f"; Cauchy {m['cauchy_GPa']:.1f}/{ref['cauchy_GPa']:.1f} GPa (model/ref)"
        elif name == "phonons":
            text = (f"MAE {e['freq_mae_THz']:.3f} THz, RMSE {e['freq_rmse_THz']:.3f} THz, DOS overlap "
                    f"{e['dos_overlap']:.3f}, imaginary model/ref {m['imaginary']}/{ref['imaginary']} "
                    f"(min {m['min_frequency_THz']:.2f} THz)")
        elif name == "vacancy":
            text = (f"E_f {m['formation_eV']:.3f} vs {ref['formation_eV']:.3f} eV "
                    f"({e['formation_eV']['percent']:.1f} %), E_m {m['migration_eV']:.3f} vs "
                    f"{ref['migration_eV']:.3f} eV ({e['migration_eV']['percent']:.1f} %), NEB converged "
                    f"model/ref {m['neb_converged']}/{ref['neb_converged']}")
        elif name == "rdf":
            text = "W1 " + ", ".join(f"{k} {v['w1']:.4f}" for k, v in e["temperatures"].items()) + " Å"
        elif name == "stability":
            def runs(side):
                return ", ".join(f"{x['protocol']} {'ok' if x['survived'] else 'FAIL@%.2fps' % x['time_to_failure_ps']}"
                                 for x in side["runs"])
            text = (f"model [{runs(m)}] ref [{runs(ref)}]; NVE drift {_num(m['nve_drift_meV_atom_ps'])} vs "
                    f"{_num(ref['nve_drift_meV_atom_ps'])} meV/atom/ps")
        elif name == "speed":
            text = (f"{m['us_per_atom_step_largest']:.1f} vs {ref['us_per_atom_step_largest']:.1f} µs/atom/step "
                    f"at {m['natoms'][-1]} atoms, exponent {m['scaling_exponent']:.2f} vs "
                    f"{ref['scaling_exponent']:.2f}, {m['steps_per_s'][0]:.0f} steps/s at {m['natoms'][0]} atoms")
        else:
            text = json.dumps(e)[:200]
        lines.append(f"  {name:9s} {text}  [{r['wall_s']:.1f} s]")
    return lines


def _num(x) -> str:
    return "-" if x is None else f"{x:+.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--elements", default="Cu,Ni,W")
    ap.add_argument("--observables", default=",".join(NAMES))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    settings = dict(QUICK) if args.quick else {}
    results = []
    for element in args.elements.split(","):
        path, fit_s, meta = train(args.data, element, args.out)
        print(f"{element}: acegp {PARAMS} trained on {meta['n_train']} frames in {fit_s:.1f} s; "
              f"reference {meta['labeler']}", flush=True)
        start = time.perf_counter()
        result = None
        for name in args.observables.split(","):  # one at a time, so each line prints as soon as it is done
            one = task.run({"element": element, "potential": str(path), "labeler": {"name": "lammps"},
                            "observables": [name], "settings": settings, "model": "acegp",
                            "label": "acegp-B2"}, args.out / element)
            print("\n".join(report(one)), flush=True)
            if result is None:
                result = one
            else:
                result["observables"].update(one["observables"])
        print(f"  total observables wall time {time.perf_counter() - start:.1f} s", flush=True)
        results.append(result)
    print()
    print(task.TITLE)
    print(task.table(task.summarise(results)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
