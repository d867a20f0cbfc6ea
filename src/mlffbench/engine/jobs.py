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

from mlffbench import calibration, datasets, metrics, predictions, statistics
from mlffbench.data import splits
from mlffbench.datasets import GROUP
from mlffbench.engine import artefacts
from mlffbench.models.registry import make_model


def execute(kind: str, inputs: dict, run_dir: str | Path) -> dict:
    """Run one job; raises on failure (the coordinator records the exception)."""
    run_dir = Path(run_dir)
    inputs = dict(inputs)
    artefacts.check_inputs(inputs, run_dir)  # files of the jobs it uses, unchanged since they wrote them
    inputs.pop(artefacts.VERIFY, None)
    if kind == "data":
        return datasets.materialise(inputs, run_dir)
    if kind == "fit_score":
        return run_fit_score(inputs, run_dir)
    if kind == "evaluate":  # a task's own job body (e.g. observables of a potential a fit job trained)
        from mlffbench.tasks import TASK_MODULES

        return TASK_MODULES[inputs["task"]].run(inputs, run_dir)
    raise ValueError(f"unknown job kind {kind!r}")


def training_and_tests(inputs: dict, run_dir: Path) -> tuple[list, dict[str, list], dict]:
    """The training frames of a fit-and-score job, its named test sets and the split record
    (``splits.record``: the indices into the data set, stored once per distinct split)."""
    spec, seed = inputs["split"], inputs["seed"]
    if spec["kind"] == "size":  # size extensivity: train on one cell size, test on the held-out frames of both
        sets = {"small": datasets.load(inputs["dataset"], run_dir),
                "large": datasets.load(inputs["variants"]["large"], run_dir)}
        full = {cell: splits.base(f, spec["base"], seed) for cell, f in sets.items()}
        (pick,) = splits.learning_curve(full[spec["train"]].train, [spec["train_frames"]], 1, seed)
        train = [sets[spec["train"]][i] for i in pick[2]]
        record = splits.record(splits.Split(pick[2], full[spec["train"]].test, name=f"size_{spec['train']}"),
                               {cell: full[cell].test for cell in sets})
        return train, {cell: [sets[cell][i] for i in full[cell].test] for cell in sets}, record
    # a split may name a variant data set of its own (the grid's larger cells)
    source = inputs["variants"][spec["data"]] if spec.get("data") else inputs["dataset"]
    frames = datasets.load(source, run_dir)
    split, tests = splits.make(frames, spec, seed)
    return ([frames[i] for i in split.train], {name: [frames[i] for i in idx] for name, idx in tests.items()},
            splits.record(split, tests))


def path_barriers(predicted: list, test: list, groups: list[str]) -> dict:
    """Per reaction-path group (frames in file order, e.g. NEB images): the barrier, highest energy minus the
    first frame's, of the reference and of the model (eV), and the model's error."""
    out = {}
    for group in groups:
        idx = [i for i, f in enumerate(test) if f.info.get(GROUP) == group]
        if len(idx) < 2:
            continue
        ref = [float(test[i].calc.results["energy"]) for i in idx]
        pred = [float(predicted[i].calc.results["energy"]) for i in idx]
        barrier_ref, barrier_pred = max(ref) - ref[0], max(pred) - pred[0]
        out[group] = {"frames": len(idx), "barrier_ref_eV": barrier_ref, "barrier_model_eV": barrier_pred,
                      "barrier_error_eV": barrier_pred - barrier_ref,
                      "highest_frame_ref": int(max(range(len(ref)), key=ref.__getitem__)),
                      "highest_frame_model": int(max(range(len(pred)), key=pred.__getitem__))}
    return out


def score_test(predicted: list, test: list, path_groups: list[str] = (), seed: int = 0) -> dict:
    """Errors of one test set: overall, per group, (multi-element data) per element, and reaction barriers; each
    MAE and percent error with its bootstrap interval over the test frames (``*_lo``/``*_hi``), and the per-frame
    errors the report resamples for paired comparisons (``frames``, :mod:`mlffbench.statistics`)."""
    per_frame = statistics.frame_errors(predicted, test, [str(f.info.get(GROUP)) for f in test])
    out = {"n_test": len(test), "n_atoms": sum(len(f) for f in test),
           "overall": {**metrics.flatten(metrics.score(predicted, test)), **statistics.intervals(per_frame, seed)},
           "by_group": {str(k): {**metrics.flatten(v), **statistics.intervals(
               per_frame, seed, statistics.group_frames(per_frame, str(k)))}
               for k, v in metrics.score_by(predicted, test, GROUP).items()},
           "frames": per_frame}
    if len({s for f in test for s in f.get_chemical_symbols()}) > 1:
        out["by_element"] = {}
        for el, v in metrics.score_by_element(predicted, test).items():
            out["by_element"][el] = {**metrics.flatten(v),
                                     **statistics.intervals(per_frame, seed, quantities={"forces": f"forces:{el}"})}
    paths = path_barriers(predicted, test, path_groups)
    if paths:
        out["paths"] = paths
    return out


