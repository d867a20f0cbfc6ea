#!/usr/bin/env python
"""Orchestration overhead of the main job: planning, store writes and scheduling as a fraction of compute.

    .venv/bin/python benchmarks/bench_orchestration.py                      # quick config, Cu,W,Ti, Dask 2 workers
    .venv/bin/python benchmarks/bench_orchestration.py --elements Cu --executor inprocess

Runs the config into a fresh temporary run directory and reports: planning time; time inside RunStore calls (the
coordinator's SQLite transactions, timed by wrapping the methods in this process only); executor start-up;
the sum of the jobs' own wall times (measured inside the job); and overhead = 1 - sum(job wall) / (run wall x
workers), i.e. the share of the workers' time not spent in job bodies (start-up, scheduling, idle tails).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

from mlffbench.config import load_config
from mlffbench.engine import executors, runner
from mlffbench.engine.store import RunStore


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", nargs="?", default="quick")
    ap.add_argument("--elements", default="Cu,W,Ti")
    ap.add_argument("--executor", default="dask", choices=["dask", "inprocess"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    config = load_config(args.config)
    config.data.elements = args.elements.split(",")
    config.execution.executor, config.execution.workers = args.executor, args.workers
    config.check("")

    store_time = defaultdict(float)
    for name in ("add_job", "start", "finish", "fail", "get", "set_provenance"):
        original = getattr(RunStore, name)

        def timed(self, *a, _original=original, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _original(self, *a, **k)
            finally:
                store_time[_name] += time.perf_counter() - t0
        setattr(RunStore, name, timed)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        planned = runner.MainJob(config, tmp).plan()
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        executor = executors.make_executor(config.execution)
        startup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        jobs = runner.MainJob(config, tmp, executor=executor).run(progress=False)
        run_s = time.perf_counter() - t0
        executor.close()
    workers = 1 if args.executor == "inprocess" else args.workers
    job_s = sum(j.wall_s or 0.0 for j in jobs)
    store_s = sum(store_time.values())
    print(f"config {config.name}, elements {args.elements}, executor {args.executor} x {workers}, "
          f"{len(planned)} jobs, {os.cpu_count()} cores")
    print("| planning | executor start-up | store calls | run wall | sum of job wall | overhead |")
    print("|---|---|---|---|---|---|")
    print(f"| {plan_s:.2f} s | {startup_s:.2f} s | {store_s:.2f} s ({store_s / run_s:.1%} of run) | {run_s:.1f} s "
          f"| {job_s:.1f} s | {1 - job_s / (run_s * workers):.1%} |")
    print("store calls:", ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in sorted(store_time.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
