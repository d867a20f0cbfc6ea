#!/usr/bin/env python
"""FLARE 1.4.0 trained with the same hyperparameters as our acegp on the full mlearn sets (issue 3, item c).

For each element: our acegp is fitted on the whole mlearn training set (settings of benchmarks/mlearn_acegp.py:
B2, zeta 2, r_cut 5 Å, n_max 8, l_max 3, composition energy shift; sparse_per_frame 2 here) with its
hyperparameters by maximum likelihood. FLARE (the ``flare`` model family, mlffbench.models.adapters.flare, in the
``flare`` env) is then built on the same training frames with the SAME sparse environments
(``add_specific_environments``), the SAME optimised hyperparameters (optimisation off: FLARE's own ML optimisation
does not finish on 10-27k training atoms on this machine), the same per-atom sigma_E (FLARE's rel_e_noise = N),
the same composition shift (FLARE's single_atom_energies) and the same K_uu jitter (ours 1e-8 on the unit-sigma
K_uu = FLARE's absolute jitter 1e-8 sigma^2). Both are scored on the mlearn test set with the same metrics code.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/mlearn_flare.py --elements Cu,Mo,Si

Columns: E MAE meV/atom, F MAE eV/Å (components), S MAE GPa (finite Voigt components); FLARE build = descriptors
+ add_training_structure + sparse environments + update_matrices_QR (s); FLARE predict = Structure + predict_mean
per test atom (µs/atom); agree = max |FLARE - acegp| / max |acegp| over the test predictions (E, F, S).
FLARE 1.4.0 may miss neighbours in strongly skewed cells (mlearn's Elastic/Surface frames include some): that
shows up as disagreement, not as an error. FLARE cannot mask single stress components: a training frame with a
NaN stress component (Li shear) is trained without stress on FLARE's side (acegp masks the component).
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

import numpy as np

from mlffbench import frames as fr
from mlffbench import metrics
from mlffbench.data.io import read_frames, write_frames
from mlffbench.data.labelers.potentials import MLEARN_ELEMENTS
from mlffbench.models.acegp import AceGPModel
from mlffbench.reference_scores import read_mlearn
from mlffbench.units import GPA

ACEGP_PARAMS = {"descriptor": "B2", "power": 2, "cutoff": 5.0, "n_max": 8, "l_max": 3, "sparse_per_frame": 2,
                "energy_shift": "composition"}

#: runs in the flare env: fit FlareModel (argv: train, test, params json, out json, memory limit GB), predict
WORKER = r"""
import json, resource, sys, time
import numpy as np
limit = float(sys.argv[5]) * 2**30
resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))  # a clean MemoryError, not the OOM killer
from mlffbench.data.io import read_frames
from mlffbench.models.adapters.flare import FlareModel
train, test = read_frames(sys.argv[1]), read_frames(sys.argv[2])
out = {}
try:
    pot = FlareModel().fit(train, None, json.loads(sys.argv[3]), None)
    t0 = time.perf_counter()
    pred = [pot.evaluate(a) for a in test]
    out = {"predict_s": time.perf_counter() - t0, "info": {k: v for k, v in pot.info.items() if k != "sparse_atoms"},
           "energy": [p[0] for p in pred], "forces": [p[1].tolist() for p in pred],
           "stress": [p[2].tolist() for p in pred]}
except MemoryError as exc:
    out = {"error": f"MemoryError under a {sys.argv[5]} GB address-space limit ({exc})"}
with open(sys.argv[4], "w") as fh:
    json.dump(out, fh)
