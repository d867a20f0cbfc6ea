"""The training protocol every epoch-trained family follows, and the evidence each fit leaves behind.

One ``Training`` (config ``training:``, overridable per model) says how long a family may train (``max_epochs``,
``max_minutes``: the fair unit, equal wall time per model), when it has converged (no relative improvement of the
validation loss by more than ``min_delta`` for ``patience`` epochs), which frames it validates on (a seeded
per-group ``validation_fraction`` of the training frames, chosen by the engine: the same for every family on a
split), and where and how it computes (``device``: auto | cpu | cuda; ``precision``: float32 | float64).

A fit records its ``Curve`` (per epoch: train and validation errors, learning rate, wall time) and ends with an
``outcome``: ``converged``, ``budget`` (stopped by max_epochs / max_minutes while still improving, with the
improvement of the last 10 epochs) or ``diverged`` (a non-finite loss; the last good epoch is kept). Adapters run in
their family environments: this module imports only the standard library and numpy.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("float32", "float64")
#: the statuses a fit can end with (``outcome``)
STATUSES = ("converged", "budget", "diverged")
#: what ended the training (``stopped_by``)
STOPS = ("patience", "max_epochs", "max_minutes", "nan")
#: the file a running fit keeps its progress in (``models/<job_id>/progress.json``), read by the coordinator
PROGRESS_FILE = "progress.json"


class TrainingError(ValueError):
    """An impossible protocol (the caller turns it into a ConfigError naming the key)."""


@dataclass(frozen=True)
class Training:
    max_epochs: int = 1000
    max_minutes: float = 60.0
    patience: int = 30
    min_delta: float = 0.0  # relative: an epoch improves when loss < best * (1 - min_delta)
    validation_fraction: float = 0.1
    device: str = "auto"
    precision: str = "float32"
    #: CPU threads of the fit; 0 = the cores its executor gives a job (set by the engine at submission)
    threads: int = 0

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict | None) -> "Training":
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise TrainingError(f"{unknown[0]}: unknown key (known: {', '.join(cls.keys())})")
        out = cls(**d)
        out.check()
        return out

    def merged(self, overrides: dict | None) -> "Training":
        out = replace(self, **dict(overrides or {})) if overrides else self
        out.check()
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Raise TrainingError (``key: why``) for a protocol that cannot run."""
        def number(key, integer=False):
            v = getattr(self, key)
            ok = isinstance(v, int) if integer else isinstance(v, (int, float))
            if isinstance(v, bool) or not ok:
                raise TrainingError(f"{key}: must be {'an integer' if integer else 'a number'}, got {v!r}")
            return v

        if number("max_epochs", True) < 1:
            raise TrainingError(f"max_epochs: must be >= 1, got {self.max_epochs}")
        if not number("max_minutes") > 0 or not math.isfinite(self.max_minutes):
            raise TrainingError(f"max_minutes: must be a positive number of minutes, got {self.max_minutes}")
        if number("patience", True) < 1:
            raise TrainingError(f"patience: must be >= 1, got {self.patience}")
        if self.patience > self.max_epochs:
            raise TrainingError(f"patience: {self.patience} epochs is more than max_epochs ({self.max_epochs}): "
                                "early stopping could never fire")
        if not 0 <= number("min_delta") < 1:
            raise TrainingError(f"min_delta: a relative improvement in [0, 1), got {self.min_delta}")
        if not 0 < number("validation_fraction") < 1:
            raise TrainingError(f"validation_fraction: must be in (0, 1), got {self.validation_fraction}")
        if self.device not in DEVICES:
            raise TrainingError(f"device: must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision: must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if number("threads", True) < 0:
            raise TrainingError(f"threads: must be >= 0 (0 = the job's cores), got {self.threads}")

    @property
    def max_seconds(self) -> float:
        return 60.0 * float(self.max_minutes)

    def improved(self, loss: float, best: float) -> bool:
        """Whether ``loss`` counts as an improvement on ``best``: lower by more than ``min_delta`` x |best|."""
        if not math.isfinite(loss):
            return False
        return not math.isfinite(best) or loss < best - self.min_delta * abs(best)

    def epochs_without_improvement(self, values) -> int:
        """Epochs since the last one that improved (``improved``) on the best before it: the count that early
        stopping compares with ``patience`` (0 for no values)."""
        best, last, n = float("inf"), 0, 0
        for i, v in enumerate(values):
            n = i + 1
            if self.improved(v, best):
                best, last = v, i
        return n - 1 - last if n else 0


def plateau_patience(patience: int) -> int:
    """The default patience of a family's plateau learning-rate scheduler under early stopping after ``patience``
    epochs: a third of it, so the learning rate is cut twice on a plateau before the fit is called converged (a
    scheduler patience at or above the stopping patience, e.g. TM23's 100 or MACE's 50 epochs against 30, would
    stop every fit at its first learning rate)."""
    return max(1, int(patience) // 3)


def validation_counts(group_sizes: dict[str, int], fraction: float) -> dict[str, int]:
    """Validation frames held out of each training group: round(fraction * n), at least one, and never the
    group's last frame (a group of one frame contributes none)."""
    return {g: (min(n - 1, max(1, int(round(fraction * n)))) if n >= 2 else 0) for g, n in group_sizes.items()}


# -- the curve -----------------------------------------------------------------------------------------------------
@dataclass
class Curve:
    """Per-epoch record of a fit. Errors in the benchmark's units: energy meV/atom, forces meV/Å, stress GPa (MAE
    unless the family reports RMSE: ``metric`` says which); ``loss`` is the family's own loss value."""

    metric: str = "mae"
    epochs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, epoch: int, wall_s: float, valid: dict[str, float], train: dict[str, float] | None = None,
            lr: float | None = None) -> None:
        self.epochs.append({"epoch": int(epoch), "wall_s": float(wall_s), "lr": None if lr is None else float(lr),
                            "train": {k: _num(v) for k, v in (train or {}).items()},
                            "valid": {k: _num(v) for k, v in valid.items()}})

    def monitor(self) -> list[float]:
        """The validation quantity early stopping watches: the loss when recorded, else the force error."""
        key = "loss" if all("loss" in e["valid"] for e in self.epochs) else "forces"
        return [_as_float(e["valid"].get(key)) for e in self.epochs]

    def to_list(self) -> list[dict]:
        return list(self.epochs)


def _num(v):
    v = float(v)
    return v if math.isfinite(v) else None if math.isnan(v) else v


def _as_float(v) -> float:
    return float("nan") if v is None else float(v)


def outcome(curve: Curve, protocol: Training, stopped_by: str | None, wall_s: float,
            best_epoch: int | None = None) -> dict[str, Any]:
    """How the fit ended. ``stopped_by``: what ended it as the adapter saw it (patience | max_epochs | max_minutes |
    nan; None: the curve decides). ``best_epoch``: the epoch whose weights are scored (default: the lowest
    monitored validation value). Improvement = relative fall of the best validation value over the last 10 epochs
    (budget fits: how much a longer training would still have given)."""
    values = curve.monitor()
    n = len(values)
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    diverged = stopped_by == "nan" or bool(bad)
    if best_epoch is None and finite:
        best_i = min(finite, key=values.__getitem__)
        best_epoch = curve.epochs[best_i]["epoch"]
    best_value = min((values[i] for i in finite), default=None)
    running, best = [], float("inf")
    for v in values:
        best = min(best, v) if math.isfinite(v) else best
        running.append(best)
    per10 = None
    if n > 10 and math.isfinite(running[-11]) and running[-11] > 0:
        per10 = (running[-11] - running[-1]) / running[-11]
    stale = protocol.epochs_without_improvement(values)
    if diverged:
        status = "diverged"
    elif stopped_by == "patience" or (n and stale >= protocol.patience):
        status = "converged"
    else:
        status = "budget"
    if stopped_by is None:
        stopped_by = "nan" if diverged else "patience" if status == "converged" else "max_epochs"
    last_good = max((curve.epochs[i]["epoch"] for i in finite), default=None)
    return {"status": status, "stopped_by": stopped_by, "epochs": curve.epochs[-1]["epoch"] if n else 0,
            "best_epoch": best_epoch, "best_valid": best_value, "monitor": "loss" if values and
            all("loss" in e["valid"] for e in curve.epochs) else "forces",
            "epochs_without_improvement": stale, "improvement_last_10_epochs": per10,
            "last_good_epoch": last_good if diverged else None, "wall_s": float(wall_s)}


def record(protocol: Training, curve: Curve, end: dict, device: str, n_train: int, n_valid: int,
           notes: list[str] | None = None, **extra) -> dict[str, Any]:
    """The ``training`` record a fit returns in its model info (stored with the result)."""
    return {"protocol": protocol.to_dict(), **end, "device": device, "n_train": n_train, "n_valid": n_valid,
            "curve_metric": curve.metric, "curve": curve.to_list(), "notes": list(notes or []), **extra}


# -- progress of a running fit ----------------------------------------------------------------------------------
def write_progress(workdir: str | os.PathLike, epoch: int, protocol: Training, elapsed_s: float,
                   valid_forces: float | None = None) -> None:
    """Atomically (re)write ``workdir/progress.json``: epoch k of N, validation force error, time left."""
    per_epoch = elapsed_s / max(epoch, 1)
    left = min(protocol.max_seconds - elapsed_s, per_epoch * (protocol.max_epochs - epoch))
    blob = {"epoch": int(epoch), "max_epochs": protocol.max_epochs, "valid_forces": valid_forces,
            "elapsed_s": float(elapsed_s), "left_s": max(0.0, float(left)), "time": time.time()}
    path = Path(workdir) / PROGRESS_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(blob))
    os.replace(tmp, path)


