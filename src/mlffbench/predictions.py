"""Stored predictions: the raw output of a scoring job, kept once so that every later view reads it.

A fit-and-score job (``engine.jobs.run_fit_score``) already predicts each of its test sets to score them; it writes
those predictions, with the reference labels and the split's indices, to ``models/<job_id>/predictions.npz`` beside
the trained potential (compressed, float64) and records the file's sha256 with its result like the potential
(``engine.artefacts``). The report's parity plots, per-group and per-element breakdowns and any new metric
(``rescore``, ``mlffbench rescore RUN --metric NAME``) read this file; none of them loads a model. Runs made before
the file existed have none: the report says which plots are missing and why (``missing_note``).

Layout (one set of arrays per test set NAME, keys ``NAME::field``): ``index`` (frame indices into the data set, the
split record's), ``group`` (each frame's group, str), ``natoms`` (per frame), ``numbers`` (atomic numbers of every
atom, frames concatenated), ``energy_ref``/``energy_pred`` (eV per cell), ``forces_ref``/``forces_pred`` (eV/Å,
atoms x 3), ``stress_ref``/``stress_pred`` (eV/Å³ Voigt, ASE sign, frames x 6). A missing label is NaN.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ase.data import chemical_symbols

from mlffbench.units import GPA

FILE = "predictions.npz"
FORMAT = 1
_SEP = "::"


def relpath(job_id: str) -> str:
    """Where a fit job's predictions live, relative to the run directory."""
    return f"models/{job_id}/{FILE}"


@dataclass
class PredictedSet:
    """Reference and predicted labels of one test set (internal units: eV, eV/Å, eV/Å³)."""

    name: str
    index: np.ndarray
    group: np.ndarray
    natoms: np.ndarray
    numbers: np.ndarray
    energy_ref: np.ndarray
    energy_pred: np.ndarray
    forces_ref: np.ndarray
    forces_pred: np.ndarray
    stress_ref: np.ndarray
    stress_pred: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.natoms)

    @property
    def atom_frame(self) -> np.ndarray:
        """The frame (position in this test set) of every atom."""
        return np.repeat(np.arange(len(self.natoms)), self.natoms)

    @property
    def symbols(self) -> np.ndarray:
        from ase.data import chemical_symbols

        return np.asarray(chemical_symbols, dtype=object)[self.numbers]

    def subset(self, frames) -> "PredictedSet":
        """The same arrays for the frames at the given positions (in this test set), in that order."""
        frames = np.asarray(frames, dtype=int)
        starts = np.concatenate([[0], np.cumsum(self.natoms)])
        atoms = (np.concatenate([np.arange(starts[i], starts[i + 1]) for i in frames]) if len(frames)
                 else np.zeros(0, dtype=int))
        return PredictedSet(self.name, self.index[frames], self.group[frames], self.natoms[frames],
                               self.numbers[atoms], self.energy_ref[frames], self.energy_pred[frames],
                               self.forces_ref[atoms], self.forces_pred[atoms], self.stress_ref[frames],
                               self.stress_pred[frames])

    def groups(self) -> list[str]:
        return list(dict.fromkeys(self.group.tolist()))


def arrays(name: str, index, test: list, predicted: list) -> dict[str, np.ndarray]:
    """The arrays of one test set from its reference and predicted frames."""
    from mlffbench.datasets import GROUP
    from mlffbench.frames import stack_labels

    r, p = stack_labels(test), stack_labels(predicted)
    return {"index": np.asarray(index, dtype=np.int64),
            "group": np.asarray([str(f.info.get(GROUP, "")) for f in test], dtype=str),
            "natoms": r.natoms.astype(np.int64),
            "numbers": np.concatenate([f.numbers for f in test]).astype(np.int16) if test else np.zeros(0, np.int16),
            "energy_ref": r.energies, "energy_pred": p.energies, "forces_ref": r.forces, "forces_pred": p.forces,
            "stress_ref": r.stresses, "stress_pred": p.stresses}


