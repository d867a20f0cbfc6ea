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
from mlffbench.data import sample
from mlffbench.data.labelers import make_labeler
from mlffbench.engine.executors import make_executor, outcome, run_job
from mlffbench.engine.store import Job, RunStore, environment_provenance, job_key
from mlffbench.errors import one_line
from mlffbench.tasks import TASK_MODULES, cost

CODE_VERSION = mlffbench.__version__


@dataclasses.dataclass
class PlannedJob:
    key: str
    kind: str
    name: str
    inputs: dict
    depends: tuple[str, ...] = ()  # must be done; a failed one fails this job
    python: str | None = None
    after: tuple[str, ...] = ()  # must be finished (done or failed); their results complete the inputs


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
        tasks = [t for t in config.tasks.enabled() if model.tasks is None or t in model.tasks]
        if model.name == "acegp" and model.params.get("preset") != "tm23" and set(tasks) - {"grid"}:
            notes.append(f"{model.label or model.name}: one descriptor setting for every metal "
                         f"({', '.join(f'{k} {v}' for k, v in model.params.items())}; TM23 grid-searched cutoff, "
                         "n_max, l_max per metal, Tables S14-S17; 'preset: tm23' uses those)")
    if config.tasks.transfer is not None:
        t = config.tasks.transfer
        notes.append(f"transfer: trained on every {t.train} frame, tested on every frame of {', '.join(t.test)}")
    for task in config.tasks.enabled():  # task modules state their own deviations
        module = TASK_MODULES[task]
        if hasattr(module, "protocol_notes"):
            notes += module.protocol_notes(config)
    name = data.reference().get("name")
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
        """The job graph; raises ConfigError (nothing written) for a plan that cannot run.

        Per element: one data job per data set (the main one, plus the variants tasks ask for, e.g. larger
        cells), then each task module's job specs for each model (see ``mlffbench.tasks``)."""
        cfg = self.config
        labeler = make_labeler(cfg.data.labeler)
        elements = sample.resolve_elements(cfg.data, labeler)
        data_cfg = to_dict(cfg.data)
        enabled = cfg.tasks.enabled()
        variants: dict[str, dict] = {}
        for task in enabled:
            module = TASK_MODULES[task]
            if hasattr(module, "check"):
                module.check(cfg)
            if hasattr(module, "data_variants"):
                variants.update(module.data_variants(cfg))
        jobs: list[PlannedJob] = []
        for element in elements:
            data_keys = {}
            for variant, overrides in [(None, {})] + list(variants.items()):
                data_inputs = {"element": element, "data": {**data_cfg, **overrides}, "seed": cfg.seed}
                if variant:
                    data_inputs["variant"] = variant  # its files go to their own folder (jobs.data_dir)
                data_keys[variant] = job_key("data", data_inputs, CODE_VERSION)
                jobs.append(PlannedJob(data_keys[variant], "data", f"data:{element}" + (f":{variant}" if variant else ""),
                                       data_inputs))
            for i, model in enumerate(cfg.models):
                for task in [t for t in enabled if model.tasks is None or t in model.tasks]:
                    jobs += self._task_jobs(task, element, i, model, data_keys)
        unique: dict[str, PlannedJob] = {}  # a job two tasks ask for (e.g. the accuracy fit) runs once
        for job in jobs:
            unique.setdefault(job.key, job)
        return list(unique.values())

    def _task_jobs(self, task: str, element: str, i: int, model, data_keys: dict) -> list[PlannedJob]:
        cfg = self.config
        label = model.label or model.name
        params = dict(model.params)
        if model.name == "labeler":
            params.setdefault("labeler", cfg.data.reference())
        planned: list[PlannedJob] = []
        for spec in TASK_MODULES[task].jobs(cfg, model):
            job_params = {**params, **spec.get("params", {})}
            if spec.get("params"):
                check_model_params(model.name, job_params, f"{spec.get('check', f'tasks.{task}')} (models[{i}])")
            job_task, kind = spec.get("task", task), spec.get("kind", "fit_score")
            inputs = {"task": job_task, "element": element, "data_key": data_keys[None], "model": model.name,
                      "label": label, "params": job_params, "seed": cfg.seed, "split": spec["split"],
                      "point": spec["point"], "temperatures": list(cfg.data.temperatures),
                      "test_last": cfg.split.test_last, **spec.get("inputs", {})}
            extra_data = {name: data_keys[name] for name in spec.get("data", ())}
            if extra_data:
                inputs["data_variants"] = extra_data
            after = tuple(planned[j].key for j in spec.get("after", ()))
            if after:
                inputs["after"] = list(after)  # the key changes with any job it waits for
            key = job_key(kind, inputs, CODE_VERSION)
            inputs["job_id"] = key[:16]
            planned.append(PlannedJob(key, kind, _job_name(job_task, element, label, spec["point"]), inputs,
                                      (data_keys[None], *extra_data.values()), model.python, after))
        return planned

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

        resolved: dict[str, dict] = {}  # inputs completed from finished 'after' jobs, reused by retries
        pythons, unavailable = self._family_pythons(todo)

        def submit(job: PlannedJob) -> None:
            store.start(job.key)
            inputs = resolved.get(job.key, job.inputs)
            python = job.python or pythons.get(job.inputs.get("model"))
            if job.kind == "evaluate" and python:
                # evaluate jobs need this environment (reference labeler, phonopy); the potential runs in its own
                # through mlffbench.models.remote. Not part of the job key: where an environment lives may change.
                inputs, python = {**inputs, "model_python": python}, None
            running[executor.submit(run_job, job.kind, inputs, str(self.run_dir), python)] = job

        def collect(futures) -> None:
            for future in futures:
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

        def fail_now(job: PlannedJob, reason: str) -> None:
            store.start(job.key)
            store.fail(job.key, reason, "", 0.0)
            bar.update(1)

        try:
            while todo or running:
                for job in list(todo):
                    states = {k: store.get(k).status for k in job.depends}
                    failed = [k for k, s in states.items() if s == "failed"]
                    waiting = [k for k in job.after if store.get(k).status not in ("done", "failed")]
                    family = job.inputs.get("model")
                    if family in unavailable and job.python is None:
                        todo.remove(job)
                        fail_now(job, f"model unavailable: {unavailable[family]}")
                    elif failed:
                        todo.remove(job)
                        fail_now(job, f"dependency failed: {', '.join(failed)}")
                    elif all(s == "done" for s in states.values()) and not waiting:
                        todo.remove(job)
                        if job.after:
                            try:  # only the coordinator reads the store: the job gets the results in its inputs
                                resolved[job.key] = TASK_MODULES[job.inputs["task"]].resolve(
                                    job.inputs, [store.get(k).result for k in job.after])
                            except Exception as exc:  # noqa: BLE001 - e.g. no grid point finished
                                fail_now(job, one_line(exc))
                                continue
                        submit(job)
                        # in-process jobs finish inside submit: store each at once, so a kill loses none of them
                        collect([f for f in list(running) if f.done()])
                if not running:
                    continue
                collect(executor.wait(list(running)))
        finally:
            bar.close()
            if self.executor is None:
                executor.close()

    @staticmethod
    def _family_pythons(todo: list[PlannedJob]) -> tuple[dict[str, str], dict[str, str]]:
        """The interpreter of each model family that runs in its own environment (built on first use, cached),
        resolved once per run at run time, so planning stays cheap and job keys do not depend on where the
        environment lives. A family whose environment cannot be built is unavailable: its jobs are recorded as
        failed with the build error (which names the log) and the rest of the run goes on."""
        from mlffbench import envs

        pythons: dict[str, str] = {}
        unavailable: dict[str, str] = {}
        for family in dict.fromkeys(j.inputs.get("model") for j in todo if j.python is None):
            if family is None:
                continue
            try:
                python = envs.python_for(family)
            except envs.EnvBuildError as exc:
                unavailable[family] = str(exc)  # already one line naming the build log
                continue
            if python is not None:
                pythons[family] = python
        return pythons, unavailable


