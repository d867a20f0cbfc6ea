"""MD crash test of a trained model from the data set's own test frames (TEA Challenge 2023: MD stability).

No reference calculator is needed, so it runs on any data set (bulk, surfaces, molecules): Langevin NVT from a few
evenly spaced test frames at the frame's temperature (its ``target_temperature`` when the data carry one) or the
configured one. A run fails at a calculator error, non-finite energy or forces, a force above ``max_force``, two
atoms closer than ``min_distance_fraction`` x the shortest distance in the data set's test frames, or a kinetic
temperature above ``max_temperature_factor`` x the target (``observables.stability.failure``). The result per run:
survived or not, the simulated time to failure and the last frame that passed a check (written as extxyz).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase.io import write

from mlffbench import frames as fr
from mlffbench.report_text import format_table
from mlffbench.tasks import common
from mlffbench.units import FS

TITLE = "MD crash test from test frames (TEA 2023 MD stability; no reference needed)"
DEFAULT_TEMPERATURE_K = 300.0


def jobs(config, dataset, model) -> list[dict]:
    """The accuracy fit (planned once when accuracy also runs), then the MD runs with its potential."""
    return common.after_accuracy_fit(dataset, asdict(config.tasks.crash_test))


def resolve(inputs: dict, after_results: list) -> dict:
    return common.trained_potential(inputs, after_results, "crash test")


def protocol_notes(config, planned) -> list[str]:
    c = config.tasks.crash_test
    temperature = f"{c.temperature_K:g} K" if c.temperature_K else \
        f"each frame's target temperature (else {DEFAULT_TEMPERATURE_K:g} K)"
    return [f"crash test: Langevin NVT from {c.frames} test frame(s) per data set at {temperature}, {c.steps} steps "
            f"of {c.timestep_fs:g} fs ({c.steps * c.timestep_fs / 1000:g} ps; TEA 2023: ns-long runs)"]


def shortest_distance(frames) -> float:
    """The shortest interatomic distance in ``frames`` (periodic images included), Å."""
    from ase.neighborlist import neighbor_list

    best = np.inf
    for frame in frames:
        d = neighbor_list("d", frame, 4.0)
        if len(d):
            best = min(best, float(d.min()))
    return best


def run(inputs: dict, run_dir) -> dict:
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin

    from mlffbench import datasets
    from mlffbench.config import CrashTestConfig
    from mlffbench.data import splits
    from mlffbench.observables import md
    from mlffbench.observables.stability import failure

    settings = CrashTestConfig(**inputs["settings"])
    frames = datasets.load(inputs["dataset"], run_dir)
    test = [frames[i] for i in splits.base(frames, inputs["split"], inputs["seed"]).test]
    picks = sorted(set(np.linspace(0, len(test) - 1, min(settings.frames, len(test))).round().astype(int)))
    d_min = settings.min_distance_fraction * shortest_distance(test)
    potential = common.open_potential(inputs, run_dir)
    workdir = Path(run_dir) / "crash_test" / inputs["job_id"]
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for k in picks:
            start = test[k]
            target = settings.temperature_K or float(start.info.get(fr.TARGET_TEMPERATURE) or DEFAULT_TEMPERATURE_K)
            atoms = start.copy()
            atoms.info = {}
            system = md.start(atoms, potential, target, inputs["seed"] + int(k))
            system.set_constraint(FixCom())
            dyn = Langevin(system, timestep=settings.timestep_fs * FS, temperature_K=target,
                           friction=settings.friction_per_fs / FS, fixcm=False,
                           rng=np.random.default_rng([inputs["seed"], int(k)]))
            done, reason, last_good = 0, failure(system, target, settings, d_min), system.copy()
            while reason is None and done < settings.steps:
                chunk = min(settings.check_interval, settings.steps - done)
                try:
                    dyn.run(chunk)
                    done += chunk
                    reason = failure(system, target, settings, d_min)
                except Exception as exc:  # noqa: BLE001 - a model that gives up mid-run is a crash, recorded
                    from mlffbench.errors import one_line

                    done += chunk
                    reason = f"calculator error: {one_line(exc)}"
                if reason is None:
                    last_good = system.copy()
            last_good.calc = None
            out = workdir / f"start{k}_last_good.extxyz"
            write(out, last_good, format="extxyz")
            runs.append({"start": int(k), "temperature_K": target, "survived": reason is None,
                         "simulated_ps": done * settings.timestep_fs / 1000,
                         "time_to_failure_ps": None if reason is None else done * settings.timestep_fs / 1000,
                         "reason": reason, "last_good_frame": str(out.relative_to(run_dir))})
    finally:
        if hasattr(potential, "close"):
            potential.close()
    dataset = inputs["dataset"]
    return {"task": "crash_test", "dataset": dataset["name"],
            "element": dataset["elements"][0] if len(dataset["elements"]) == 1 else None,
            "model": inputs["model"], "label": inputs["label"], "runs": runs, "min_distance_A": d_min,
            "settings": inputs["settings"]}


@dataclass
class CrashRow:
    dataset: str
    model: str
    survived: int
    runs: int
    simulated_ps: float  # total over the runs
    first_failure_ps: float | None
    reasons: list[str]


def summarise(results: list[dict]) -> list[CrashRow]:
    rows = []
    for r in results:
        runs = r["runs"]
        failures = [x["time_to_failure_ps"] for x in runs if not x["survived"]]
        rows.append(CrashRow(r["dataset"], r["label"], sum(x["survived"] for x in runs), len(runs),
                             sum(x["simulated_ps"] for x in runs), min(failures) if failures else None,
                             [x["reason"] for x in runs if x["reason"]]))
    return rows


def table(rows: list[CrashRow]) -> str:
    header = ["data set", "model", "survived", "simulated", "first failure", "why"]
    units = ["", "", "runs", "ps", "ps", ""]
    body = [[r.dataset, r.model, f"{r.survived}/{r.runs}", f"{r.simulated_ps:.2f}",
             "-" if r.first_failure_ps is None else f"{r.first_failure_ps:.3f}", "; ".join(r.reasons)[:80] or "-"]
            for r in rows]
    return format_table(header, units, body)