def save(path: str | os.PathLike, tests: dict[str, dict[str, np.ndarray]]) -> None:
    """Write {test-set name: arrays} atomically as a compressed npz whose bytes depend on the arrays only (fixed
    zip timestamps, unlike ``np.savez_compressed``), so equal predictions give an equal sha256."""
    import zipfile

    flat = {"format": np.asarray(FORMAT)}
    for name, arr in tests.items():
        flat.update({f"{name}{_SEP}{k}": v for k, v in arr.items()})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in flat.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> dict[str, PredictedSet]:
    """{test-set name: PredictedSet} of one job's file."""
    with np.load(path, allow_pickle=False) as data:
        fields: dict[str, dict] = {}
        for key in data.files:
            if _SEP in key:
                name, field = key.split(_SEP, 1)
                fields.setdefault(name, {})[field] = data[key]
    return {name: PredictedSet(name, **f) for name, f in fields.items()}


class NoPredictions(Exception):
    """A finished job without stored predictions (a run made before they were kept) or whose file changed."""


def of_result(run_dir: str | os.PathLike, result: dict) -> dict[str, PredictedSet]:
    """The stored predictions of one fit-and-score result (as the report reads it: with ``_inputs``), checked
    against the sha256 its job recorded; NoPredictions saying why when there are none to read."""
    from mlffbench.engine import artefacts

    job_id = (result.get("_inputs") or {}).get("job_id")
    rel = relpath(job_id) if job_id else None
    rec = (result.get("artefacts") or {}).get(rel) if rel else None
    if rec is None:
        raise NoPredictions("no stored predictions (the job ran before mlffbench kept them; a run made now "
                            "stores them)")
    what = artefacts.problem(run_dir, rel, rec)
    if what:
        raise NoPredictions(f"{Path(run_dir) / rel}: {what} since its job wrote it")
    return load(Path(run_dir) / rel)


def main_test(tests: dict[str, PredictedSet]) -> PredictedSet:
    """The test set a parity plot shows: 'test', else the first."""
    return tests.get("test") or next(iter(tests.values()))


def thin_frames(n: int, max_frames: int | None) -> np.ndarray:
    """At most ``max_frames`` evenly spaced positions of ``n`` frames (deterministic; all when fewer)."""
    if not max_frames or n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))


def thin_points(n: int, max_points: int | None) -> np.ndarray:
    """At most ``max_points`` evenly strided positions of ``n`` points (deterministic)."""
    if not max_points or n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


# -- new metrics from stored predictions --------------------------------------------------------------------------

def _ok(ref, pred):
    ref, pred = np.asarray(ref, float).ravel(), np.asarray(pred, float).ravel()
    keep = np.isfinite(ref) & np.isfinite(pred)
    return ref[keep], pred[keep]


#: metric name -> f(reference, predicted) over the finite pairs (internal units in, internal units out)
METRICS: dict[str, Callable] = {
    "mae": lambda r, p: float(np.mean(np.abs(p - r))),
    "rmse": lambda r, p: float(np.sqrt(np.mean((p - r) ** 2))),
    "max": lambda r, p: float(np.max(np.abs(p - r))),
    "median": lambda r, p: float(np.median(np.abs(p - r))),
    "p95": lambda r, p: float(np.percentile(np.abs(p - r), 95)),
    "bias": lambda r, p: float(np.mean(p - r)),
    "percent": lambda r, p: float(100 * np.mean(np.abs(p - r)) / np.mean(np.abs(r))),
}

#: quantity -> (arrays of a PredictedSet, report factor, unit)
QUANTITIES = {
    "energy": (lambda t: (t.energy_ref / t.natoms, t.energy_pred / t.natoms), 1e3, "meV/atom"),
    "forces": (lambda t: (t.forces_ref, t.forces_pred), 1e3, "meV/Å"),
    "stress": (lambda t: (t.stress_ref, t.stress_pred), 1 / GPA, "GPa"),
}


