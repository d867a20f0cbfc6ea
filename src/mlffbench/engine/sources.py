"""The user's files are the truth on every run: a re-run compares each files data set with the one the last finished
run of this directory used.

Planning reads, validates and hashes (sha256) every source file on every run (``datasets.files.plan``; parsing costs
far more than hashing, and a size+mtime shortcut would let a same-size edit within the clock's resolution pass), so a
changed file gives a new data-job key: a new data set, whose jobs run afresh. This module says so, file by file, and
refuses the one case that would otherwise be silent: a source file the data set still asks for (its glob still
covers the path) that is gone, which would quietly benchmark fewer frames. The report and status show only the
latest version of each data set (``current``), so results of superseded frames are never shown as this run's.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from mlffbench.config import FilesConfig
from mlffbench.errors import DataError

#: provenance key: {data set name: key of its data job} of the latest plan of the run directory
DATA_KEYS = "data_keys"


def latest_inputs(store) -> dict[str, dict]:
    """{data job name: inputs} of the most recently finished data job of each name (unverified read: inputs only)."""
    return store.latest_done_inputs("data")


def _earlier(name: str, inputs: dict, earlier: dict[str, dict]) -> tuple[str, dict] | None:
    """The earlier files data set this one continues: the one of the same name, else the latest one that shares a
    source file with it (``run --data`` names the data set after its files, so a file set that lost a file, e.g.
    a shell glob after a deletion, arrives under another name)."""
    if f"data:{name}" in earlier:
        return name, earlier[f"data:{name}"]
    paths = {f["path"] for f in inputs.get("files", [])}
    for job_name, before in reversed(list(earlier.items())):
        if before.get("source") == "files" and paths & {f["path"] for f in before.get("files", [])}:
            return job_name.split(":", 1)[1], before
    return None


def _wanted(path: str, entry: FilesConfig | None) -> bool:
    """Whether the entry's patterns still cover ``path`` (a glob that would match it, or the path itself)."""
    from mlffbench.datasets.files import resolve

    if entry is None:
        return False
    for pattern in (*entry.files, *entry.test_files):
        full = os.path.realpath(str(resolve(pattern)))  # as the recorded paths: symlinks resolved (files.portable)
        if full == path or fnmatch.fnmatchcase(path, full):
            return True
    return False


def changes(name: str, before: dict, now: dict, entry: FilesConfig | None, run_dir: Path) -> list[str]:
    """Notes on how data set ``name``'s source files differ from the earlier run's (``before``/``now``: data-job
    inputs); a source the entry still asks for that no longer exists is a DataError."""
    from mlffbench.datasets.files import resolve

    old = {f["path"]: f for f in before.get("files", [])}
    new = {f["path"]: f for f in now.get("files", [])}
    notes = []
    for path, f in old.items():
        if path in new:
            continue
        if not resolve(path).exists():
            if _wanted(path, entry):
                raise DataError(f"{path}: source file of data set '{name}' is gone (deleted or moved) since the "
                                f"earlier run in {run_dir}; restore it, or benchmark the data set without it in a "
                                "new run directory (--run-dir)")
            notes.append(f"{path}: source file of the earlier run in this directory is gone and no longer listed; "
                         f"data set '{name}' is planned without its {f['frames']} frames")
        else:
            notes.append(f"{path}: no longer listed in data set '{name}' ({f['frames']} frames fewer)")
    for path, f in new.items():
        if path not in old:
            notes.append(f"{path}: added to data set '{name}' since the earlier run in this directory "
                         f"({f['frames']} frames)")
        elif old[path]["sha256"] != f["sha256"]:
            frames = (f"{old[path]['frames']} -> {f['frames']} frames" if old[path]["frames"] != f["frames"]
                      else f"{f['frames']} frames, content differs")
            notes.append(f"{path}: source file changed since the earlier run in this directory ({frames})")
    # said on each file's line, so the line a user reads about their file also says what follows from it
    return [f"{note}; data:{name} is a new data set (new fingerprint), its jobs run afresh and the report shows only "
            "this version" for note in notes]


def check(config, planned_data: list[tuple[str, dict]], store, run_dir: Path) -> tuple[list[str], dict[str, str]]:
    """(notes, {earlier data-set name: the planned data set that replaces it}) for every files data set
    (``planned_data``: [(data set name, data-job inputs)]) that differs from the earlier run's; raises DataError for
    a source that is gone (before anything is written)."""
    entries = {e.name: e for _, e in config.entries() if isinstance(e, FilesConfig)}
    earlier = latest_inputs(store)
    planned_names = {name for name, _ in planned_data}
    notes: list[str] = []
    replaced: dict[str, str] = {}
    for name, inputs in planned_data:
        if "files" not in inputs:
            continue
        found = _earlier(name, inputs, earlier)
        if found is None or found[1] == inputs:
            continue
        old_name, before = found
        if old_name != name:
            if old_name in planned_names:  # both are planned now: two data sets sharing a file, not a rename
                continue
            replaced[old_name] = name
            notes.append(f"data set '{name}' shares source files with '{old_name}' of the earlier run in this "
                         f"directory and replaces it (the report shows only '{name}')")
        notes += changes(name, before, inputs, entries.get(name), run_dir)
    return notes, replaced


def data_keys(previous: dict, planned: dict[str, str], replaced: dict[str, str]) -> dict[str, str]:
    """The run directory's {data set name: current data key}: the previous runs' (data sets of another config in
    the same directory stay current), replaced names pointed at their successor's key, then this plan's."""
    return {**(previous or {}), **{old: planned[new] for old, new in replaced.items() if new in planned}, **planned}


def current(jobs: list, provenance: dict) -> tuple[list, list]:
    """(jobs of the latest version of each data set, superseded jobs): a job of a data set whose latest plan has
    another data key (its source files changed) is superseded. Data sets the latest plan does not have, and runs
    recorded before data keys were, keep every job."""
    keys = provenance.get(DATA_KEYS) or {}
    kept, superseded = [], []
    for job in jobs:
        if job.kind == "data":
            name, data_key = job.name.split(":", 1)[1], job.key
        else:
            ref = job.inputs.get("dataset") if isinstance(job.inputs.get("dataset"), dict) else {}
            name, data_key = ref.get("name"), ref.get("data_key")
        stale = name in keys and data_key is not None and keys[name] != data_key
        (superseded if stale else kept).append(job)
    return kept, superseded


__all__ = ["DATA_KEYS", "changes", "check", "current", "data_keys"]
