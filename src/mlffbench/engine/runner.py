"""The main job: config -> job graph -> executor -> resumable store -> tables.

Planning expands data sets x models x tasks into jobs: one data job per data set (``mlffbench.datasets``: the
TM23 protocol per element, or the user's files) and fit-and-score jobs that depend on it. Each job is keyed by a hash of its inputs and the code version, so re-running a config
skips finished jobs and an interrupted run resumes. Jobs run on an executor (in-process or Dask); only this
coordinator writes the store, one transaction per state change. A failing job is retried, then recorded as
failed with its message and traceback, and the run goes on.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import mlffbench
from mlffbench import datasets
from mlffbench.config import DataConfig, RunConfig, check_model_params, to_dict
from mlffbench.datasets import DataSet
from mlffbench.engine import artefacts, sources
from mlffbench.engine.executors import executor_threads, make_executor, outcome, run_job
from mlffbench.engine.lock import RunLock
from mlffbench.engine.store import Job, RunStore, environment_provenance, job_key
from mlffbench.errors import ConfigError, MlffbenchError, one_line
from mlffbench.models.registry import get_model_class
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


def protocol_notes(config: RunConfig, planned: list[DataSet] | None = None) -> list[str]:
    """Where this run deviates from the papers' protocols; printed with the results and stored in the run.
    ``planned``: the run's data sets (default: planned here)."""
    planned = datasets.plan(config) if planned is None else planned
    notes = []
    for _, entry in config.entries():
        if isinstance(entry, DataConfig):
            notes += _generate_notes(entry)
    for ds in planned:
        notes += ds.notes
    multi = [ds.name for ds in planned if len(ds.elements) > 1]
    for model in config.models:
        tasks = [t for t in config.tasks.enabled() if model.tasks is None or t in model.tasks]
        if model.name == "acegp" and model.params.get("preset") != "tm23" and set(tasks) - {"grid"}:
            notes.append(f"{model.label or model.name}: one descriptor setting for every data set "
                         f"({', '.join(f'{k} {v}' for k, v in model.params.items()) or 'the defaults'}; TM23 "
                         "grid-searched cutoff, "
                         "n_max, l_max per metal, Tables S14-S17; 'preset: tm23' uses those)")
        if model.name == "acegp" and multi and model.params.get("energy_shift", "auto") == "auto":
            notes.append(f"{model.label or model.name}: energies referenced per element by least squares on the "
                         f"training set of the multi-element data set(s) {', '.join(multi)} (FLARE/TM23: no "
                         "reference; single-element data keep FLARE's)")
    if config.tasks.transfer is not None:
        t = config.tasks.transfer
        notes.append(f"transfer (group hold-out): trained on every frame of {', '.join(t.train_groups())}, tested "
                     f"on every frame of {', '.join(t.test)}")
    for task in config.tasks.enabled():  # task modules state their own deviations
        module = TASK_MODULES[task]
        if hasattr(module, "protocol_notes"):
            notes += module.protocol_notes(config, planned)
    return list(dict.fromkeys(notes))


