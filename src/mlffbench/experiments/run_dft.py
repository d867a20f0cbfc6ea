"""Run TM23's DFT experiments on a generated real-DFT data folder (e.g. from configs/dft-small.yaml).

    python -m mlffbench.experiments.run_dft runs/dft-small/data --out runs/dft-small/experiments \
        [--config dft-small] [--widths 0.2 1.0 2.0] [--elements Cu Ti] [--dos-frames 3]

Per element: (a) smearing sweep -> acegp force % error per width, (d) force-label change vs the first width,
(c) d-band centre of ``--dos-frames`` random 'melt' test frames; then the correlation of the first width's force
% error with the d-band centre across elements, and (b) the Au/Os electron-count swap when both are present.
Writes ``results.json`` (atomically) and prints a table. The GPAW settings are the config's ``data.relabel``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from mlffbench.config import load_config
from mlffbench.data.io import read_frames
from mlffbench.data.splits import tm23_full
from mlffbench.errors import ConfigError
from mlffbench.experiments import dft


def element_frames(data: Path, element: str) -> list:
    files = sorted((data / element).glob(f"{element}_*.extxyz"))
    if not files:
        raise ConfigError(f"{data / element}: no {element}_<temperature>.extxyz files (generate the data first)")
    return [f for path in files for f in read_frames(path)]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="dft-small")
    parser.add_argument("--widths", type=float, nargs="+", default=list(dft.TM23_SMEARINGS))
    parser.add_argument("--elements", nargs="+")
    parser.add_argument("--dos-frames", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if not isinstance(cfg.data.relabel, dict) or cfg.data.relabel.get("name") != "gpaw":
        raise ConfigError(f"{args.config}: data.relabel must be a gpaw labeler spec")
    spec = dict(cfg.data.relabel)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    elements = args.elements or [p.name for p in sorted(data.iterdir()) if p.is_dir()]
    rng = np.random.default_rng(args.seed)
    results = {"gpaw": spec, "widths": args.widths, "test_last": cfg.split.test_last, "elements": {}}
    frames_by_element = {}
    for element in elements:
        frames = element_frames(data, element)
        frames_by_element[element] = frames
        row = dft.smearing_sweep(frames, spec, out / element, args.widths, cfg.split.test_last)
        split = tm23_full(frames, cfg.split.test_last)
        melt = [i for i in split.test if frames[i].info.get("temperature_label") == "melt"] or list(split.test)
        picked = rng.choice(melt, size=min(args.dos_frames, len(melt)), replace=False)
        dos = dft.d_band_centres([frames[i] for i in sorted(picked)], spec)
        row["d_band_centre"] = dos["mean"]
        row["d_band_centres"] = dos["centres"]
        results["elements"][element] = row
        print(f"{element}: d-band centre {dos['mean']:.2f} eV; force % error "
              + ", ".join(f"{w}: {r.get('force_percent', float('nan')):.2f}" for w, r in row["widths"].items()),
              flush=True)
        _write(out / "results.json", results)
    pairs = [(r["d_band_centre"], r["widths"][f"{args.widths[0]:g}"].get("force_percent"))
             for r in results["elements"].values()]
    pairs = [(x, y) for x, y in pairs if y is not None and np.isfinite(x) and np.isfinite(y)]
    if len(pairs) >= 3:
        results["d_band_vs_force_percent"] = dft.correlate(*zip(*pairs))
    if {"Au", "Os"} <= set(frames_by_element):
        results["electron_swap"] = dft.electron_count_swap(frames_by_element, spec, out / "swap",
                                                           test_last=cfg.split.test_last)
    _write(out / "results.json", results)
    return results


def _write(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
