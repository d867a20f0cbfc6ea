"""The main job: config -> data jobs (TM23 protocol per element) -> score jobs (model x element) -> table.

Jobs run in this process, one after another, in dependency order; each is keyed by the hash of its inputs,
so a re-run skips finished jobs and an interrupted run resumes. A job that raises is recorded as failed
(message + traceback) and the run goes on.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path
from typing import Callable


import mlffbench
from mlffbench import frames as fr
from mlffbench import metrics
from mlffbench.config import RunConfig, to_dict
from mlffbench.data import sample, splits
from mlffbench.data.io import read_frames
from mlffbench.data.labelers import make_labeler
from mlffbench.engine.store import Job, RunStore, environment_provenance, job_key
from mlffbench.models.registry import make_model

CODE_VERSION = mlffbench.__version__


@dataclasses.dataclass
class PlannedJob:
    key: str
    kind: str
    name: str
    inputs: dict
    run: Callable[[], dict]
    depends: tuple[str, ...] = ()


def protocol_notes(config: RunConfig) -> list[str]:
    """Where this run deviates from the TM23 protocol; printed with the results and stored in the run."""
    data = config.data
    notes = []
    if data.frames_per_temperature != 1000:
        notes.append(f"{data.frames_per_temperature} frames per temperature (TM23: 1000)")
    if data.equilibration_fs != 5000 or data.interval_fs != 50 or data.timestep_fs != 5:
        notes.append(
            f"MD: {data.equilibration_fs:g} fs equilibration, frames every {data.interval_fs:g} fs, "
            f"{data.timestep_fs:g} fs step (TM23: 5000, 50, 5)"
        )
    if data.temperatures != {"cold": 0.25, "warm": 0.75, "melt": 1.25}:
        notes.append(f"temperatures {data.temperatures} x T_melt (TM23: cold 0.25, warm 0.75, melt 1.25)")
    if data.min_length != 7.0:
        notes.append(f"supercell vectors >= {data.min_length:g} Å (TM23: 7 Å)")
    labeler = data.relabel or data.labeler
    name = labeler if isinstance(labeler, str) else labeler.get("name")
    if name in ("lammps", "emt"):
        notes.append(
            f"labels from the classical '{name}' reference, not DFT: trajectories and labels come from the same "
            "potential (TM23: AIMD then static DFT relabel); energy % errors use the potential's energy zero "
            "(cohesive-energy scale), so they are not comparable with TM23's VASP total-energy % errors"
        )
    return notes


class MainJob:
    def __init__(self, config: RunConfig, run_dir: str | Path):
        self.config = config
        self.run_dir = Path(run_dir)
        self.data_dir = self.run_dir / "data"
        self._store: RunStore | None = None

    @property
    def store(self) -> RunStore:
        """The run's store, created on first use (after planning succeeded, so bad input writes nothing)."""
        if self._store is None:
            self._store = RunStore(self.run_dir)
        return self._store

    # -- planning -----------------------------------------------------------------------------------
    def plan(self) -> list[PlannedJob]:
        cfg = self.config
        labeler = make_labeler(cfg.data.labeler)
        elements = sample.resolve_elements(cfg.data, labeler)
        data_cfg = to_dict(cfg.data)
        jobs: list[PlannedJob] = []
        for element in elements:
            data_inputs = {"element": element, "data": data_cfg, "seed": cfg.seed}
            data_key = job_key("data", data_inputs, CODE_VERSION)
            jobs.append(PlannedJob(data_key, "data", f"data:{element}", data_inputs,
                                   lambda el=element: self._run_data(el)))
            for model in cfg.models:
                label = model.label or model.name
                params = dict(model.params)
                if model.name == "labeler":
                    params.setdefault("labeler", _spec(cfg.data.relabel or cfg.data.labeler))
                inputs = {"data_key": data_key, "split": to_dict(cfg.split), "model": model.name,
                          "label": label, "params": params, "seed": cfg.seed}
                key = job_key("score", inputs, CODE_VERSION)
                jobs.append(PlannedJob(key, "score", f"score:{element}:{label}", inputs,
                                       lambda el=element, m=model.name, p=params, lb=label: self._run_score(el, m, p, lb),
                                       depends=(data_key,)))
        return jobs

    # -- job bodies ---------------------------------------------------------------------------------
    def _run_data(self, element: str) -> dict:
        cfg = self.config.data
        labeler = make_labeler(cfg.labeler)
        relabeler = make_labeler(cfg.relabel) if cfg.relabel else None
        return sample.generate_element(element, cfg, self.data_dir, labeler, relabeler, self.config.seed)

    def _load_element(self, element: str) -> list:
        frames = []
        for label in self.config.data.temperatures:
            frames += read_frames(sample.trajectory_path(self.data_dir, element, label), require=("energy", "forces"))
        return frames

    def _run_score(self, element: str, model_name: str, params: dict, label: str) -> dict:
        frames = self._load_element(element)
        split = splits.tm23_full(frames, self.config.split.test_last)
        train = [frames[i] for i in split.train]
        test = [frames[i] for i in split.test]
        workdir = self.store.artifact_dir("models", element, label)
        start = time.perf_counter()
        potential = make_model(model_name).fit(train, None, params, workdir)
        fit_s = time.perf_counter() - start
        potential.save(workdir / "potential.json")
        start = time.perf_counter()
        predicted = potential.predict(test)
        predict_s = time.perf_counter() - start
        natoms = sum(len(f) for f in test)
        return {
            "element": element, "model": model_name, "label": label,
            "n_train": len(train), "n_test": len(test),
            "overall": metrics.flatten(metrics.score(predicted, test)),
            "by_temperature": {
                str(k): metrics.flatten(v)
                for k, v in metrics.score_by(predicted, test, fr.TEMPERATURE_LABEL).items()
            },
            "fit_s": fit_s,
            "predict_us_per_atom": 1e6 * predict_s / max(natoms, 1),
        }

    # -- execution ----------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> list[Job]:
        cfg = self.config
        planned = self.plan()  # validates elements/labelers before anything is written
        self.store.set_provenance({
            "config": to_dict(cfg), "environment": environment_provenance(),
            "protocol_notes": protocol_notes(cfg), "code_version": CODE_VERSION,
        })
        for job in planned:
            self.store.add_job(job.key, job.kind, job.name, job.inputs)
        todo = [job for job in planned if self.store.get(job.key).status != "done"]
        bar = _progress_bar(len(planned), len(planned) - len(todo), enabled=progress)
        for job in todo:
            bar.set_description(job.name)
            failed_deps = [k for k in job.depends if self.store.get(k).status != "done"]
            if failed_deps:
                self.store.start(job.key)
                self.store.fail(job.key, f"dependency failed: {', '.join(failed_deps)}", "", 0.0)
            else:
                self._execute(job)
            bar.update(1)
        bar.close()
        jobs = [self.store.get(job.key) for job in planned]
        self.store.close()
        self._store = None
        return jobs

    def _execute(self, job: PlannedJob) -> None:
        self.store.start(job.key)
        start = time.perf_counter()
        try:
            result = job.run()
        except Exception as exc:  # noqa: BLE001 - a failing job is a recorded result, not a crashed run
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.store.fail(job.key, message, traceback.format_exc(), time.perf_counter() - start)
            return
        self.store.finish(job.key, result, time.perf_counter() - start)