def _generate_notes(data: DataConfig) -> list[str]:
    notes = []
    if data.frames_per_temperature != 1000:
        notes.append(f"{data.frames_per_temperature} frames per temperature (TM23: 1000)")
    if data.equilibration_fs != 5000 or data.interval_fs != 50 or data.timestep_fs != 5:
        notes.append(
            f"MD: {data.equilibration_fs:g} fs equilibration, frames every {data.interval_fs:g} fs, "
            f"{data.timestep_fs:g} fs step (TM23: 5000, 50, 5)"
        )
    if data.temperatures != {"cold": 0.25, "warm": 0.75, "melt": 1.25}:
        from mlffbench.data import temperatures

        stated = ", ".join(f"{label} {temperatures.describe(v)}" for label, v in data.temperatures.items())
        notes.append(f"temperatures {stated} (TM23: cold 0.25, warm 0.75, melt 1.25 x T_melt)")
    if data.min_length != 7.0:
        notes.append(f"supercell vectors >= {data.min_length:g} Å (TM23: 7 Å)")
    names = {data.reference(el).get("name") for el in data.element_list()}  # the relabeler when there is one
    classical = sorted(names & {"lammps", "emt"})
    if classical:
        notes.append(
            f"labels from the classical {' and '.join(repr(n) for n in classical)} reference, not DFT: trajectories "
            "and labels come from the same potential (TM23: AIMD then static DFT relabel); energy % errors use the "
            "potential's energy zero (cohesive-energy scale), so they are not comparable with TM23's VASP "
            "total-energy % errors"
        )
    fitted = _dft_fitted(data)
    if fitted:
        notes.append(f"{', '.join(fitted)}: labels from DFT-fitted machine-learned potentials (SNAP, UF3 in LAMMPS), "
                     "not DFT: the benchmark measures how well a model learns the fit, not DFT")
    if "universal" in names:
        from mlffbench.data.labelers.universal import SURROGATE_NOTE

        notes.append(
            f"labels and MD from a universal potential ({SURROGATE_NOTE}): a pretrained model trained on PBE "
            "(Materials Project) stands in for the papers' AIMD and DFT labels; its energy zero and its errors "
            "against DFT are the model's, and a zero-shot model of the same kind is refused as circular"
        )
    return notes


def _dft_fitted(data: DataConfig) -> list[str]:
    """The elements of a generate entry whose LAMMPS reference is a machine-learned fit to DFT (SNAP, UF3)."""
    from mlffbench.data.labelers import make_labeler

    out = []
    for el in data.element_list():
        spec = data.reference(el)
        if spec.get("name") == "lammps":
            try:
                if make_labeler(spec).potential([el]).pair_style in ("snap", "uf3"):
                    out.append(el)
            except MlffbenchError:
                pass  # a config error, reported by planning
    return out