def score(t: PredictedSet, metric: str | Callable) -> dict[str, float]:
    """{quantity: value in report units (NaN where there are no labels)} of one test set under ``metric``
    (a name in METRICS or any f(reference, predicted) -> float)."""
    fn = METRICS[metric] if isinstance(metric, str) else metric
    out = {}
    for q, (get, factor, _) in QUANTITIES.items():
        ref, pred = _ok(*get(t))
        value = fn(ref, pred) if len(ref) else float("nan")
        out[q] = value if (isinstance(metric, str) and metric == "percent") else factor * value
    return out


def score_element(t: PredictedSet, number: int, metric: str | Callable) -> dict:
    """One element's row (TEA-style, as ``metrics.score_by_element``): forces of that element's atoms, energy and
    stress of the frames that contain it."""
    frames = np.flatnonzero(np.bincount(t.atom_frame[t.numbers == number], minlength=t.n_frames) > 0)
    sub = t.subset(frames)
    out = score(sub, metric)
    keep = sub.numbers == number
    fn = METRICS[metric] if isinstance(metric, str) else metric
    ref, pred = _ok(sub.forces_ref[keep], sub.forces_pred[keep])
    value = fn(ref, pred) if len(ref) else float("nan")
    out["forces"] = value if metric == "percent" else QUANTITIES["forces"][1] * value
    return {"n_frames": sub.n_frames, **out}


def rescore(run_dir: str | os.PathLike, metric: str | Callable = "mae", task: str | None = None,
            dataset: str | None = None) -> tuple[list[dict], list[str]]:
    """Score every stored prediction of a run again under ``metric``, no model loaded: ([{task, dataset, model,
    test, group, n_frames, energy, forces, stress}], [what has no stored predictions and why]). One row per test
    set, then one per group of it when it has several and one per element when it has several."""
    from mlffbench.report.collect import load_run

    if isinstance(metric, str) and metric not in METRICS:
        from mlffbench.errors import MlffbenchError

        raise MlffbenchError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    run = load_run(run_dir)
    rows, missing = [], []
    for t_name, results in run.results.items():
        if task and t_name != task:
            continue
        for r in results:
            if dataset and r["dataset"] != dataset:
                continue
            try:
                tests = of_result(run_dir, r)
            except NoPredictions as exc:
                missing.append(f"{t_name} {r['dataset']} {r['label']}: {exc}")
                continue
            base = {"task": t_name, "dataset": r["dataset"], "model": r["label"],
                    "point": ",".join(f"{k}={v}" for k, v in _flat(r.get("point") or {}))}
            for name, t in tests.items():
                rows.append({**base, "test": name, "group": "", "n_frames": t.n_frames, **score(t, metric)})
                if len(t.groups()) > 1:
                    for g in t.groups():
                        sub = t.subset(np.flatnonzero(t.group == g))
                        rows.append({**base, "test": name, "group": g, "n_frames": sub.n_frames, **score(sub, metric)})
                for z in (np.unique(t.numbers) if len(np.unique(t.numbers)) > 1 else ()):
                    rows.append({**base, "test": name, "group": f"element {chemical_symbols[z]}",
                                 **score_element(t, int(z), metric)})
    return rows, missing


def _flat(point: dict):
    for k, v in point.items():
        if isinstance(v, dict):
            yield from v.items()
        else:
            yield k, v


def rescore_table(rows: list[dict], metric: str) -> str:
    from mlffbench.report_text import format_table

    def num(v):
        return "-" if v != v else f"{v:.4g}"

    unit = {q: ("%" if metric == "percent" else u) for q, (_, _, u) in QUANTITIES.items()}
    return format_table(["task", "data set", "model", "point", "test", "group", "frames", f"E {metric}",
                         f"F {metric}", f"S {metric}"],
                        ["", "", "", "", "", "", "", unit["energy"], unit["forces"], unit["stress"]],
                        [[r["task"], r["dataset"], r["model"], r["point"] or "-", r["test"], r["group"] or "all",
                          r["n_frames"], num(r["energy"]), num(r["forces"]), num(r["stress"])] for r in rows],
                        text_columns=(0, 1, 2, 3, 4, 5))
