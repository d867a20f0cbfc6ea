#!/usr/bin/env python
"""Speed of TM23 data generation: the mlffbench path vs the raw LAMMPS binary running the identical input.

For each metal (and each temperature label asked for, default ``melt`` = 1.25 T_melt and ``cold`` = 0.25 T_melt):

1. the TM23 cell is prepared once (``sample.prepare_cell``: relaxed ground state -> supercell -> vacancy);
2. "ours" = the full mlffbench path for one trajectory: ``sample.sample_trajectory`` (LAMMPS run through the
   Python library, ``frames.dump``/``thermo.dat`` parsed by ``read_md_output``, TM23 metadata added) +
   ``io.write_frames`` to extxyz;
3. "raw" = the same ``in.nvt`` + ``atoms.data`` (written by ``lammps.write_md_input``) run by the LAMMPS
   executable, ``lmp -in in.nvt -log none -screen none``, in that folder with ``LD_LIBRARY_PATH=<venv>/lib``;
4. ours and raw alternate ``--repeats`` times (order flipped every repeat, fair on a noisy machine); medians,
   ratio ours/raw (goal: <= 1.2), frames/s;
5. "ours" is broken into: input writing, LAMMPS instance creation, MD inside the library (``lmp.file``),
   parse (``read_md_output``), metadata/other, write extxyz (``write_frames``).

The breakdown wraps functions of ``mlffbench.data.labelers.lammps`` inside this process only (timers around
the original functions; nothing in src/ is changed). The ``in.nvt`` ours ran is compared with the raw one.

The default executable is the real ELF ``lmp`` inside the ``lammps`` package; ``<venv>/bin/lmp`` is only a
Python shim that starts an interpreter and then spawns that ELF (``--lmp shim`` times the shim instead).

    .venv/bin/python benchmarks/bench_generate.py                       # all covered metals, melt
    .venv/bin/python benchmarks/bench_generate.py --elements Cu,W --labels melt,cold --repeats 5 --out b.json
    .venv/bin/python benchmarks/bench_generate.py --elements Cu --profile   # cProfile of parse and write
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlffbench import elements as elements_db
from mlffbench.config import TM23_FRACTIONS, DataConfig
from mlffbench.data import sample
from mlffbench.data import io as dio
from mlffbench.data.labelers import NVTSpec, make_labeler
from mlffbench.data.labelers import lammps as lmod
from mlffbench.errors import MlffbenchError

GOAL = 1.2


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- locating the executable ------------------------------------------------------------------------------


def venv_prefix() -> Path:
    return Path(sys.executable).parent.parent  # <venv>: the wheel's libmpi lies in <venv>/lib


def find_lmp(choice: str) -> Path:
    """'elf' (default): the real binary in the lammps package; 'shim': <venv>/bin/lmp; else a path."""
    shim = Path(sys.executable).parent / "lmp"
    if choice == "shim":
        path = shim
    elif choice == "elf":
        import importlib.util

        spec = importlib.util.find_spec("lammps")
        path = Path(list(spec.submodule_search_locations)[0]) / "lmp" if spec else shim
        if not path.is_file():
            path = shim
    else:
        path = Path(choice)
    if not path.is_file():
        sys.exit(f"bench_generate: no LAMMPS executable at {path}")
    return path


def raw_env() -> dict:
    env = dict(os.environ)
    lib = str(venv_prefix() / "lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


# --- timers around the library path -----------------------------------------------------------------------


class Breakdown:
    """Wraps lammps-module functions used by ``LammpsLabeler.run_nvt`` with timers (this process only)."""

    KEYS = ("input", "init", "md", "close", "parse")

    def __init__(self):
        self.t = dict.fromkeys(self.KEYS, 0.0)
        self.inputs: list[tuple[str, str]] = []  # (in.nvt text, atoms.data text) of each run

    def reset(self):
        self.t = dict.fromkeys(self.KEYS, 0.0)
        self.inputs.clear()

    @contextlib.contextmanager
    def installed(self):
        orig_write, orig_new, orig_read = lmod.write_md_input, lmod.new_lammps, lmod.read_md_output
        timers = self

        def write_md_input(atoms, spec, potential, workdir):
            t0 = time.perf_counter()
            path = orig_write(atoms, spec, potential, workdir)
            timers.t["input"] += time.perf_counter() - t0
            timers.inputs.append((Path(path).read_text(), (Path(workdir) / "atoms.data").read_text()))
            return path

        def new_lammps():
            t0 = time.perf_counter()
            lmp = orig_new()
            timers.t["init"] += time.perf_counter() - t0
            file_, close_ = lmp.file, lmp.close

            def file(path):
                t1 = time.perf_counter()
                try:
                    return file_(path)
                finally:
                    timers.t["md"] += time.perf_counter() - t1

            def close():
                t1 = time.perf_counter()
                try:
                    return close_()
                finally:
                    timers.t["close"] += time.perf_counter() - t1

            lmp.file, lmp.close = file, close
            return lmp

        def read_md_output(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig_read(*a, **kw)
            finally:
                timers.t["parse"] += time.perf_counter() - t0

        lmod.write_md_input, lmod.new_lammps, lmod.read_md_output = write_md_input, new_lammps, read_md_output
        try:
            yield self
        finally:
            lmod.write_md_input, lmod.new_lammps, lmod.read_md_output = orig_write, orig_new, orig_read


# --- one run of each --------------------------------------------------------------------------------------


def run_ours(el, label, cell, cfg, labeler, seed, out_dir: Path, timers: Breakdown) -> dict:
    timers.reset()
    path = sample.trajectory_path(out_dir, el, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    t0 = time.perf_counter()
    frames = sample.sample_trajectory(el, label, cell, cfg, labeler, None, seed)
    t1 = time.perf_counter()
    dio.write_frames(path, frames)
    t2 = time.perf_counter()
    b = dict(timers.t)
    traj = t1 - t0
    return {
        "total": t2 - t0, "trajectory": traj, "write": t2 - t1, **b,
        "other": traj - sum(b.values()), "frames": len(frames), "bytes": path.stat().st_size,
    }


def run_raw(lmp: Path, workdir: Path, env: dict, n_frames: int) -> float:
    for name in ("frames.dump", "thermo.dat"):
        (workdir / name).unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(lmp), "-in", "in.nvt", "-log", "none", "-screen", "none"], cwd=workdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"raw lmp failed (rc {proc.returncode}) in {workdir}:\n{proc.stdout.decode()[-2000:]}")
    dump = workdir / "frames.dump"
    if not dump.is_file():
        raise SystemExit(f"raw lmp produced no frames.dump in {workdir}")
    with open(dump) as fd:
        count = sum(1 for line in fd if line.startswith("ITEM: TIMESTEP"))
    if count < n_frames:
        raise SystemExit(f"raw lmp dumped {count} frames in {workdir}, expected >= {n_frames}")
    return elapsed


def raw_startup(lmp: Path, workdir: Path, env: dict, n: int = 5) -> float:
    """Median wall time of the executable on a trivial input: process start + MPI init + LAMMPS setup."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.empty").write_text("units metal\n")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([str(lmp), "-in", "in.empty", "-log", "none", "-screen", "none"], cwd=workdir, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def spec_for(el: str, label: str, cfg: DataConfig, seed: int) -> NVTSpec:
    """The spec ``sample.sample_trajectory`` builds (checked against the in.nvt it actually ran)."""
    t_melt = elements_db.get(el).t_melt
    return NVTSpec(
        temperature=cfg.temperatures[label] * t_melt, n_frames=cfg.frames_per_temperature,
        timestep_fs=cfg.timestep_fs, interval_fs=cfg.interval_fs, equilibration_fs=cfg.equilibration_fs,
        thermostat_steps=cfg.thermostat_steps, seed=sample.element_seed(seed, el, label, "md"),
    )


def profile_parse_write(el, label, cell, cfg, labeler, seed, tmp: Path, top: int) -> str:
    """cProfile of read_md_output and write_frames on one finished LAMMPS run (run by the library)."""
    spec = spec_for(el, label, cfg, seed)
    pot = labeler.potential([el])
    work = tmp / f"profile_{el}_{label}"
    inp = lmod.write_md_input(cell, spec, pot, work)
    lmp = lmod.new_lammps()
    cwd = os.getcwd()
    try:
        os.chdir(work)
        lmp.file(str(inp))
    finally:
        os.chdir(cwd)
        lmp.close()
    text = io.StringIO()
    prof = cProfile.Profile()
    prof.enable()
    frames = lmod.read_md_output(cell, spec, work, pot.provenance())
    prof.disable()
    print(f"--- cProfile read_md_output {el} {label} ({len(frames)} frames, {len(cell)} atoms) ---", file=text)
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
    prof = cProfile.Profile()
    prof.enable()
    dio.write_frames(work / "out.extxyz", frames)
    prof.disable()
    print(f"--- cProfile write_frames {el} {label} ---", file=text)
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
    return text.getvalue()


# --- main -------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--elements", default=None,
                   help="comma list of metals (default: every TM23 metal the lammps labeler covers)")
    p.add_argument("--labels", default="melt,cold",
                   help=f"comma list of temperature labels out of {','.join(TM23_FRACTIONS)} "
                        "(default: melt,cold; cold costs the same number of MD steps)")
    p.add_argument("--frames", type=int, default=200, help="frames per trajectory (default 200)")
    p.add_argument("--equilibration-fs", type=float, default=5000.0, help="equilibration, fs (default 5000)")
    p.add_argument("--repeats", type=int, default=3, help="timed ours/raw pairs per trajectory (default 3)")
    p.add_argument("--seed", type=int, default=0, help="config seed (vacancy and velocities), default 0")
    p.add_argument("--lmp", default="elf",
                   help="'elf' (default: the real binary inside the lammps package), 'shim' (<venv>/bin/lmp, "
                        "a Python wrapper around it) or a path")
    p.add_argument("--profile", action="store_true", help="also print a cProfile of parse and write per metal")
    p.add_argument("--profile-top", type=int, default=15, help="rows per cProfile listing (default 15)")
    p.add_argument("--out", default=None, help="write all timings to this JSON file")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.frames < 1:
        p.error("--repeats and --frames must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    labeler = make_labeler("lammps")
    elements = args.elements.split(",") if args.elements else sample.covered_elements(labeler)
    elements = [e.strip() for e in elements if e.strip()]
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    for label in labels:
        if label not in TM23_FRACTIONS:
            sys.exit(f"bench_generate: unknown label '{label}' (known: {', '.join(TM23_FRACTIONS)})")
    cfg = DataConfig(elements=elements, frames_per_temperature=args.frames, equilibration_fs=args.equilibration_fs,
                     temperatures={k: TM23_FRACTIONS[k] for k in labels})
    try:
        cfg.check("bench")
        sample.resolve_elements(cfg)  # unknown or uncovered metal -> one-line error
    except MlffbenchError as exc:
        sys.exit(f"bench_generate: {exc}")
    lmp = find_lmp(args.lmp)
    env = raw_env()
    timers = Breakdown()
    tmp = Path(tempfile.mkdtemp(prefix="bench_generate_"))
    log(f"bench_generate: {len(elements)} metals x {labels}, {args.frames} frames, "
        f"{args.equilibration_fs:g} fs equilibration, {args.repeats} repeats; raw = {lmp}; tmp = {tmp}")
    results = []
    profiles = []
    startup = float("nan")
    t_start = time.perf_counter()
    try:
        with timers.installed():
            # Warm-up (untimed): load liblammps/libmpi into this process and the binary into the page cache.
            warm_el = elements[0]
            warm_cell, _ = sample.prepare_cell(warm_el, cfg, labeler, args.seed)
            warm_cfg = DataConfig(elements=[warm_el], frames_per_temperature=2, equilibration_fs=0.0,
                                  temperatures={labels[0]: TM23_FRACTIONS[labels[0]]})
            run_ours(warm_el, labels[0], warm_cell, warm_cfg, labeler, args.seed, tmp / "warm", timers)
            wdir = tmp / "warm_raw"
            lmod.write_md_input(warm_cell, spec_for(warm_el, labels[0], warm_cfg, args.seed),
                                labeler.potential([warm_el]), wdir)
            run_raw(lmp, wdir, env, 2)
            startup = raw_startup(lmp, tmp / "empty", env)
            log(f"raw executable start-up (input with only 'units metal'): {startup:.3f} s (median of 5)")

            for i, el in enumerate(elements):
                t0 = time.perf_counter()
                cell, info = sample.prepare_cell(el, cfg, labeler, args.seed)
                t_prep = time.perf_counter() - t0
                pot = labeler.potential([el])
                log(f"[{i + 1}/{len(elements)}] {el}: {len(cell)} atoms, {pot.pair_style} ({pot.id}), "
                    f"cell prepared in {t_prep:.2f} s")
                for label in labels:
                    spec = spec_for(el, label, cfg, args.seed)
                    raw_dir = tmp / f"raw_{el}_{label}"
                    lmod.write_md_input(cell, spec, pot, raw_dir)
                    raw_in = ((raw_dir / "in.nvt").read_text(), (raw_dir / "atoms.data").read_text())
                    ours_runs, raw_runs = [], []
                    for r in range(args.repeats):
                        order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
                        for which in order:
                            if which == "ours":
                                res = run_ours(el, label, cell, cfg, labeler, args.seed, tmp / "ours", timers)
                                if timers.inputs[-1] != raw_in:
                                    raise SystemExit(f"{el} {label}: the input ours ran differs from the raw one")
                                ours_runs.append(res)
                            else:
                                raw_runs.append(run_raw(lmp, raw_dir, env, spec.n_frames))
                        log(f"    {label} repeat {r + 1}/{args.repeats}: raw {raw_runs[-1]:.3f} s, "
                            f"ours {ours_runs[-1]['total']:.3f} s (md {ours_runs[-1]['md']:.3f}, "
                            f"parse {ours_runs[-1]['parse']:.3f}, write {ours_runs[-1]['write']:.3f})")
                    med = {k: statistics.median(o[k] for o in ours_runs)
                           for k in ("total", "trajectory", "write", *Breakdown.KEYS, "other")}
                    raw_med = statistics.median(raw_runs)
                    results.append({
                        "element": el, "label": label, "natoms": len(cell), "pair_style": pot.pair_style,
                        "potential": pot.id, "md_steps": spec.equilibration_steps + spec.n_frames * spec.steps_per_frame,
                        "frames": spec.n_frames, "temperature": spec.temperature, "prepare_s": t_prep,
                        "raw_s": raw_runs, "ours_s": [o["total"] for o in ours_runs], "ours_runs": ours_runs,
                        "raw_median": raw_med, "ours_median": med["total"], "ours_breakdown_median": med,
                        "ratio": med["total"] / raw_med, "frames_per_s": spec.n_frames / med["total"],
                        "extxyz_bytes": ours_runs[-1]["bytes"],
                    })
                    shutil.rmtree(raw_dir, ignore_errors=True)
                if args.profile:
                    log(f"    profiling parse/write for {el} {labels[0]}")
                    profiles.append(profile_parse_write(el, labels[0], cell, cfg, labeler, args.seed, tmp,
                                                        args.profile_top))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t_start

    print_table(results, args, lmp, startup)
    for text in profiles:
        print(text)
    if args.out:
        Path(args.out).write_text(json.dumps({
            "args": vars(args), "lmp": str(lmp), "python": sys.version, "machine": platform.platform(),
            "cpus": os.cpu_count(), "wall_s": wall, "raw_startup_s": startup, "goal_ratio": GOAL, "results": results,
        }, indent=1))
        log(f"wrote {args.out}")
    log(f"bench_generate: done in {wall:.0f} s")
    return 0


def print_table(results, args, lmp, startup: float) -> None:
    print(f"TM23 generation: ours (sample_trajectory + write_frames) vs raw `{lmp.name} -in in.nvt` "
          f"({args.frames} frames, {args.equilibration_fs:g} fs equilibration, median of {args.repeats}; "
          f"goal ours/raw <= {GOAL})")
    head = (f"{'metal':<5} {'T':<4} {'atoms':>5} {'pair style':<12} {'steps':>5} {'raw s':>7} {'ours s':>7} "
            f"{'ratio':>6} {'fr/s':>6} | {'md':>6} {'init':>5} {'input':>5} {'parse':>6} {'meta':>5} "
            f"{'write':>6} {'md/raw':>6}")
    print(head)
    print("-" * len(head))
    for r in results:
        b = r["ours_breakdown_median"]
        flag = "" if r["ratio"] <= GOAL else "  > goal"
        print(f"{r['element']:<5} {r['label']:<4} {r['natoms']:>5} {r['pair_style']:<12} {r['md_steps']:>5} "
              f"{r['raw_median']:>7.3f} {r['ours_median']:>7.3f} {r['ratio']:>6.2f} {r['frames_per_s']:>6.0f} | "
              f"{b['md']:>6.3f} {b['init']:>5.3f} {b['input']:>5.3f} {b['parse']:>6.3f} "
              f"{b['other'] + b['close']:>5.3f} {b['write']:>6.3f} {b['md'] / r['raw_median']:>6.2f}{flag}")
    print("-" * len(head))
    print("columns: md = lmp.file() inside the library; init = LAMMPS instance creation; input = write_md_input; "
          "parse = read_md_output; meta = TM23 metadata + temp dir + close; write = write_frames (extxyz); "
          "md/raw = md column / raw s")
    print(f"raw executable start-up on a trivial input (process + MPI init), included in every raw time: "
          f"{startup:.3f} s")
    for label in dict.fromkeys(r["label"] for r in results):
        ratios = [r["ratio"] for r in results if r["label"] == label]
        geo = math.exp(statistics.fmean(math.log(x) for x in ratios))
        over = [r["element"] for r in results if r["label"] == label and r["ratio"] > GOAL]
        print(f"{label}: median ratio ours/raw over {len(ratios)} metals = {statistics.median(ratios):.3f}, "
              f"geometric mean = {geo:.3f}, max = {max(ratios):.3f}; goal <= {GOAL}: "
              + ("met for every metal" if not over else f"missed for {', '.join(over)}"))


if __name__ == "__main__":
    sys.exit(main())