class MainJob:
    def __init__(self, config: RunConfig, run_dir: str | Path, executor=None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.executor = executor  # default: from config.execution, created when the run starts
        self.datasets: list[DataSet] = []  # filled by plan()
        self.not_run: list[dict] = []  # (task, data set, model) refused at planning, each with its one-line reason
        self._replaced: dict[str, str] = {}  # earlier data-set name -> the planned one replacing it (engine.sources)
        self.labeler_checks: dict[str, dict] = {}  # data set -> its reference labeler's checks (filled by plan())

    # -- planning -----------------------------------------------------------------------------------
    def plan(self) -> list[PlannedJob]:
        """The job graph; raises ConfigError or DataError (nothing written) for a plan that cannot run.

        Per data set: its data job (and the variants tasks ask for, e.g. larger cells), then each task module's
        job specs for each model that accepts the data set (see ``mlffbench.tasks``); a (task, model) that cannot
        run on a data set is recorded in ``not_run`` with the reason."""
        cfg = self.config
        cfg.check_trains()  # before the data sets are read: models: [] is a config error, not a data-only run
        self._check_devices()
        self.datasets = datasets.plan(cfg)
        from mlffbench.data.labelers import checks as label_checks

        # every reference labeler is checked before it labels; a failure the entry does not accept is refused
        # here, before the run directory exists (the measures are cached outside it)
        self.labeler_checks = label_checks.plan(self.datasets, cfg.seed)
        self.not_run = []
        enabled = cfg.tasks.enabled()
        jobs: list[PlannedJob] = []
        for ds in self.datasets:
            data_key = job_key("data", ds.data_inputs, CODE_VERSION)
            jobs.append(PlannedJob(data_key, "data", f"data:{ds.name}", ds.data_inputs))
            refs = {"dataset": datasets.ref(ds, data_key), "variants": {}}
            tasks = []
            for task in enabled:
                module = TASK_MODULES[task]
                reason = module.refuse(cfg, ds) if hasattr(module, "refuse") else None
                if reason:
                    self.not_run.append({"task": task, "dataset": ds.name, "model": "*", "reason": reason})
                    continue
                if hasattr(module, "check"):
                    module.check(cfg, ds)
                for variant, overrides in (module.data_variants(cfg, ds) if hasattr(module, "data_variants")
                                           else {}).items():
                    if variant in refs["variants"]:
                        continue
                    vds = datasets.generate.variant(ds, variant, overrides)
                    vkey = job_key("data", vds.data_inputs, CODE_VERSION)
                    jobs.append(PlannedJob(vkey, "data", f"data:{vds.name}", vds.data_inputs))
                    refs["variants"][variant] = datasets.ref(vds, vkey)
                tasks.append(task)
            for i, model in enumerate(cfg.models):
                reason = self._refuse_model(model, ds)
                model_tasks = [t for t in tasks if model.tasks is None or t in model.tasks]
                if reason:
                    self.not_run += [{"task": t, "dataset": ds.name, "model": model.label or model.name,
                                      "reason": reason} for t in model_tasks]
                    continue
                for task in model_tasks:
                    module = TASK_MODULES[task]
                    why = module.refuse_model(model) if hasattr(module, "refuse_model") else None
                    if why:  # e.g. calibration of a model that predicts no uncertainty: n/a with the reason
                        self.not_run.append({"task": task, "dataset": ds.name, "model": model.label or model.name,
                                             "reason": why})
                        continue
                    jobs += self._task_jobs(task, ds, refs, i, model)
        for task in enabled:
            refused = [x for x in self.not_run if x["task"] == task and x["model"] == "*"]
            if getattr(TASK_MODULES[task], "MUST_APPLY", False) and len(refused) == len(self.datasets):
                raise ConfigError(f"{refused[0]['reason']}; tasks.{task} runs on no data set of this run")
        unique: dict[str, PlannedJob] = {}  # a job two tasks ask for (e.g. the accuracy fit) runs once
        for job in jobs:
            unique.setdefault(job.key, job)
        return list(unique.values())

    def _check_devices(self) -> None:
        """``training.device: cuda`` on a machine without an NVIDIA GPU is a config error before anything runs
        (jobs on a remote cluster's workers: their own machines decide, the fit says it there)."""
        cfg = self.config
        if cfg.execution.scheduler:
            return
        from mlffbench import envs

        for i, model in enumerate(cfg.models):
            family = get_model_class(model.name)
            if family.epoch_trained and cfg.training_protocol(model).device == "cuda" and not envs.gpu_present():
                raise ConfigError(f"models[{i}] ({model.label or model.name}): training.device = cuda, but this "
                                  f"machine has no NVIDIA GPU (the {family.env or model.name} environment would "
                                  "train on none); use device: auto or cpu")

    @staticmethod
    def _refuse_model(model, ds: DataSet) -> str | None:
        """Why a model family cannot run on this data set (its own ``refuse`` rule), else None."""
        if model.name == "labeler" and ds.reference is None and "labeler" not in model.params:
            return "no reference calculator: this data set names no labeler"
        return get_model_class(model.name).refuse(ds.summary(), model.params)

    def _task_jobs(self, task: str, ds: DataSet, refs: dict, i: int, model) -> list[PlannedJob]:
        cfg = self.config
        label = model.label or model.name
        params = dict(model.params)
        if model.name == "labeler":
            params.setdefault("labeler", ds.reference)
        planned: list[PlannedJob] = []
        data_keys = (refs["dataset"]["data_key"],)
        for spec in TASK_MODULES[task].jobs(cfg, ds, model):
            job_params = {**params, **spec.get("params", {})}
            if spec.get("params"):
                check_model_params(model.name, job_params, f"{spec.get('check', f'tasks.{task}')} (models[{i}])")
            # species and cutoffs against the data, where known now (files data; generated data: at fit time)
            problem = get_model_class(model.name).data_problem(job_params, ds.elements, ds.shortest_distance)
            if problem:
                raise ConfigError(f"models[{i}] ({label}): {problem} (data set '{ds.name}')")
            job_task, kind = spec.get("task", task), spec.get("kind", "fit_score")
            inputs = {"task": job_task, "dataset": refs["dataset"], "model": model.name, "label": label,
                      "params": job_params, "seed": cfg.seed, "split": spec["split"], "point": spec["point"],
                      **spec.get("inputs", {})}
            if kind == "fit_score" and get_model_class(model.name).epoch_trained:
                inputs["training"] = cfg.training_protocol(model).to_dict()
            extra = tuple(refs["variants"][name]["data_key"] for name in spec.get("data", ()))
            if extra:
                inputs["variants"] = {name: refs["variants"][name] for name in spec["data"]}
            after = tuple(planned[j].key for j in spec.get("after", ()))
            if after:
                inputs["after"] = list(after)  # the key changes with any job it waits for
            key = job_key(kind, inputs, CODE_VERSION)
            inputs["job_id"] = key[:16]
            planned.append(PlannedJob(key, kind, _job_name(job_task, ds.name, label, spec["point"]), inputs,
                                      data_keys + extra, model.python, after))
        return planned

    # -- execution ----------------------------------------------------------------------------------
    def run(self, progress: bool = True, announce=None) -> list[Job]:
        """Plan, hold the run directory (one coordinator per directory: ``RUN/run.lock``, see
        ``mlffbench.engine.lock``; a second one gets RunLockedError naming the holder), open the store (a damaged
        one is a StoreError), call ``announce()`` (the CLI's header line: nothing is printed before a refusal),
        then execute."""
        planned = self.plan()  # validates everything before anything is written
        with RunLock(self.run_dir):
            store = RunStore(self.run_dir)
            try:
                # the source files against the earlier run's: a gone one is refused here, before anything is written
                notes, self._replaced = sources.check(
                    self.config, [(ds.name, ds.data_inputs) for ds in self.datasets], store, self.run_dir)
                if announce is not None:
                    announce()
                for note in notes:
                    print(f"mlffbench: {note}", file=sys.stderr)
                return self._run(planned, store, progress)
            finally:
                store.close()

    def _run(self, planned: list[PlannedJob], store: RunStore, progress: bool) -> list[Job]:
        cfg = self.config
        store.set_provenance({
            "config": to_dict(cfg), "environment": environment_provenance(),
            "protocol_notes": protocol_notes(cfg, self.datasets), "code_version": CODE_VERSION,
            "datasets": {ds.name: ds.describe() for ds in self.datasets}, "not_run": self.not_run,
            "labeler_checks": self.labeler_checks,
            # the latest version of each data set: the report and status show only its jobs (engine.sources)
            sources.DATA_KEYS: sources.data_keys(
                store.provenance().get(sources.DATA_KEYS),
                {job.name.split(":", 1)[1]: job.key for job in planned if job.kind == "data"}, self._replaced),
        })
        self._discard_edited(store)  # first: every later step reads results, and an edited one is refused
        for job in planned:
            store.add_job(job.key, job.kind, job.name, job.inputs)
        self._verify(planned, store)
        self._execute(planned, store, progress)
        return [store.get(job.key) for job in planned]

    def _verify(self, planned: list[PlannedJob], store: RunStore) -> None:
        """Before finished jobs are skipped: every file they wrote is still as recorded. A changed one is named in
        one line, removed, and its job and every job that used it, transitively, run again."""
        changed, redo = artefacts.stale(store, planned, self.run_dir)
        names = {job.key: job.name for job in planned}
        for key, found in changed.items():
            users = sum(k != key and store.get(k).status == "done" for k in redo[key])
            for rel, what in found.items():
                print(f"mlffbench: {self.run_dir / rel}: {what}; re-running {names[key]} and the {users} finished "
                      "job(s) that used it", file=sys.stderr)
            artefacts.remove(self.run_dir, found)
        if redo:
            store.reset(sorted(set().union(*redo.values())))

    def _discard_edited(self, store: RunStore) -> None:
        """A result edited after it was written (its checksum no longer matches) is not trusted and not reused:
        said once per job, then the job runs again (readers refuse such a store; the coordinator can repair it)."""
        edited = store.tampered()
        for _, name in edited:
            print(f"mlffbench: {self.run_dir}: job {name}: result edited after it was written (checksum mismatch); "
                  "discarded, the job runs again", file=sys.stderr)
        if edited:
            store.discard([key for key, _ in edited])

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
        active: dict[str, PlannedJob] = {}  # submitted, not yet collected (the progress watcher reads it)
        watcher = _FitProgress(self.run_dir, active, bar) if progress else None
        pythons, unavailable = self._family_pythons(todo)

        def submit(job: PlannedJob) -> None:
            store.start(job.key)
            inputs = resolved.get(job.key, job.inputs)
            # the files of the jobs it uses, as they wrote them: the job checks them first (not in the job key)
            inputs = {**inputs, artefacts.VERIFY: artefacts.of_jobs(store, (*job.depends, *job.after), self.run_dir)}
            if "training" in inputs:  # the cores a fit may use where it runs (not in the job key)
                inputs["threads"] = inputs["training"].get("threads") or executor_threads(executor)
            python = job.python or pythons.get(_environment_key(job))
            if job.kind == "evaluate" and python:
                # evaluate jobs need this environment (reference labeler, phonopy); the potential runs in its own
                # through mlffbench.models.remote. Not part of the job key: where an environment lives may change.
                inputs, python = {**inputs, "model_python": python}, None
            active[job.key] = job
            running[executor.submit(run_job, job.kind, inputs, str(self.run_dir), python)] = job

        def collect(futures) -> None:
            for future in futures:
                job = running.pop(future)
                active.pop(job.key, None)
                out = outcome(future)
                if not out["ok"] and _disk_full(out["error"]):
                    # not the job's fault: stop (the job stays 'running', i.e. interrupted) rather than record
                    # it, and every job after it, as failed; a re-run after freeing space resumes
                    raise DiskFullError(f"{self.run_dir}: no space left on the device while {job.name} wrote its "
                                        f"files ({out['error']}); free space and re-run the same command to "
                                        "resume (finished jobs are kept)")
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
                    family = _environment_key(job)
                    if family in unavailable and job.python is None:
                        todo.remove(job)
                        fail_now(job, f"{'model' if job.kind != 'data' else 'labeler'} unavailable: "
                                      f"{unavailable[family]}")
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
            if watcher is not None:
                watcher.stop()
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
        for family in dict.fromkeys(_environment_key(j) for j in todo if j.python is None):
            if family is None:
                continue
            try:
                if family.startswith(_ENV):
                    python = envs.python_of_env(family[len(_ENV):])
                else:  # 'mace@auto': the CUDA env when asked for (cuda) or already built on a GPU machine (auto)
                    name, _, device = family.partition("@")
                    python = envs.python_for(name, device=device or None)
            except envs.EnvBuildError as exc:
                unavailable[family] = str(exc)  # already one line naming the build log
                continue
            if python is not None:
                pythons[family] = python
        return pythons, unavailable


_ENV = "env:"


def _environment_key(job) -> str | None:
    """What decides the interpreter a job runs with: its model family, or for a data job ``env:<name>`` when a
    universal potential labels it (``_data_env``); None: this environment. A fit with a training protocol asking
    for a GPU (``device`` cuda or auto) is ``family@device``: it may run in the family's CUDA environment."""
    device = (job.inputs.get("training") or {}).get("device", "cpu")
    model = job.inputs.get("model")
    if model and job.kind == "fit_score" and device != "cpu":
        return f"{model}@{device}"
    return model or _data_env(job)


def _data_env(job) -> str | None:
    """``env:<name>`` for a data job whose labelers are all one universal potential: the job runs in that
    model's family environment, calling the model in-process (else in this one, the model through a pipe)."""
    if job.kind != "data":
        return None
    from mlffbench.data.labelers.universal import ENVS, is_universal

    data = job.inputs.get("data") or {}
    specs = [data.get("labeler"), *([data["relabel"]] if data.get("relabel") else [])]
    if not all(is_universal(spec) for spec in specs):
        return None
    names = {ENVS.get(spec.get("model", "sevennet")) for spec in specs}
    return f"{_ENV}{names.pop()}" if len(names) == 1 and None not in names else None


class DiskFullError(MlffbenchError):
    """A job ran out of disk space; the run stops so that the re-run resumes."""


def _disk_full(error: str) -> bool:
    """Whether a job's one-line failure is a full disk or quota (ENOSPC, EDQUOT, SQLite's SQLITE_FULL)."""
    return any(s in error for s in ("[Errno 28]", "No space left on device", "[Errno 122]", "Disk quota exceeded",
                                    "database or disk is full"))


def _job_name(task: str, dataset: str, label: str, point: dict) -> str:
    """task:dataset:label then the point's k=v, a nested mapping (a sweep or grid point) flattened in place."""
    items = [kv for k, v in point.items() for kv in (v.items() if isinstance(v, dict) else [(k, v)])]
    return f"{task}:{dataset}:{label}" + "".join(f":{k}={v}" for k, v in items)


class _FitProgress:
    """A long fit's progress in the run's progress line while it trains (epoch k of N, validation force error,
    time left), read every few seconds from the ``progress.json`` each epoch-trained fit keeps in its model
    directory (``mlffbench.models.training.write_progress``): the same for every executor, as the file is the only
    channel a job in a Dask worker or another environment has."""

    def __init__(self, run_dir: Path, active: dict, bar, interval_s: float = 5.0):
        import threading

        self.run_dir, self.active, self.bar, self.interval_s = Path(run_dir), active, bar, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from mlffbench.models.training import progress_text, read_progress

        while not self._stop.wait(self.interval_s):
            parts = []
            for job in list(self.active.values()):
                if "training" not in job.inputs:
                    continue
                p = read_progress(self.run_dir / "models" / job.inputs["job_id"])
                if p:
                    parts.append(f"{job.inputs['label']} {progress_text(p)}")
            try:
                self.bar.set_postfix_str("; ".join(parts)[:120], refresh=True)
            except Exception:  # noqa: BLE001 - a closed bar: the run is ending
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="job", dynamic_ncols=True,
                bar_format="{desc:<22} {bar} {n_fmt}/{total_fmt} jobs [{elapsed}<{remaining}]{postfix}")