def _spec(labeler) -> dict:
    return {"name": labeler} if isinstance(labeler, str) else dict(labeler)


def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="job", dynamic_ncols=True,
                bar_format="{desc:<22} {bar} {n_fmt}/{total_fmt} jobs [{elapsed}<{remaining}]")


def results_table(jobs: list[Job]) -> str:
    """Per-metal text table of the score jobs (MAEs in meV/Å, meV/atom, meV/Å³ as TM23 Tables S7-S13;
    percent = 100 MAE/MAV, TM23 Eq. 2)."""
    header = ["metal", "model", "train", "test", "F MAE", "F %", "E MAE", "E %", "S MAE", "S %"]
    units = ["", "", "frames", "frames", "meV/Å", "", "meV/atom", "", "meV/Å³", ""]
    rows, problems = [], []
    for job in jobs:
        if job.kind != "score":
            continue
        _, element, label = job.name.split(":", 2)
        if job.status != "done":
            rows.append([element, label] + [job.status] + ["-"] * 7)
            problems.append(f"  ({job.status}) {element} {label}: {job.error or ''}")
            continue
        r, o = job.result, job.result["overall"]
        rows.append([
            element, label, str(r["n_train"]), str(r["n_test"]),
            f"{1e3 * o['forces.mae']:.2f}", f"{o['forces.percent']:.2f}",
            f"{1e3 * o['energy_per_atom.mae']:.3f}", f"{o['energy_per_atom.percent']:.3f}",
            f"{1e3 * o['stress.mae']:.3f}", f"{o['stress.percent']:.2f}",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(header, units, *rows)]
    fmt = lambda row: "  ".join(str(x).rjust(w) if i > 1 else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt(header), fmt(units)] + [fmt(r) for r in rows] + problems)


def data_table(jobs: list[Job]) -> str:
    """Per-metal generation summary: potential, supercell size, kinetic vs target temperature."""
    lines = [f"{'metal':<5} {'atoms':>5} {'lattice':<8} {'a (Å)':>7} {'c (Å)':>7}  kinetic T (mean ± std) vs target, K"]
    for job in jobs:
        if job.kind != "data":
            continue
        element = job.name.split(":")[1]
        if job.status != "done":
            lines.append(f"{element:<5} {job.status}: {job.error}")
            continue
        cell = job.result["cell"]
        temps = "  ".join(
            f"{lab} {t['kinetic_temperature_mean']:.0f}±{t['kinetic_temperature_std']:.0f}/{t['target_temperature']:.0f}"
            for lab, t in job.result["trajectories"].items()
        )
        c = f"{cell['c']:.4f}" if cell["c"] else "-"
        lines.append(f"{element:<5} {cell['natoms']:>5} {cell['lattice']:<8} {cell['a']:>7.4f} {c:>7}  {temps}")
    return "\n".join(lines)


def summary_counts(jobs: list[Job]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return counts


__all__ = ["MainJob", "results_table", "data_table", "protocol_notes"]
