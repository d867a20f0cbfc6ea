"""The main job: config -> job graph -> executor -> resumable store -> tables.

Planning expands elements x models x tasks into jobs: one data job per element (TM23 protocol) and fit-and-score
jobs that depend on it. Each job is keyed by a hash of its inputs and the code version, so re-running a config
skips finished jobs and an interrupted run resumes. Jobs run on an executor (in-process or Dask); only this
coordinator writes the store, one transaction per state change. A failing job is retried, then recorded as
failed with its message and traceback, and the run goes on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlffbench
from mlffbench.config import RunConfig, check_model_params, to_dict
from mlffbench.data import sample, splits
from mlffbench.data.labelers import make_labeler
from mlffbench.engine.executors import make_executor, outcome, run_job
from mlffbench.engine.store import Job, RunStore, environment_provenance, job_key
from mlffbench.errors import ConfigError
from mlffbench.tasks import TASK_MODULES

CODE_VERSION = mlffbench.__version__


@dataclasses.dataclass
class PlannedJob:
    key: str
    kind: str
    name: str
    inputs: dict
    depends: tuple[str, ...] = ()
    python: str | None = None


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
    for model in config.models:
        if model.name == "acegp" and model.params.get("preset") != "tm23":
            notes.append(f"{model.label or model.name}: one descriptor setting for every metal "
                         f"({', '.join(f'{k} {v}' for k, v in model.params.items())}; TM23 grid-searched cutoff, "
                         "n_max, l_max per metal, Tables S14-S17; 'preset: tm23' uses those)")
    if config.tasks.transfer is not None:
        t = config.tasks.transfer
        notes.append(f"transfer: trained on every {t.train} frame, tested on every frame of {', '.join(t.test)}")
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
    def __init__(self, config: RunConfig, run_dir: str | Path, executor=None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.executor = executor  # default: from config.execution, created when the run starts

    # -- planning -----------------------------------------------------------------------------------
    def plan(self) -> list[PlannedJob]:
        """The job graph; raises ConfigError (nothing written) for a plan that cannot run."""
        cfg = self.config
        labeler = make_labeler(cfg.data.labeler)
        elements = sample.resolve_elements(cfg.data, labeler)
        data_cfg = to_dict(cfg.data)
        self._check_learning_curve()
        enabled = cfg.tasks.enabled()
        jobs: list[PlannedJob] = []
        for element in elements:
            data_inputs = {"element": element, "data": data_cfg, "seed": cfg.seed}
            data_key = job_key("data", data_inputs, CODE_VERSION)
            jobs.append(PlannedJob(data_key, "data", f"data:{element}", data_inputs))
            for i, model in enumerate(cfg.models):
                label = model.label or model.name
                params = dict(model.params)
                if model.name == "labeler":
                    params.setdefault("labeler", _spec(cfg.data.relabel or cfg.data.labeler))
                for task in [t for t in enabled if model.tasks is None or t in model.tasks]:
                    for spec in TASK_MODULES[task].jobs(cfg, model):
                        job_params = {**params, **spec.get("params", {})}
                        if spec.get("params"):
                            check_model_params(model.name, job_params, f"tasks.learning_curve.sweep (models[{i}])")
                        inputs = {"task": task, "element": element, "data_key": data_key, "model": model.name,
                                  "label": label, "params": job_params, "seed": cfg.seed, "split": spec["split"],
                                  "point": spec["point"], "temperatures": list(cfg.data.temperatures),
                                  "test_last": cfg.split.test_last}
                        key = job_key("fit_score", inputs, CODE_VERSION)
                        inputs["job_id"] = key[:16]
                        jobs.append(PlannedJob(key, "fit_score", _job_name(task, element, label, spec["point"]),
                                               inputs, (data_key,), model.python))
        return jobs

    def _check_learning_curve(self) -> None:
        lc = self.config.tasks.learning_curve
        if lc is None:
            return
        data, split = self.config.data, self.config.split
        per_trajectory = data.frames_per_temperature
        try:
            n_test = splits.n_test(split.test_last, per_trajectory, "data.frames_per_temperature")
        except ValueError as exc:
            raise ConfigError(f"split.test_last: {exc}") from None
        pool = (per_trajectory - n_test) * len(data.temperatures)
        too_big = [n for n in lc.sizes if n > pool]
        if too_big:
            raise ConfigError(f"tasks.learning_curve.sizes: {too_big} exceed the {pool} training frames "
                              f"({len(data.temperatures)} x ({per_trajectory} - {n_test} test))")

    # -- execution ----------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> list[Job]:
        cfg = self.config
        planned = self.plan()  # validates everything before anything is written
        store = RunStore(self.run_dir)
        try:
            store.set_provenance({
                "config": to_dict(cfg), "environment": environment_provenance(),
                "protocol_notes": protocol_notes(cfg), "code_version": CODE_VERSION,
            })
            for job in planned:
                store.add_job(job.key, job.kind, job.name, job.inputs)
            self._execute(planned, store, progress)
            return [store.get(job.key) for job in planned]
        finally:
            store.close()

    def _execute(self, planned: list[PlannedJob], store: RunStore, progress: bool) -> None:
        todo = [job for job in planned if store.get(job.key).status != "done"]
        bar = _progress_bar(len(planned), len(planned) - len(todo), enabled=progress)
        if not todo:
            bar.close()
            return
        executor = self.executor or make_executor(self.config.execution)
        retries = self.config.execution.retries
        running: dict = {}
        tries: dict[str, int] = {}

        def submit(job: PlannedJob) -> None:
            store.start(job.key)
            running[executor.submit(run_job, job.kind, job.inputs, str(self.run_dir), job.python)] = job

        try:
            while todo or running:
                for job in list(todo):
                    states = {k: store.get(k).status for k in job.depends}
                    failed = [k for k, s in states.items() if s == "failed"]
                    if failed:
                        todo.remove(job)
                        store.start(job.key)
                        store.fail(job.key, f"dependency failed: {', '.join(failed)}", "", 0.0)
                        bar.update(1)
                    elif all(s == "done" for s in states.values()):
                        todo.remove(job)
                        submit(job)
                if not running:
                    continue
                for future in executor.wait(list(running)):
                    job = running.pop(future)
                    out = outcome(future)
                    if out["ok"]:
                        store.finish(job.key, out["result"], out["wall_s"])
                    elif tries.get(job.key, 0) < retries:
                        tries[job.key] = tries.get(job.key, 0) + 1
                        submit(job)
                        continue
                    else:
                        store.fail(job.key, out["error"], out["log"], out["wall_s"])
                    bar.set_description(job.name[:22])  # the job that just finished
                    bar.update(1)
        finally:
            bar.close()
            if self.executor is None:
                executor.close()


def _job_name(task: str, element: str, label: str, point: dict) -> str:
    extra = "".join(f":{k}={v}" for k, v in point.items() if k != "sweep") + \
        "".join(f":{k}={v}" for k, v in point.get("sweep", {}).items())
    return f"{task}:{element}:{label}{extra}"


def _spec(labeler) -> dict:
    return {"name": labeler} if isinstance(labeler, str) else dict(labeler)


def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="job", dynamic_ncols=True,
                bar_format="{desc:<22} {bar} {n_fmt}/{total_fmt} jobs [{elapsed}<{remaining}]")


def results_table(jobs: list[Job]) -> str:
    """One text table per task (accuracy, transfer, learning curve), then the jobs that did not finish."""
    results: dict[str, list[dict]] = {}
    problems = []
    for job in jobs:
        if job.kind != "fit_score":
            continue
        if job.status == "done":
            results.setdefault(job.result["task"], []).append(job.result)
        else:
            problems.append(f"  ({job.status}) {job.name}: {job.error or ''}")
    parts = []
    for task, module in TASK_MODULES.items():
        if task in results:
            parts.append(f"{module.TITLE}\n{module.table(module.summarise(results[task]))}")
    if problems:
        parts.append("Not finished:\n" + "\n".join(problems))
    return "\n\n".join(parts)


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