def labeler_checks_of(jobs: list[Job], planned: dict | None = None) -> dict[str, dict]:
    """Every data set's labeler checks: those planning made (``MainJob.labeler_checks``), completed by the ones
    a data job ran itself (universal labelers: ``labeler_checks`` in its result)."""
    out = dict(planned or {})
    for job in jobs:
        if job.kind == "data" and job.status == "done" and isinstance(job.result, dict):
            rec = job.result.get("labeler_checks")
            if rec:
                out[job.result.get("dataset", job.name.split(":", 1)[1])] = rec
    return out


def results_table(jobs: list[Job], labeler_checks: dict | None = None) -> str:
    """One text table per task, the cost table over all of them, then the jobs that did not finish.
    ``labeler_checks`` ({data set: record}): a data set whose labeler fails a check the config accepted is marked
    (``checks.MARK``) in every table, with the failure under them."""
    from mlffbench.data.labelers import checks as label_checks

    flagged = label_checks.marked(labeler_checks_of(jobs, labeler_checks))
    results: dict[str, list[dict]] = {}
    problems = []
    for job in jobs:
        if job.kind not in ("fit_score", "evaluate"):
            continue
        if job.status == "done":
            result = job.result
            if result.get("dataset") in flagged:  # a marked copy: the stored result stays as it is
                result = {**result, "dataset": f"{result['dataset']}{label_checks.MARK}"}
            results.setdefault(result["task"], []).append(result)
        else:
            problems.append(f"  ({job.status}) {job.name}: {job.error or ''}")
    parts = []
    failing = TASK_MODULES["checks"].failing(TASK_MODULES["checks"].summarise(results.get("checks", [])))
    for task, module in TASK_MODULES.items():
        if task in results:
            rows = module.summarise(results[task])
            if task == "accuracy":  # a potential that fails a verification check is marked in the ranking
                rows = module.mark(rows, failing)
            parts.append(f"{module.TITLE}\n{module.table(rows)}")
    if results:
        parts.append(f"{cost.TITLE}\n{cost.table(cost.summarise([r for rs in results.values() for r in rs]))}")
        from mlffbench.report.training import text_section

        training = text_section([r for rs in results.values() for r in rs])  # epoch-trained fits only
        if training:
            parts.append(training)
    if problems:
        parts.append("Not finished:\n" + "\n".join(problems))
    if flagged and results:
        parts.append(label_checks.mark_note(flagged))
    return "\n\n".join(parts)


