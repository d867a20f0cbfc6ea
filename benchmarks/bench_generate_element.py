"""Per metal, the whole TM23 generation (3 temperatures) of mlffbench vs raw LAMMPS on the same inputs.

ours: ``sample.generate_element`` into an empty folder (relaxation, supercell, 3 NVT runs inside LAMMPS
      through the library, parse, metadata, extxyz; parsing/writing overlaps the next MD in a thread);
raw:  the real ``lmp`` binary running the identical three ``in.nvt`` inputs one after another.
Interleaved repeats, medians; goal ours/raw <= 1.2.

    .venv/bin/python benchmarks/bench_generate_element.py --frames 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_generate import find_lmp, raw_env, run_raw, spec_for  # noqa: E402

from mlffbench.config import DataConfig  # noqa: E402
from mlffbench.data import sample  # noqa: E402
from mlffbench.data.labelers import make_labeler  # noqa: E402
from mlffbench.data.labelers.lammps import write_md_input  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--elements", help="comma-separated (default: every covered TM23 metal)")
    p.add_argument("--frames", type=int, default=1000, help="frames per temperature (default 1000, TM23)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    labeler = make_labeler("lammps")
    elements = args.elements.split(",") if args.elements else sample.covered_elements(labeler)
    cfg = DataConfig(elements=elements, frames_per_temperature=args.frames)
    lmp, env = find_lmp("elf"), raw_env()
    rows = []
    print(f"TM23 generation per metal, 3 x {args.frames} frames: ours (generate_element) vs raw lmp on the same "
          f"inputs, median of {args.repeats}", flush=True)
    print(f"{'metal':<5} {'atoms':>5} {'raw s':>7} {'ours s':>7} {'ratio':>6} {'frames/s':>9}", flush=True)
    for el in elements:
        cell, _ = sample.prepare_cell(el, cfg, labeler, 0)
        raw_dirs = []
        for label in cfg.temperatures:
            d = Path(tempfile.mkdtemp(prefix=f"raw-{el}-{label}-"))
            write_md_input(cell, spec_for(el, label, cfg, 0), labeler.potential([el]), d)
            raw_dirs.append(d)
        ours_t, raw_t = [], []
        for _ in range(args.repeats):
            out = Path(tempfile.mkdtemp(prefix=f"ours-{el}-"))
            t0 = time.perf_counter()
            sample.generate_element(el, cfg, out, labeler, None, 0)
            ours_t.append(time.perf_counter() - t0)
            shutil.rmtree(out)
            raw_t.append(sum(run_raw(lmp, d, env, args.frames) for d in raw_dirs))
        for d in raw_dirs:
            shutil.rmtree(d)
        ours, raw = statistics.median(ours_t), statistics.median(raw_t)
        rows.append(ours / raw)
        print(f"{el:<5} {len(cell):>5} {raw:7.3f} {ours:7.3f} {ours / raw:6.2f} {3 * args.frames / ours:9.0f}", flush=True)
    geo = statistics.geometric_mean(rows)
    print(f"median ratio {statistics.median(rows):.3f}, geometric mean {geo:.3f}, max {max(rows):.3f}; "
          f"goal <= 1.2 {'met' if max(rows) <= 1.2 else 'missed'} for every metal" if max(rows) <= 1.2 else
          f"median ratio {statistics.median(rows):.3f}, geometric mean {geo:.3f}, max {max(rows):.3f}; goal <= 1.2 "
          f"missed for {', '.join(e for e, r in zip(elements, rows) if r > 1.2)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
