"""Planning-time helpers shared by the task modules: split sizes of a data set before its frames exist."""

from __future__ import annotations

from mlffbench.data import splits
from mlffbench.errors import ConfigError


def pool(dataset, spec: dict | None = None, seed: int = 0, key: str = "split") -> tuple[int, int]:
    """(training frames, test frames) of a data set's split ``spec`` (default: its own), from the per-frame
    metadata known at planning (generated data: the planned trajectories); ConfigError naming ``key`` when the
    split leaves no training frame."""
    spec = spec or dataset.base_split
    try:
        split = splits.base(dataset.metadata, spec, seed)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} (data set '{dataset.name}')") from None
    return int(split.train.size), int(split.test.size)


def generated_only(dataset, what: str) -> str | None:
    """The refusal of a task that regenerates the data set (larger cells), for data it did not generate."""
    if dataset.source != "generate":
        return f"{what} regenerates the data with the TM23 protocol; data set '{dataset.name}' comes from files"
    return None


def trained_potential(inputs: dict, after_results: list, what: str) -> dict:
    """``resolve`` of an evaluate job that uses the potential its accuracy fit saved (``models/<job id>/
    potential.json``, relative to the run directory); the fit must have finished."""
    (fit,) = after_results
    if fit is None:
        raise RuntimeError(f"the model could not be trained (its accuracy fit failed), so no {what}")
    return {**inputs, "potential": f"models/{inputs['after'][0][:16]}/potential.json"}


def after_accuracy_fit(dataset, settings: dict) -> list[dict]:
    """The specs of an evaluate task on a trained potential: the accuracy fit (planned once when accuracy also
    runs), then the task's own job with its ``settings``, after it."""
    return [{"task": "accuracy", "split": dataset.base_split, "point": {}},
            {"kind": "evaluate", "split": dataset.base_split, "point": {}, "after": [0], "inputs": {"settings": settings}}]


def open_potential(inputs: dict, run_dir):
    """The potential an evaluate job works on: in this process, or for a family with its own environment evaluated
    there and driven from here (``RemotePotential``; close it when done)."""
    from pathlib import Path

    path = Path(run_dir) / inputs["potential"]
    if inputs.get("model_python"):
        from mlffbench.models.remote import RemotePotential

        return RemotePotential(inputs["model_python"], path)
    from mlffbench.models.base import load_potential

    return load_potential(path)
