"""Job bodies: pure functions of (kind, inputs, run_dir) -> JSON-able result.

Module-level and free of store access so that any executor can run them: in this process, in a Dask worker, or
in another Python environment through ``python -m mlffbench.worker JOB_DIR``. Only the coordinator writes the
run store; a job writes nothing but files under the run directory (data, trained models), each atomically.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from pathlib import Path

from mlffbench import frames as fr
from mlffbench import metrics
from mlffbench.config import DataConfig, from_dict
from mlffbench.data import sample, splits
from mlffbench.data.io import read_frames
from mlffbench.data.labelers import make_labeler
from mlffbench.models.registry import make_model


def execute(kind: str, inputs: dict, run_dir: str | Path) -> dict:
    """Run one job; raises on failure (the coordinator records the exception)."""
    run_dir = Path(run_dir)
    if kind == "data":
        return run_data(inputs, run_dir)
    if kind == "fit_score":
        return run_fit_score(inputs, run_dir)
    if kind == "evaluate":  # a task's own job body (e.g. observables of a potential a fit job trained)
        from mlffbench.tasks import TASK_MODULES

        return TASK_MODULES[inputs["task"]].run(inputs, run_dir)
    raise ValueError(f"unknown job kind {kind!r}")


def data_dir(run_dir: Path, variant: str | None = None) -> Path:
    """Where a data set's files live: ``data/`` for the main one, ``data-<variant>/`` for a variant (e.g. the
    larger cells of the size-extensivity task), so two cell sizes never share a file."""
    return Path(run_dir) / ("data" if not variant else f"data-{variant}")


def run_data(inputs: dict, run_dir: Path) -> dict:
    cfg = from_dict(DataConfig, inputs["data"], "data")
    relabeler = make_labeler(cfg.relabel) if cfg.relabel else None
    return sample.generate_element(inputs["element"], cfg, data_dir(run_dir, inputs.get("variant")),
                                   make_labeler(cfg.labeler), relabeler, inputs["seed"])


def load_element(run_dir: Path, element: str, temperatures, variant: str | None = None) -> list:
    frames = []
    for label in temperatures:
        frames += read_frames(sample.trajectory_path(data_dir(run_dir, variant), element, label),
                              require=("energy", "forces"))
    return frames


def make_split(frames, spec: dict, test_last, seed: int) -> tuple[splits.Split, dict[str, list[int]]]:
    """The training split of a job and its named test sets (indices into ``frames``)."""
    how = spec["kind"]
    if how == "transfer":  # one training set (every frame of spec["train"]), one test set per other temperature
        per_test = [splits.transfer(frames, spec["train"], label) for label in spec["test"]]
        return per_test[0], {label: s.test.tolist() for label, s in zip(spec["test"], per_test)}
    full = splits.tm23_full(frames, test_last)
    if how == "tm23_full":
        return full, {"test": full.test.tolist()}
    if how == "learning_curve":
        (lc,) = [s for s in splits.learning_curve_splits(full, [spec["size"]], spec["set_id"] + 1, seed)
                 if s.meta["set_id"] == spec["set_id"]]
        return lc, {"test": full.test.tolist()}
    if how == "grid":  # train and test subsets both from the full split's training frames
        sub = splits.subsets(full, spec["train_frames"], spec["test_frames"], seed)
        return sub, {"test": sub.test.tolist()}
    raise ValueError(f"unknown split kind {how!r}")


def training_and_tests(inputs: dict, run_dir: Path) -> tuple[list, dict[str, list]]:
    """The training frames of a fit-and-score job and its named test sets."""
    element, spec = inputs["element"], inputs["split"]
    # a split may name its own data set (a variant, e.g. the grid's larger cells) and that set's temperatures
    frames = load_element(run_dir, element, spec.get("temperatures", inputs["temperatures"]), spec.get("data"))
    if spec["kind"] == "size":  # the main data set = small cells; train on one size, test on both
        sets = {"small": frames, "large": load_element(run_dir, element, inputs["temperatures"], "large")}
        full = {cell: splits.tm23_full(f, inputs["test_last"]) for cell, f in sets.items()}
        (pick,) = splits.learning_curve(full[spec["train"]].train, [spec["train_frames"]], 1, inputs["seed"])
        train = [sets[spec["train"]][i] for i in pick[2]]
        return train, {cell: [sets[cell][i] for i in full[cell].test] for cell in sets}
    split, tests = make_split(frames, spec, inputs["test_last"], inputs["seed"])
    return [frames[i] for i in split.train], {name: [frames[i] for i in idx] for name, idx in tests.items()}


def run_fit_score(inputs: dict, run_dir: Path) -> dict:
    element = inputs["element"]
    train, tests = training_and_tests(inputs, run_dir)
    workdir = Path(run_dir) / "models" / inputs["job_id"]
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    potential = make_model(inputs["model"]).fit(train, None, inputs["params"], workdir)
    fit_s = time.perf_counter() - start
    potential.save(workdir / "potential.json")
    # one untimed call first: model loading, JIT compilation and graph tracing are start-up, not prediction cost
    first = next((test[0] for test in tests.values() if test), None)
    start = time.perf_counter()
    if first is not None:
        potential.predict([first])
    warmup_s = time.perf_counter() - start
    scored, predict_s, n_atoms = {}, 0.0, 0
    for name, test in tests.items():
        start = time.perf_counter()
        predicted = potential.predict(test)
        predict_s += time.perf_counter() - start
        atoms = sum(len(f) for f in test)
        n_atoms += atoms
        scored[name] = {
            "n_test": len(test), "n_atoms": atoms,
            "overall": metrics.flatten(metrics.score(predicted, test)),
            "by_temperature": {str(k): metrics.flatten(v)
                               for k, v in metrics.score_by(predicted, test, fr.TEMPERATURE_LABEL).items()},
        }
    info = getattr(potential, "info", {}) or {}
    result = {
        "task": inputs["task"], "element": element, "model": inputs["model"], "label": inputs["label"],
        "point": inputs.get("point", {}), "params": inputs["params"], "n_train": len(train),
        "n_train_atoms": sum(len(f) for f in train), "tests": scored,
        "cost": {
            "fit_s": fit_s, "predict_us_per_atom": 1e6 * predict_s / max(n_atoms, 1), "predict_warmup_s": warmup_s,
            "n_parameters": info.get("n_parameters"), "descriptor_dim": info.get("descriptor_dim"),
            "peak_rss_mb": _peak_rss_mb(), "hardware": _hardware(),
        },
        "model_info": {k: info[k] for k in ("n_sparse", "optimisation", "log_marginal_likelihood", "package",
                                            "version", "device", "train_s_per_epoch", "energy_shift_eV_per_atom",
                                            "shift_applied", "deviations") if k in info},
    }
    if "selection" in inputs:  # a grid retrain: the choice it was given
        result["selection"] = inputs["selection"]
    return result


def _hardware() -> dict:
    """The machine this job ran on (a Dask worker may be on another node than the coordinator)."""
    return {"node": platform.node(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "processor": platform.processor() or None}


def _peak_rss_mb() -> float:
    """High-water mark of this process (a worker's, when jobs share a worker process)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024
