"""Predictions for parity plots, recomputed at report time from what a fit_score job left on disk: the trained
potential (run_dir/models/<job_id>/potential.json) and the run's data (run_dir/data/...). No retraining; the
test set is rebuilt with the job's own split inputs, so these are the very frames the job scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlffbench.frames import stack_labels
from mlffbench.units import GPA


@dataclass
class Parity:
    """Reference and predicted labels of one job's test set, in report units."""

    element: str
    model: str
    energy: tuple[np.ndarray, np.ndarray]  # meV/atom (ref, pred)
    forces: tuple[np.ndarray, np.ndarray]  # meV/Å components
    stress: tuple[np.ndarray, np.ndarray]  # GPa Voigt components
    n_frames: int


def parity(run_dir: Path, result: dict, max_frames: int | None = 60) -> Parity:
    """Recompute the predictions of one accuracy job on its test set (raises when the model or data is gone)."""
    from mlffbench.engine.jobs import load_element, make_split
    from mlffbench.models.base import load_potential

    inputs = result["_inputs"]
    path = Path(run_dir) / "models" / inputs["job_id"] / "potential.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trained potential missing")
    frames = load_element(Path(run_dir), inputs["element"], inputs["temperatures"])
    _, tests = make_split(frames, inputs["split"], inputs["test_last"], inputs["seed"])
    idx = tests.get("test") or next(iter(tests.values()))
    if max_frames and len(idx) > max_frames:  # evenly spaced subset keeps the plot and the report quick
        idx = [idx[i] for i in np.linspace(0, len(idx) - 1, max_frames).round().astype(int)]
    ref_frames = [frames[i] for i in idx]
    pred_frames = load_potential(path).predict(ref_frames)
    r, p = stack_labels(ref_frames), stack_labels(pred_frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        energy = (1e3 * r.energies / r.natoms, 1e3 * p.energies / p.natoms)
    return Parity(inputs["element"], result["label"], energy, (1e3 * r.forces.ravel(), 1e3 * p.forces.ravel()),
                  (r.stresses.ravel() / GPA, p.stresses.ravel() / GPA), len(ref_frames))
