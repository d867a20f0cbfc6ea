"""Predictions for parity plots, recomputed at report time from what a fit_score job left on disk: the trained
potential (run_dir/models/<job_id>/potential.json) and the data set's frames (run_dir/datasets/<name>/, checked
against its manifest). No retraining; the test set is rebuilt from the job's own split spec and seed, so these are
the very frames the job scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlffbench.frames import stack_labels
from mlffbench.units import GPA


@dataclass
class Parity:
    """Reference and predicted labels of one job's test set (or one group of it), in report units."""

    dataset: str
    group: str  # "" for the whole test set
    model: str
    energy: tuple[np.ndarray, np.ndarray]  # meV/atom (ref, pred)
    forces: tuple[np.ndarray, np.ndarray]  # meV/Å components
    stress: tuple[np.ndarray, np.ndarray]  # GPa Voigt components
    n_frames: int

    @classmethod
    def of(cls, dataset: str, model: str, ref_frames: list, pred_frames: list, group: str = "") -> "Parity":
        r, p = stack_labels(ref_frames), stack_labels(pred_frames)
        with np.errstate(invalid="ignore", divide="ignore"):
            energy = (1e3 * r.energies / r.natoms, 1e3 * p.energies / p.natoms)
        return cls(dataset, group, model, energy, (1e3 * r.forces.ravel(), 1e3 * p.forces.ravel()),
                   (r.stresses.ravel() / GPA, p.stresses.ravel() / GPA), len(ref_frames))


def predict_test(run_dir: Path, result: dict, max_frames: int | None = 60) -> tuple[list, list]:
    """(reference, predicted) frames of one accuracy job's test set, at most ``max_frames`` evenly spaced ones
    (raises when the model or the data is gone or changed)."""
    from mlffbench import datasets
    from mlffbench.data import splits
    from mlffbench.models.base import load_potential

    from mlffbench.engine import artefacts

    inputs = result["_inputs"]
    rel = f"models/{inputs['job_id']}/potential.json"
    path = Path(run_dir) / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trained potential missing")
    artefacts.check_file(run_dir, rel, (result.get("artefacts") or {}).get(rel))  # as its fit job saved it
    frames = datasets.load(inputs["dataset"], run_dir)
    _, tests = splits.make(frames, inputs["split"], inputs["seed"])
    idx = list(tests.get("test", next(iter(tests.values()))))
    if max_frames and len(idx) > max_frames:  # evenly spaced subset keeps the plot and the report quick
        idx = [idx[i] for i in np.linspace(0, len(idx) - 1, max_frames).round().astype(int)]
    ref_frames = [frames[i] for i in idx]
    return ref_frames, load_potential(path).predict(ref_frames)


def not_plotted(what: str, exc: Exception) -> str:
    """A parity plot left out (model or data missing or changed): one warning line naming the file on stderr, and the
    text for the report's note."""
    import sys

    from mlffbench.errors import one_line

    text = f"{what}: {one_line(exc)}"
    print(f"mlffbench: warning: parity {text}", file=sys.stderr)
    return text


def parity(run_dir: Path, result: dict, max_frames: int | None = 60) -> Parity:
    """The parity data of one accuracy job's test set."""
    ref, pred = predict_test(run_dir, result, max_frames)
    return Parity.of(result["dataset"], result["label"], ref, pred)


def parity_by_group(ref_frames: list, pred_frames: list, dataset: str, model: str) -> list[Parity]:
    """One Parity per group of the test frames (``info['group']``), in order of appearance."""
    from mlffbench.datasets import GROUP

    groups = list(dict.fromkeys(f.info.get(GROUP, "") for f in ref_frames))
    return [Parity.of(dataset, model, [r for r in ref_frames if r.info.get(GROUP, "") == g],
                      [p for r, p in zip(ref_frames, pred_frames) if r.info.get(GROUP, "") == g], g)
            for g in groups]