def data_table(jobs: list[Job], labeler_checks: dict | None = None) -> str:
    """Per data set: generated TM23 data (supercell, lattice, kinetic vs target temperature) or loaded files
    (frames, atoms, groups); then the label checks of each data set's reference labeler (``labeler_checks``:
    {data set: record}), accepted failures marked, mild findings beside them."""
    data = [job for job in jobs if job.kind == "data"]
    names = [job.name.split(":", 1)[1] for job in data]
    w = max([8] + [len(n) for n in names])
    generated = [(n, j) for n, j in zip(names, data) if j.inputs.get("source") == "generate"]
    other = [(n, j) for n, j in zip(names, data) if j.inputs.get("source") != "generate"]
    parts = []
    if generated:
        lines = [f"{'data set':<{w}} {'atoms':>5} {'lattice':<8} {'a (Å)':>7} {'c (Å)':>7}  "
                 "kinetic T (mean ± std) vs target, K (TM23 protocol)"]
        for name, job in generated:
            if job.status != "done":
                lines.append(f"{name:<{w}} {job.status}: {job.error}")
                continue
            cell = job.result["cell"]
            temps = "  ".join(f"{lab} {t['kinetic_temperature_mean']:.0f}±{t['kinetic_temperature_std']:.0f}/"
                              f"{t['target_temperature']:.0f}" for lab, t in job.result["trajectories"].items())
            c = f"{cell['c']:.4f}" if cell["c"] else "-"
            lines.append(f"{name:<{w}} {cell['natoms']:>5} {cell['lattice']:<8} {cell['a']:>7.4f} {c:>7}  {temps}")
        parts.append("\n".join(lines))
    if other:
        lines = [f"{'data set':<{w}} {'frames':>7} {'atoms':>8}  groups (frames)"]
        for name, job in other:
            if job.status != "done":
                lines.append(f"{name:<{w}} {job.status}: {job.error}")
                continue
            r = job.result
            groups = ", ".join(f"{g} {n}" for g, n in r["groups"].items())
            lines.append(f"{name:<{w}} {r['n_frames']:>7} {r['n_atoms']:>8}  {groups}")
        parts.append("\n".join(lines))
    records = labeler_checks_of(jobs, labeler_checks)
    if records:
        parts.append(_label_checks_table(records, w))
    return "\n\n".join(parts)


