"""Executors run job bodies (``mlffbench.engine.jobs.execute``) and hand back outcomes; the coordinator alone
writes the store. ``InProcessExecutor`` runs each job at submission (debugging, tests); ``DaskExecutor`` uses an
embedded LocalCluster (one single-threaded worker process per core) or an existing cluster by address, e.g. one
started by dask-jobqueue on SLURM (see docs/cluster.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from mlffbench.errors import one_line

#: the thread counts of a job's process, as the embedded LocalCluster gives each worker process before it starts:
#: one thread for OpenMP, BLAS and numba, so n workers use n cores, not n^2 (and n jobs on a cluster node the same)
WORKER_THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


@contextmanager
def one_thread():
    """Run a job with the threads of a Dask worker, whatever process it runs in (the in-process executor's, a
    worker of a cluster that did not pin its threads). Same config, same numbers: BLAS sums in an order that
    depends on its thread count (acegp's likelihood optimiser then takes another path: issue 25 measured 518 of 1879
    values differing by up to 0.7 %), and numba or BLAS threads on cores that other jobs use made the in-process
    executor ~13x slower. BLAS/OpenMP pools already loaded: threadpoolctl; numba and torch: their own setters;
    libraries the job loads first, and its subprocesses: the environment variables (numba's only for subprocesses:
    it refuses a change of NUMBA_NUM_THREADS once its threads run). Everything is restored afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    env = {k: v for k, v in WORKER_THREADS.items() if k != "NUMBA_NUM_THREADS"}
    saved_env = {k: os.environ.get(k) for k in env}
    saved_numba = numba.get_num_threads()
    torch = sys.modules.get("torch")  # not imported here for nothing; a job that imports it reads OMP_NUM_THREADS
    saved_torch = torch.get_num_threads() if torch is not None else None
    os.environ.update(env)
    try:
        with threadpool_limits(limits=1):
            numba.set_num_threads(1)
            if torch is not None:
                torch.set_num_threads(1)
            yield
    finally:
        numba.set_num_threads(saved_numba)
        if torch is not None:
            torch.set_num_threads(saved_torch)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_job(kind: str, inputs: dict, run_dir: str, python: str | None = None) -> dict:
    """Outcome of one job as a dict (never raises): {"ok", "result" | "error" + "log", "wall_s"}. The job runs with
    one thread (``one_thread``), on every executor alike.

    With ``python`` the job runs in that interpreter through ``python -m mlffbench.worker JOB_DIR``."""
    start = time.perf_counter()
    try:
        if python:
            result = run_in_subprocess(python, kind, inputs, run_dir)
        else:
            from mlffbench.engine.jobs import execute

            with one_thread():
                result = execute(kind, inputs, run_dir)
        return {"ok": True, "result": result, "wall_s": time.perf_counter() - start}
    except RemoteJobError as exc:  # already 'Type: message' of the worker's exception, with its traceback
        return {"ok": False, "error": str(exc), "log": exc.log, "wall_s": time.perf_counter() - start}
    except Exception as exc:  # noqa: BLE001 - a failing job is a recorded result
        return {"ok": False, "error": one_line(exc), "log": traceback.format_exc(),
                "wall_s": time.perf_counter() - start}


class RemoteJobError(RuntimeError):
    """A job that failed inside a family environment's worker: its one-line reason and its traceback there."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def run_in_subprocess(python: str, kind: str, inputs: dict, run_dir: str) -> dict:
    """Run a job in another Python environment: inputs and outputs are files in a job directory."""
    jobs_root = Path(run_dir) / "jobs"
    jobs_root.mkdir(parents=True, exist_ok=True)
    job_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=jobs_root))
    (job_dir / "job.json").write_text(json.dumps({"kind": kind, "inputs": inputs, "run_dir": str(run_dir)}))
    # the worker process gets a Dask worker's threads from the start (a fresh interpreter reads them at import)
    proc = subprocess.run([python, "-m", "mlffbench.worker", str(job_dir)], capture_output=True, text=True,
                          env={**os.environ, **WORKER_THREADS})
    if (job_dir / "result.json").is_file():
        return json.loads((job_dir / "result.json").read_text())
    error = job_dir / "error.json"
    if error.is_file():
        failure = json.loads(error.read_text())
        raise RemoteJobError(failure["error"], failure.get("log", ""))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    raise RuntimeError(f"worker {python} exited {proc.returncode} without a result: {tail[0]}")


class InProcessExecutor:
    name = "inprocess"
    #: jobs run one after another in this process: a training job may use every core
    threads_per_job = os.cpu_count() or 1

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def wait(self, futures):
        return set(futures)

    def close(self) -> None:
        pass


class DaskExecutor:
    name = "dask"

    def __init__(self, workers: int = 0, scheduler: str | None = None):
        import dask
        from dask.distributed import Client, LocalCluster

        if scheduler:
            self.threads_per_job = 1  # a cluster's workers: one core each unless the training protocol says
            self.cluster = None
            self.client = Client(scheduler)
        else:
            n = workers or os.cpu_count() or 1
            self.threads_per_job = max(1, (os.cpu_count() or 1) // n)
            # one thread per worker process; BLAS and numba likewise, so n workers use n cores, not n^2
            with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_THREADS,
                                  "distributed.worker.daemon": False}):
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=40)
            self.client = Client(self.cluster)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait(self, futures):
        from dask.distributed import wait

        return wait(list(futures), return_when="FIRST_COMPLETED").done

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def outcome(future) -> dict:
    """The outcome of a finished future; a worker that died (segfault, OOM kill) becomes a failed outcome."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": one_line(exc), "log": repr(exc), "wall_s": 0.0}


def executor_threads(executor) -> int:
    """CPU threads a training job may use on this executor (its cores per job; 1 for unknown executors)."""
    return int(getattr(executor, "threads_per_job", 1) or 1)


def make_executor(execution) -> InProcessExecutor | DaskExecutor:
    if execution.executor == "inprocess":
        return InProcessExecutor()
    return DaskExecutor(execution.workers, execution.scheduler)


__all__ = ["run_job", "one_thread", "WORKER_THREADS", "InProcessExecutor", "DaskExecutor", "make_executor", "outcome",
           "executor_threads"]
