"""Job bodies: pure functions of (kind, inputs, run_dir) -> JSON-able result.

Module-level and free of store access so that any executor can run them: in this process, in a Dask worker, or
in another Python environment through ``python -m mlffbench.worker JOB_DIR``. Only the coordinator writes the
run store; a job writes nothing but files under the run directory (data, trained models), each atomically.
"""

from __future__ import annotations

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
    raise ValueError(f"unknown job kind {kind!r}")


def data_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "data"


def run_data(inputs: dict, run_dir: Path) -> dict:
    cfg = from_dict(DataConfig, inputs["data"], "data")
    relabeler = make_labeler(cfg.relabel) if cfg.relabel else None
    return sample.generate_element(inputs["element"], cfg, data_dir(run_dir), make_labeler(cfg.labeler), relabeler,
                                   inputs["seed"])


def load_element(run_dir: Path, element: str, temperatures) -> list:
    frames = []
    for label in temperatures:
        frames += read_frames(sample.trajectory_path(data_dir(run_dir), element, label), require=("energy", "forces"))
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
    raise ValueError(f"unknown split kind {how!r}")


def run_fit_score(inputs: dict, run_dir: Path) -> dict:
    element = inputs["element"]
    frames = load_element(run_dir, element, inputs["temperatures"])
    split, tests = make_split(frames, inputs["split"], inputs["test_last"], inputs["seed"])
    train = [frames[i] for i in split.train]
    workdir = Path(run_dir) / "models" / inputs["job_id"]
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    potential = make_model(inputs["model"]).fit(train, None, inputs["params"], workdir)
    fit_s = time.perf_counter() - start
    potential.save(workdir / "potential.json")
    scored, predict_s, n_atoms = {}, 0.0, 0
    for name, idx in tests.items():
        test = [frames[i] for i in idx]
        start = time.perf_counter()
        predicted = potential.predict(test)
        predict_s += time.perf_counter() - start
        n_atoms += sum(len(f) for f in test)
        scored[name] = {
            "n_test": len(test),
            "overall": metrics.flatten(metrics.score(predicted, test)),
            "by_temperature": {str(k): metrics.flatten(v)
                               for k, v in metrics.score_by(predicted, test, fr.TEMPERATURE_LABEL).items()},
        }
    info = getattr(potential, "info", {}) or {}
    return {
        "task": inputs["task"], "element": element, "model": inputs["model"], "label": inputs["label"],
        "point": inputs.get("point", {}), "n_train": len(train), "n_train_atoms": sum(len(f) for f in train),
        "tests": scored,
        "cost": {
            "fit_s": fit_s, "predict_us_per_atom": 1e6 * predict_s / max(n_atoms, 1),
            "n_parameters": info.get("n_parameters"), "descriptor_dim": info.get("descriptor_dim"),
            "peak_rss_mb": _peak_rss_mb(),
        },
        "model_info": {k: info[k] for k in ("n_sparse", "optimisation", "log_marginal_likelihood") if k in info},
    }


def _peak_rss_mb() -> float:
    """High-water mark of this process (a worker's, when jobs share a worker process)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024