"""


def scores(pred, test) -> dict:
    s = metrics.score(pred, test)
    return {"E": 1e3 * s["energy_per_atom"].mae, "F": s["forces"].mae, "S": s["stress"].mae / GPA}


def agreement(a, b) -> dict:
    out = {}
    for name in ("energy", "forces", "stress"):
        x = np.concatenate([np.ravel(fr.label(f, name)) for f in a])
        y = np.concatenate([np.ravel(fr.label(f, name)) for f in b])
        ok = np.isfinite(x) & np.isfinite(y)
        out[name] = float(np.abs(x[ok] - y[ok]).max() / np.abs(x[ok]).max())
    return out


def run_element(element: str, params: dict, flare_python: str, mem_gb: float, tmp: Path) -> dict:
    write_frames(tmp / "train.extxyz", read_mlearn(element, "train"))
    write_frames(tmp / "test.extxyz", read_mlearn(element, "test"))
    train, test = read_frames(tmp / "train.extxyz"), read_frames(tmp / "test.extxyz")  # both sides: same rounding
    n_train_atoms, n_test_atoms = sum(len(f) for f in train), sum(len(f) for f in test)
    print(f"# {element}: acegp on {len(train)} frames / {n_train_atoms} atoms", file=sys.stderr, flush=True)
    start = time.perf_counter()
    prepared = AceGPModel().prepare(train, params)
    ours = prepared.optimise()
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    ours_pred = ours.predict(test)
    ours_predict_us = 1e6 * (time.perf_counter() - start) / n_test_atoms
    hyps = {k: float(ours.hyperparameters[k]) for k in ("sigma", "sigma_e", "sigma_f", "sigma_s")}
    jitter = float(prepared.params["jitter"])
    flare_params = {"descriptor": "B2", "cutoff": params["cutoff"], "n_max": params["n_max"], "l_max": params["l_max"],
                    "power": params["power"], **hyps, "optimise": False,
                    "energy_noise": prepared.params["energy_noise"], "energy_shift": params["energy_shift"],
                    "kuu_jitter": jitter * hyps["sigma"] ** 2,
                    "sparse_atoms": [[int(a) for a in s] for s in ours.info["sparse_atoms"]]}
    row = {"element": element, "n_train": len(train), "n_train_atoms": n_train_atoms, "n_test": len(test),
           "n_test_atoms": n_test_atoms, "n_sparse": int(ours.info["n_sparse"]), "hyperparameters": hyps,
           "acegp": {**scores(ours_pred, test), "fit_s": fit_s, "predict_us_per_atom": ours_predict_us,
                     "optimisation": ours.info["optimisation"]}}
    print(f"# {element}: FLARE build with acegp's {row['n_sparse']} sparse environments and hyperparameters {hyps}",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    proc = subprocess.run([flare_python, "-c", WORKER, str(tmp / "train.extxyz"), str(tmp / "test.extxyz"),
                           json.dumps(flare_params), str(tmp / "flare.json"), str(mem_gb)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    out = json.loads((tmp / "flare.json").read_text()) if (tmp / "flare.json").is_file() else {}
    if proc.returncode or "error" in out or not out:
        why = out.get("error") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        row["flare"] = {"error": why, "process_s": wall}
        return row
    flare_pred = [fr.labelled(f, e, np.array(F), np.array(S)) for f, e, F, S in
                  zip(test, out["energy"], out["forces"], out["stress"])]
    info = out["info"]
    row["flare"] = {**scores(flare_pred, test), "build_s": info["build_s"], "process_s": wall,
                    "predict_us_per_atom": 1e6 * out["predict_s"] / n_test_atoms,
                    "n_sparse": info["n_sparse"], "labels": info["labels"],
                    "log_marginal_likelihood": info["log_marginal_likelihood"],
                    "acegp_log_marginal_likelihood": ours.info["log_marginal_likelihood"],
                    "agreement": agreement(ours_pred, flare_pred), "deviations": info["deviations"]}
    return row


def print_row(r: dict) -> None:
    a, f = r["acegp"], r["flare"]
    h = r["hyperparameters"]
    hyp = f"σ={h['sigma']:.3g} σE={h['sigma_e']:.2g} σF={h['sigma_f']:.2g} σS={h['sigma_s']:.2g}"
    head = f"| {r['element']} | {r['n_train']} / {r['n_train_atoms']} | {r['n_sparse']} | {hyp} "
    ours = f"| {a['E']:.2f} | {a['F']:.4f} | {a['S']:.3f} | {a['fit_s']:.0f} | {a['predict_us_per_atom']:.0f} "
    if "error" in f:
        print(head + ours + f"| failed: {f['error']} | | | | | |", flush=True)
        return
    ag = f["agreement"]
    print(head + ours + f"| {f['E']:.2f} | {f['F']:.4f} | {f['S']:.3f} | {f['build_s']:.0f} | "
          f"{f['predict_us_per_atom']:.0f} | {ag['energy']:.1e} / {ag['forces']:.1e} / {ag['stress']:.1e} |",
          flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", default=",".join(MLEARN_ELEMENTS))
    ap.add_argument("--params", default="{}", help="JSON dict overriding the acegp settings (ACEGP_PARAMS)")
    ap.add_argument("--flare-mem-gb", type=float, default=14.0, help="address-space limit of the FLARE process")
    ap.add_argument("--json", help="write every number to this file")
    args = ap.parse_args(argv)
    from mlffbench.models.flare_env import require_flare_python

    flare_python = str(require_flare_python(quiet=False))
    params = {**ACEGP_PARAMS, **json.loads(args.params)}
    if params.get("raw_dot_weight", 0):
        raise SystemExit("mlearn_flare: --params raw_dot_weight must be 0: FLARE's kernel has no un-normalised term")
    print(f"acegp {params}; FLARE: mir-flare 1.4.0 via the flare adapter, same sparse set + hyperparameters; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("| El | train frames / atoms | m | hyperparameters (acegp ML) | acegp E meV/atom | acegp F eV/Å | "
          "acegp S GPa | acegp fit s | acegp µs/atom | FLARE E meV/atom | FLARE F eV/Å | FLARE S GPa | "
          "FLARE build s | FLARE µs/atom | agree E / F / S |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for element in args.elements.split(","):
        with tempfile.TemporaryDirectory(prefix=f"mlearn_flare_{element}_") as tmp:
            row = run_element(element, params, flare_python, args.flare_mem_gb, Path(tmp))
        rows.append(row)
        print_row(row)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