def _label_checks_table(records: dict[str, dict], w: int) -> str:
    from mlffbench.data.labelers import checks as label_checks

    lines = [f"{'data set':<{w}} label checks of the reference labeler (before it labelled; model tolerances, "
             f"smoothness: force kink <= {label_checks.LABEL_TOLERANCES['force_kink']:g} eV/Å, energy jump <= "
             f"{label_checks.LABEL_TOLERANCES['energy_jump']:g} eV)"]
    for name, rec in records.items():
        mark = label_checks.MARK if rec.get("accepted") else ""
        lines.append(f"{name + mark:<{w}} {label_checks.summary(rec):<28} {rec['labeler']}"
                     + (f" ({rec['reason']})" if rec.get("reason") else ""))
    notes = "\n".join(x for x in (label_checks.mark_note(records), label_checks.mild_note(records)) if x)
    return "\n".join(lines) + (f"\n{notes}" if notes else "")


def not_run_table(not_run: list[dict]) -> str:
    """What planning refused to run, one line per (data set, model), with the reason."""
    seen: dict[tuple, list[str]] = {}
    for item in not_run:
        seen.setdefault((item["dataset"], item["model"], item["reason"]), []).append(item["task"])
    return "\n".join(f"  {ds} / {model}: {', '.join(tasks)}: n/a: {reason}"
                     for (ds, model, reason), tasks in seen.items())


def summary_counts(jobs: list[Job]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return counts


__all__ = ["MainJob", "results_table", "data_table", "labeler_checks_of", "not_run_table", "protocol_notes"]
