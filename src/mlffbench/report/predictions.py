"""Parity data from the predictions each fit-and-score job stored when it scored its test sets
(run_dir/models/<job_id>/predictions.npz, :mod:`mlffbench.predictions`, checked against the sha256 its job
recorded). No model is loaded and nothing is predicted again, so every model family has its parity plot, also
those that live in another Python environment (CHGNet, MACE, ...). A run made before predictions were stored has
no parity plot; the report says so for each such model.

The point clouds are thinned deterministically for the figures (evenly spaced test frames, then evenly strided
force components); each model's MAE in a legend is that of its full test set, and the full arrays stay in the
.npz files (the report's JSON lists them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlffbench import predictions as stored
from mlffbench.units import GPA

#: at most this many test frames per model and panel (energy and stress points; forces come from these frames)
MAX_FRAMES = 200
#: at most this many force components per model and panel
MAX_FORCE_POINTS = 2500


@dataclass
class Parity:
    """Reference and predicted labels of one job's test set (or one group of it), in report units, thinned for
    plotting; ``mae`` holds each quantity's MAE over the full set and ``n_points`` its full point counts."""

    dataset: str
    group: str  # "" for the whole test set
    model: str
    energy: tuple[np.ndarray, np.ndarray]  # meV/atom (ref, pred)
    forces: tuple[np.ndarray, np.ndarray]  # meV/Å components
    stress: tuple[np.ndarray, np.ndarray]  # GPa Voigt components
    n_frames: int
    mae: dict = field(default_factory=dict)  # quantity -> MAE of the full set (report units)
    n_points: dict = field(default_factory=dict)  # quantity -> points of the full set

    @classmethod
    def of(cls, dataset: str, model: str, ref_frames: list, pred_frames: list, group: str = "") -> "Parity":
        """From reference and predicted frames (no thinning)."""
        t = stored.PredictedSet("", np.arange(len(ref_frames)), np.full(len(ref_frames), group),
                                   **{k: v for k, v in stored.arrays("", range(len(ref_frames)), ref_frames,
                                                                     pred_frames).items()
                                      if k not in ("index", "group")})
        return cls.of_stored(dataset, model, t, group, None, None)

    @classmethod
    def of_stored(cls, dataset: str, model: str, t: stored.PredictedSet, group: str = "",
                  max_frames: int | None = MAX_FRAMES, max_points: int | None = MAX_FORCE_POINTS) -> "Parity":
        full = {"energy": (1e3 * t.energy_ref / t.natoms, 1e3 * t.energy_pred / t.natoms),
                "forces": (1e3 * t.forces_ref.ravel(), 1e3 * t.forces_pred.ravel()),
                "stress": (t.stress_ref.ravel() / GPA, t.stress_pred.ravel() / GPA)}
        mae, n_points = {}, {}
        for q, (ref, pred) in full.items():
            ok = np.isfinite(ref) & np.isfinite(pred)
            n_points[q] = int(ok.sum())
            mae[q] = float(np.mean(np.abs(pred[ok] - ref[ok]))) if ok.any() else float("nan")
        shown = t.subset(stored.thin_frames(t.n_frames, max_frames))
        fr, fp = 1e3 * shown.forces_ref.ravel(), 1e3 * shown.forces_pred.ravel()
        keep = stored.thin_points(len(fr), max_points)
        return cls(dataset, group, model, (1e3 * shown.energy_ref / shown.natoms, 1e3 * shown.energy_pred / shown.natoms),
                   (fr[keep], fp[keep]), (shown.stress_ref.ravel() / GPA, shown.stress_pred.ravel() / GPA),
                   t.n_frames, mae, n_points)


def stored_test_set(run_dir: Path, result: dict) -> stored.PredictedSet:
    """The stored predictions of one accuracy job's test set ('test', else its first); raises
    ``predictions.NoPredictions`` saying why there are none (an older run, a changed file)."""
    return stored.main_test(stored.of_result(run_dir, result))


def not_plotted(what: str, exc: Exception) -> str:
    """The text of a parity plot left out (no stored predictions, or the file changed, which it names); a
    section collects them and says them once (``missing_note``, ``warn_missing``)."""
    from mlffbench.errors import one_line

    return f"{what}: {exc if isinstance(exc, stored.NoPredictions) else one_line(exc)}"


def warn_missing(problems: list[str]) -> None:
    """One warning line on stderr for the parity plots a section left out (the reason once when they share it)."""
    import sys

    if problems:
        print(f"mlffbench: warning: parity {missing_note(problems)}", file=sys.stderr)


def missing_note(problems: list[str]) -> str:
    """The report's note on the parity plots left out: which and why, the reason said once when all share it."""
    if not problems:
        return ""
    reasons = {p.split(": ", 1)[1] if ": " in p else p for p in problems}
    if len(reasons) == 1:
        (reason,) = reasons
        names = ", ".join(p.split(": ", 1)[0] for p in problems)
        return f"Not plotted ({len(problems)}): {names}: {reason}"
    return "Not plotted: " + "; ".join(problems)


def parity(run_dir: Path, result: dict, max_frames: int | None = MAX_FRAMES,
           max_points: int | None = MAX_FORCE_POINTS) -> Parity:
    """The parity data of one accuracy job's test set, from its stored predictions."""
    return Parity.of_stored(result["dataset"], result["label"], stored_test_set(run_dir, result), "", max_frames,
                            max_points)


def parity_by_group(t: stored.PredictedSet, dataset: str, model: str, max_frames: int | None = MAX_FRAMES,
                    max_points: int | None = MAX_FORCE_POINTS) -> list[Parity]:
    """One Parity per group of a stored test set, in order of appearance."""
    return [Parity.of_stored(dataset, model, t.subset(np.flatnonzero(t.group == g)), g, max_frames, max_points)
            for g in t.groups()]


def record(result: dict, p: Parity, run_dir: Path) -> dict:
    """What the report's JSON says about one plotted parity set: where its full data are and how much was drawn."""
    rel = stored.relpath(result["_inputs"]["job_id"])
    return {"dataset": result["dataset"], "model": result["label"], "group": p.group, "file": rel,
            "sha256": ((result.get("artefacts") or {}).get(rel) or {}).get("sha256"), "frames": p.n_frames,
            "points": p.n_points, "plotted_force_points": int(len(p.forces[0])),
            "plotted_frames": int(len(p.energy[0])), "mae": p.mae}
