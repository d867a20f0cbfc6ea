"""Data sets: config entries -> planned ``DataSet`` objects -> data jobs that write the frames -> ``load``.

Sources are interchangeable: ``generate`` (the TM23 protocol, ``datasets.generate``) and ``files`` (the user's
labelled files, ``datasets.files``). Everything downstream (splits, tasks, the report) sees only ``DataSet`` and
the frames ``load`` returns.
"""

from __future__ import annotations

from pathlib import Path

from mlffbench.config import DataConfig, FilesConfig, RunConfig
from mlffbench.datasets import files, generate
from mlffbench.datasets.base import (
    GROUP, SUBSET, DataSet, DataSummary, describe_split, load, read_manifest, ref, resolve_split,
)
from mlffbench.errors import ConfigError

SOURCES = {"generate": generate, "files": files}


def plan(config: RunConfig) -> list[DataSet]:
    """Every data set of the run, checked (files read and validated); raises before anything is written."""
    out: list[DataSet] = []
    for key, entry in config.entries():
        if isinstance(entry, DataConfig):
            out += generate.plan(entry, config.seed)
        elif isinstance(entry, FilesConfig):
            out.append(files.plan(entry, config.seed))
        else:  # pragma: no cover - the config's tagged union admits nothing else
            raise ConfigError(f"{key}: unknown data-set source")
    for ds in out:
        ds.base_split = resolve_split(ds, config.split)
    names = [d.name for d in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"datasets: data-set name(s) {twice} used twice (give generate entries a 'name' prefix "
                          "or files entries distinct names)")
    return out


def materialise(inputs: dict, run_dir: str | Path) -> dict:
    """The data job: write the frames of the data set described by ``inputs`` under the run directory."""
    folder = Path(run_dir) / "datasets" / inputs["name"]
    folder.mkdir(parents=True, exist_ok=True)
    result = SOURCES[inputs["source"]].materialise(inputs, folder)
    return {"dataset": inputs["name"], "source": inputs["source"], **result}


__all__ = ["GROUP", "SUBSET", "DataSet", "DataSummary", "describe_split", "load", "materialise", "plan", "read_manifest", "ref",
           "resolve_split"]
