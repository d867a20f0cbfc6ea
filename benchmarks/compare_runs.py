"""Compare every result value of two run directories (e.g. the quick main job before and after a refactor).

Fit-and-score jobs are matched by (task, data set, model label, point); data jobs by data set. Compared: every
number of every test set (overall, per group / per temperature, per element), training and test sizes, the model
info numbers (log marginal likelihood, sparse set size, ...) and the params; and the bytes (sha256) of every
generated trajectory file. Costs (wall times, memory) are not results and are skipped. Older stores keyed groups as
``by_temperature`` and data sets as ``element``; both spellings are read.

    .venv/bin/python benchmarks/compare_runs.py runs/quick-before runs/quick-after [--rtol 0] [--added-ok]

``--added-ok``: a change that adds results (new values such as confidence intervals, jobs of a new task) is
compared on what the before run has; values and jobs only in the after run are counted as added, not as
differences (values or jobs that disappeared still are).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path


def jobs(run_dir: Path) -> list[dict]:
    # through the store's reader (read-only), so every result is verified against its checksum: an edited value
    # is a one-line error, never a number compared as if the run had computed it
    from mlffbench.engine.store import open_existing

    store = open_existing(run_dir)
    try:
        return [{"kind": j.kind, "name": j.name, "inputs": j.inputs, "status": j.status, "result": j.result}
                for j in store.jobs()]
    finally:
        store.close()


def _point(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


def fit_results(run_dir: Path) -> dict[tuple, dict]:
    out = {}
    for job in jobs(run_dir):
        r = job["result"]
        if job["kind"] != "fit_score" or job["status"] != "done":
            continue
        dataset = r.get("dataset") or r.get("element")
        out[(r["task"], dataset, r["label"], _point(r.get("point", {})))] = r
    return out


def numbers(r: dict) -> dict[str, float]:
    """Every compared number of one fit result, flattened, with the group breakdown under one spelling."""
    flat = {"n_train": r["n_train"], "n_train_atoms": r.get("n_train_atoms")}
    for name, test in r["tests"].items():
        flat[f"{name}.n_test"] = test["n_test"]
        flat[f"{name}.n_atoms"] = test.get("n_atoms")
        for key, value in test["overall"].items():
            flat[f"{name}.overall.{key}"] = value
        for group, stats in (test.get("by_group") or test.get("by_temperature") or {}).items():
            for key, value in stats.items():
                flat[f"{name}.group.{group}.{key}"] = value
        for element, stats in (test.get("by_element") or {}).items():
            for key, value in stats.items():
                flat[f"{name}.element.{element}.{key}"] = value
    for key, value in (r.get("model_info") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"model_info.{key}"] = value
    return flat


def same(a, b, rtol: float) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b if rtol == 0 else math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


def trajectory_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every generated trajectory file by its file name (old layout data/, new datasets/)."""
    out = {}
    for folder in ("data", "datasets"):
        for path in sorted((run_dir / folder).rglob("*_*.extxyz")) if (run_dir / folder).is_dir() else []:
            if "@" not in str(path.relative_to(run_dir)):  # variants are compared by their own name below
                out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0: bit-identical)")
    ap.add_argument("--added-ok", action="store_true", help="values and jobs only in AFTER are additions")
    args = ap.parse_args(argv)
    from mlffbench.errors import MlffbenchError

    try:
        before, after = fit_results(args.before), fit_results(args.after)
    except MlffbenchError as exc:  # not a run directory, a damaged store, a result edited after it was written
        print(f"compare_runs: error: {exc}", file=sys.stderr)
        return 2
    only = sorted(set(before) - set(after)) if args.added_ok else sorted(set(before) ^ set(after))
    added_jobs, added_values = len(set(after) - set(before)), 0
    compared = differ = 0
    worst = (0.0, None)
    mismatches = []
    per_dataset: dict[str, list[int]] = {}  # data set -> [values compared, values different]
    for key in sorted(set(before) & set(after)):
        a, b = numbers(before[key]), numbers(after[key])
        if before[key].get("params") != after[key].get("params"):
            mismatches.append(f"{key}: params differ")
        names = sorted(set(a) | set(b))
        if args.added_ok:
            added_values += len(set(b) - set(a))
            names = sorted(a)
        tally = per_dataset.setdefault(key[1], [0, 0])
        for name in names:
            compared += 1
            tally[0] += 1
            if not same(a.get(name), b.get(name), args.rtol):
                differ += 1
                tally[1] += 1
                x, y = a.get(name), b.get(name)
                if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x:
                    rel = abs(y - x) / abs(x)
                    if rel > worst[0]:
                        worst = (rel, f"{key} {name}: {x!r} -> {y!r}")
                if len(mismatches) < 10:
                    mismatches.append(f"{key} {name}: {a.get(name)!r} -> {b.get(name)!r}")
    hb, ha = trajectory_hashes(args.before), trajectory_hashes(args.after)
    files_same = sum(hb[f] == ha.get(f) for f in hb)
    print(f"fit-and-score jobs: {len(before)} before, {len(after)} after, {len(set(before) & set(after))} matched, "
          f"{len(only)} in one run only")
    print(f"result values compared: {compared}; different: {differ} (rtol {args.rtol:g}); "
          f"largest relative difference: {worst[0]:.3g}" + (f" ({worst[1]})" if worst[1] else ""))
    print(f"trajectory files: {len(hb)} before, {len(ha)} after, {files_same} byte-identical")
    if args.added_ok:
        print(f"added in the after run: {added_values} values of matched jobs, {added_jobs} jobs")
    # per data set, so a change meant to touch some data sets only (e.g. a new reference for two metals) shows
    # that every other one is identical
    print("per data set (different / compared): " + ", ".join(
        f"{name} {d}/{c}" for name, (c, d) in sorted(per_dataset.items())))
    for line in only[:10]:
        print(f"  only in one run: {line}")
    for line in mismatches:
        print(f"  {line}")
    return 0 if not differ and not only and files_same == len(hb) == len(ha) else 1


if __name__ == "__main__":
    sys.exit(main())
