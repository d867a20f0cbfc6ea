"""Training throughput: each adapter's fit against the family's own CLI run by hand on the same files and settings.

For MACE and NequIP/Allegro (whose adapters drive the family's CLI) the adapter fits ``--frames`` acac frames for
``--epochs`` epochs under the training protocol (patience = epochs, so every fit runs all of them), in the family's
environment. The adapter leaves the exact argv it ran (``command.json``); the same program is then run by hand with
those arguments on a copy of the same training files, without our log poll (MACE) or our recorder/early-stopping
callbacks (NequIP). Reported: wall seconds of both (median of ``--repeats``), seconds per epoch and the ratio
adapter / CLI (goal <= 1.1). The adapter's time includes everything a fit costs it: writing the training files,
the watched subprocess, reading the curve and loading the model for its parameter count.

    .venv/bin/python benchmarks/training_throughput.py --families mace nequip --frames 100 --epochs 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "mlffbench" / "datasets" / "data" / "acac" / "train_300K.xyz.xz"
PARAMS = {  # the acac config's settings
    "mace": {"num_channels": 32, "max_L": 1, "r_max": 5.0, "batch_size": 10},
    "nequip": {"num_layers": 3, "l_max": 1, "num_features": [32, 16], "r_cut": 5.0, "batch_size": 10},
}
FIT = r"""
import json, sys, time, lzma
import ase.io
from mlffbench.models.registry import make_model
from mlffbench.models.training import Training
family, params, n, epochs, threads, workdir = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
with lzma.open(sys.argv[7], "rt") as fh:
    frames = ase.io.read(fh, index=":", format="extxyz")[:n]
protocol = Training(max_epochs=epochs, patience=epochs, max_minutes=120, threads=threads, device="cpu")
start = time.perf_counter()
pot = make_model(family).fit(frames, None, params, workdir, training=protocol)
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "epochs": pot.info["training"]["epochs"]}))
"""


def family_python(family: str) -> str:
    from mlffbench import envs

    return envs.python_for(family)


def adapter_fit(python: str, family: str, frames: int, epochs: int, threads: int, workdir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([python, "-c", FIT, family, json.dumps(PARAMS[family]), str(frames), str(epochs),
                          str(threads), str(workdir), str(DATA)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{family} adapter fit failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_command(family: str, workdir: Path, cli_dir: Path) -> tuple[list[str], dict]:
    """The adapter's argv re-pointed at a copy of its files in ``cli_dir`` (NequIP: without our callbacks)."""
    sub = workdir / ("mace" if family == "mace" else "nequip")
    blob = json.loads((sub / "command.json").read_text())
    cli_dir.mkdir(parents=True)
    for name in ("train.xyz", "valid.xyz"):
        shutil.copy(sub / name, cli_dir / name)
    args = [a.replace(str(sub), str(cli_dir)) for a in blob["args"]]
    if family != "mace":
        import yaml

        config = yaml.safe_load((sub / "config.yaml").read_text())
        trainer = config.get("trainer", {})
        # the family's own run: Lightning's max_epochs only, no recorder / early stopping / checkpoint of ours
        trainer["callbacks"] = [c for c in trainer.get("callbacks", [])
                                if not str(c.get("_target_", "")).startswith("mlffbench")]
        text = yaml.safe_dump(config, sort_keys=False).replace(str(sub), str(cli_dir))
        (cli_dir / "config.yaml").write_text(text)
    return args, blob["env"]


def cli_fit(args: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    with open(cwd / "cli.log", "w") as log:
        rc = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **env}).returncode
    if rc:
        raise SystemExit(f"CLI run failed ({rc}); log {cwd / 'cli.log'}")
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["mace", "nequip"], choices=sorted(PARAMS))
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    print(f"{a.frames} acac frames (90 % train / 10 % validation), {a.epochs} epochs, {a.threads} thread(s), "
          f"float32, CPU; median of {a.repeats}")
    print(f"{'family':8} {'adapter s':>10} {'CLI s':>8} {'adapter s/ep':>13} {'CLI s/ep':>9} {'ratio':>6}")
    for family in a.families:
        python = family_python(family)
        ours, theirs = [], []
        for r in range(a.repeats):
            with tempfile.TemporaryDirectory(prefix=f"thr-{family}-") as tmp:
                tmp = Path(tmp)
                fit = adapter_fit(python, family, a.frames, a.epochs, a.threads, tmp / "job")
                args, env = cli_command(family, tmp / "job", tmp / "cli")
                theirs.append(cli_fit(args, env, tmp / "cli"))
                ours.append(fit["wall_s"])
        o, t = statistics.median(ours), statistics.median(theirs)
        print(f"{family:8} {o:10.1f} {t:8.1f} {o / a.epochs:13.2f} {t / a.epochs:9.2f} {o / t:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