def _job_name(task: str, element: str, label: str, point: dict) -> str:
    """task:element:label then the point's k=v, a nested mapping (a sweep or grid point) flattened in place."""
    items = [kv for k, v in point.items() for kv in (v.items() if isinstance(v, dict) else [(k, v)])]
    return f"{task}:{element}:{label}" + "".join(f":{k}={v}" for k, v in items)


def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="job", dynamic_ncols=True,
                bar_format="{desc:<22} {bar} {n_fmt}/{total_fmt} jobs [{elapsed}<{remaining}]")


def results_table(jobs: list[Job]) -> str:
    """One text table per task, the cost table over all of them, then the jobs that did not finish."""
    results: dict[str, list[dict]] = {}
    problems = []
    for job in jobs:
        if job.kind not in ("fit_score", "evaluate"):
            continue
        if job.status == "done":
            results.setdefault(job.result["task"], []).append(job.result)
        else:
            problems.append(f"  ({job.status}) {job.name}: {job.error or ''}")
    parts = []
    for task, module in TASK_MODULES.items():
        if task in results:
            parts.append(f"{module.TITLE}\n{module.table(module.summarise(results[task]))}")
    if results:
        parts.append(f"{cost.TITLE}\n{cost.table(cost.summarise([r for rs in results.values() for r in rs]))}")
    if problems:
        parts.append("Not finished:\n" + "\n".join(problems))
    return "\n\n".join(parts)


def data_table(jobs: list[Job]) -> str:
    """Per-data-set generation summary: supercell size, lattice, kinetic vs target temperature."""
    data = [job for job in jobs if job.kind == "data"]
    names = [":".join(job.name.split(":")[1:]) for job in data]  # Cu, or Cu:large for a data-set variant
    w = max([5] + [len(n) for n in names])
    lines = [f"{'metal':<{w}} {'atoms':>5} {'lattice':<8} {'a (Å)':>7} {'c (Å)':>7}  "
             "kinetic T (mean ± std) vs target, K"]
    for name, job in zip(names, data):
        if job.status != "done":
            lines.append(f"{name:<{w}} {job.status}: {job.error}")
            continue
        cell = job.result["cell"]
        temps = "  ".join(
            f"{lab} {t['kinetic_temperature_mean']:.0f}±{t['kinetic_temperature_std']:.0f}/{t['target_temperature']:.0f}"
            for lab, t in job.result["trajectories"].items()
        )
        c = f"{cell['c']:.4f}" if cell["c"] else "-"
        lines.append(f"{name:<{w}} {cell['natoms']:>5} {cell['lattice']:<8} {cell['a']:>7.4f} {c:>7}  {temps}")
    return "\n".join(lines)


def summary_counts(jobs: list[Job]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return counts


__all__ = ["MainJob", "results_table", "data_table", "protocol_notes"]