def run_fit_score(inputs: dict, run_dir: Path) -> dict:
    dataset = inputs["dataset"]
    train, tests, record = training_and_tests(inputs, run_dir)
    workdir = Path(run_dir) / "models" / inputs["job_id"]
    workdir.mkdir(parents=True, exist_ok=True)
    model = make_model(inputs["model"])
    model.check_data(train, inputs["params"], inputs["label"])  # e.g. a cutoff no pair of atoms is within
    fit_train, valid, protocol = train, None, None
    if "training" in inputs:  # an epoch-trained family: the protocol's validation hold-out of the training frames
        from mlffbench.models.training import Training

        protocol = Training.from_dict({**inputs["training"], "threads": inputs.get("threads", 1)})
        keep, held = splits.validation_by_group(train, range(len(train)), protocol.validation_fraction,
                                                inputs["seed"])
        if held.size == 0:
            raise ValueError(f"{inputs['label']}: training.validation_fraction = {protocol.validation_fraction} "
                             f"leaves no validation frame in {len(train)} training frames")
        fit_train, valid = [train[i] for i in keep], [train[i] for i in held]
        record["valid"] = [record["train"][i] for i in held]
    start = time.perf_counter()
    if protocol is None:
        potential = model.fit(fit_train, valid, inputs["params"], workdir)
    else:
        potential = model.fit(fit_train, valid, inputs["params"], workdir, training=protocol)
    fit_s = time.perf_counter() - start
    saved = f"models/{inputs['job_id']}/potential.json"
    potential.save(Path(run_dir) / saved)
    # one untimed call first: model loading, JIT compilation and graph tracing are start-up, not prediction cost
    first = next((test[0] for test in tests.values() if test), None)
    start = time.perf_counter()
    if first is not None:
        potential.predict([first])
    warmup_s = time.perf_counter() - start
    scored, predict_s, n_atoms, kept = {}, 0.0, 0, {}
    calibrate = inputs["task"] == "calibration"  # the predicted uncertainties against the errors
    for name, test in tests.items():
        start = time.perf_counter()
        predicted = potential.predict(test)
        predict_s += time.perf_counter() - start
        n_atoms += sum(len(f) for f in test)
        scored[name] = score_test(predicted, test, dataset.get("path_groups", ()), inputs["seed"])
        # the raw output, kept once: every later view (report, breakdowns, new metrics) reads it, no model reload
        kept[name] = predictions.arrays(name, record["tests"][name], test, predicted)
        if calibrate:
            scored[name]["uncertainty"] = calibration.score(predicted, test, potential.uncertainties(test))
    if calibrate:  # the first test set is the in-distribution one (splits.holdout_within)
        inside = next(iter(tests))
        for name, auc in calibration.ood_auc({k: v["uncertainty"] for k, v in scored.items()}, inside).items():
            scored[name]["uncertainty"]["ood_auc_vs_" + inside] = auc
    info = getattr(potential, "info", {}) or {}
    elements = dataset["elements"]
    result = {
        "task": inputs["task"], "dataset": dataset["name"], "elements": elements,
        "element": elements[0] if len(elements) == 1 else None, "model": inputs["model"], "label": inputs["label"],
        "point": inputs.get("point", {}), "params": inputs["params"], "n_train": len(train),
        "n_train_atoms": sum(len(f) for f in train), "tests": scored,
        "split": {"id": record["id"], "name": record["name"], "kind": inputs["split"]["kind"]},
        "split_indices": record,
        "cost": {
            "fit_s": fit_s, "predict_us_per_atom": 1e6 * predict_s / max(n_atoms, 1), "predict_warmup_s": warmup_s,
            "n_parameters": info.get("n_parameters"), "descriptor_dim": info.get("descriptor_dim"),
            "peak_rss_mb": _peak_rss_mb(), "hardware": _hardware(),
        },
        "model_info": {k: info[k] for k in ("n_sparse", "optimisation", "log_marginal_likelihood", "package",
                                            "version", "device", "train_s_per_epoch", "energy_shift_eV_per_atom",
                                            "shift_applied", "deviations", "published", "citation", "trained_on",
                                            "potential") if k in info},
    }
    stored = predictions.relpath(inputs["job_id"])
    predictions.save(Path(run_dir) / stored, kept)
    result["artefacts"] = artefacts.record(run_dir, [saved, stored])
    if protocol is not None:
        result["training"] = info.get("training") or {"status": None, "notes": ["the family returned no curve"]}
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