def read_progress(workdir: str | os.PathLike) -> dict | None:
    try:
        return json.loads((Path(workdir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def progress_text(p: dict) -> str:
    """'epoch 12/300 F 84.1 meV/Å 41 min left' (the run's progress line)."""
    f = p.get("valid_forces")
    force = f" F {f:.1f} meV/Å" if isinstance(f, (int, float)) else ""
    return f"epoch {p['epoch']}/{p['max_epochs']}{force} {p['left_s'] / 60:.0f} min left"


# -- running a family's training program under the protocol -------------------------------------------------------
def run_watched(args: list[str], log_path: Path, cwd, protocol: Training, poll: Callable[[], bool] | None = None,
                env: dict | None = None, interval_s: float = 2.0) -> tuple[int, float, bool]:
    """Run a training program with stdout+stderr into ``log_path`` and stop it at ``max_minutes`` (for families
    whose own program has no wall-time limit): SIGINT first (Python programs unwind and may save), SIGKILL 30 s
    later. ``poll()`` is called every ``interval_s`` (e.g. to parse the log into progress); returning True stops
    the program too (an early stop the family cannot make itself). Returns (return code, wall seconds, stopped:
    whether this function ended it)."""
    start = time.perf_counter()
    stopped = False
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        while proc.poll() is None:
            try:
                proc.wait(timeout=interval_s)
                break
            except subprocess.TimeoutExpired:
                pass
            want_stop = bool(poll()) if poll is not None else False
            if want_stop or time.perf_counter() - start > protocol.max_seconds:
                stopped = True
                _stop(proc)
                break
        if poll is not None:
            poll()
    return proc.returncode, time.perf_counter() - start, stopped


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables giving a training subprocess ``threads`` CPU threads (OpenMP, BLAS, TF)."""
    n = str(max(1, int(threads or 1)))
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1"}


def torch_device(family: str, requested: str) -> tuple[str, str | None]:
    """(device, note) for a torch family, inside its environment: auto = cuda when torch sees a GPU, else cpu with
    a note; cuda without one is an error naming the family and its environment."""
    import sys

    import torch

    has_cuda = bool(torch.cuda.is_available())
    if requested == "cuda" and not has_cuda:
        raise TrainingError(f"{family}: training.device = cuda, but torch {torch.__version__} in the {family} "
                            f"environment ({sys.executable}) sees no GPU; use device: auto or cpu, or build the "
                            f"environment with 'mlffbench env build {family} --cuda' on a GPU machine")
    if requested == "cpu" or not has_cuda:
        note = None if requested == "cpu" else "device auto: no GPU visible to torch, trained on the CPU"
        return "cpu", note
    return "cuda", None


def device_name(device: str) -> str:
    """Human name of the device for provenance and the cost table."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    import platform

    return f"cpu {platform.processor() or platform.machine()}"
