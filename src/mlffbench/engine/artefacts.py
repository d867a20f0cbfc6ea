"""Artefact records: the files a job wrote, so no later job or re-run uses a changed one.

A job that writes files (a data job: frames and manifest; a fit job: the saved potential) returns their records in
its result, ``result["artefacts"] = {path relative to the run directory: {"sha256", "bytes"[, "frames"]}}``, and
the store keeps them with the result. Three places check them:

* a re-run, before it skips a finished job (``stale``): a changed, cut or missing file sends that job and every
  job that used it back to pending, and the changed file is removed so the job writes it afresh;
* the coordinator hands a job the records of the jobs it uses (``inputs["verify"]``, not part of the job key) and
  the job checks them before it starts (``check_inputs``): a file changed during the run fails that job;
* the report checks a saved potential against its fit job's record before it predicts with it.

Runs made before records existed: a data job is checked against its manifest (sha256 of each data file).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlffbench.datasets.base import MANIFEST, read_manifest, sha256
from mlffbench.errors import DataError

#: input key under which the coordinator passes the records of the jobs a job uses
VERIFY = "verify"


def record(run_dir: str | os.PathLike, relpaths: list[str], frames: dict[str, int] | None = None) -> dict:
    """{relpath: {"sha256", "bytes"[, "frames"]}} of files under ``run_dir``."""
    out = {}
    for rel in relpaths:
        path = Path(run_dir) / rel
        out[rel] = {"sha256": sha256(path), "bytes": path.stat().st_size}
        if frames and rel in frames:
            out[rel]["frames"] = frames[rel]
    return out


def data_record(run_dir: str | os.PathLike, folder: str) -> dict:
    """Records of a data set's files (``folder`` relative to the run directory): its frames, reference structures
    and the manifest itself."""
    manifest = read_manifest(Path(run_dir) / folder)
    frames = {f"{folder}/{e['file']}": e["frames"] for e in manifest["files"]}
    rels = list(frames)
    if "structures" in manifest:
        rels.append(f"{folder}/{manifest['structures']['file']}")
    return record(run_dir, rels + [f"{folder}/{MANIFEST}"], frames)


def recorded(job, run_dir: str | os.PathLike) -> dict:
    """The records of a finished job: its own, or (a data job of an older run) from its manifest; {} if none."""
    result = job.result or {}
    if "artefacts" in result:
        return result["artefacts"]
    if job.kind != "data" or "name" not in job.inputs:  # (a data job of an older layout has no manifest)
        return {}
    folder = f"datasets/{job.inputs['name']}"
    try:
        manifest = read_manifest(Path(run_dir) / folder)
    except DataError:
        return {f"{folder}/{MANIFEST}": {}}  # missing or unreadable: reported as such
    return {f"{folder}/{e['file']}": {"sha256": e["sha256"]} for e in manifest["files"]}


def problem(run_dir: str | os.PathLike, rel: str, rec: dict) -> str | None:
    """What changed in one recorded file (missing / size / content), or None; size first, it costs no read."""
    path = Path(run_dir) / rel
    if not path.is_file():
        return "missing"
    if not rec:  # recorded as missing or unreadable (an older run's manifest)
        return "unreadable"
    size = path.stat().st_size
    if "bytes" in rec and size != rec["bytes"]:
        return f"size {size} bytes, recorded {rec['bytes']}"
    if sha256(path) != rec["sha256"]:
        return "content changed (sha256 differs from the record)"
    return None


def problems(run_dir: str | os.PathLike, records: dict) -> dict[str, str]:
    """{relpath: what changed} of the records that no longer match their files."""
    out = {}
    for rel, rec in records.items():
        what = problem(run_dir, rel, rec)
        if what:
            out[rel] = what
    return out


def check_file(run_dir: str | os.PathLike, rel: str, rec: dict | None) -> None:
    """DataError naming the file when it differs from its record (no record: nothing to check)."""
    if rec is None:
        return
    what = problem(run_dir, rel, rec)
    if what:
        raise DataError(f"{Path(run_dir) / rel}: {what} since the job that wrote it; re-run to re-create it")


def check_inputs(inputs: dict, run_dir: str | os.PathLike) -> None:
    """A job's first step: the files of the jobs it uses are still as they wrote them."""
    for rel, rec in (inputs.get(VERIFY) or {}).items():
        check_file(run_dir, rel, rec)


def stale(store, planned, run_dir: str | os.PathLike) -> tuple[dict[str, dict[str, str]], dict[str, set[str]]]:
    """({job key: {relpath: what changed}} of finished planned jobs whose files changed, {that key: it and every
    planned job that uses it, transitively through ``depends`` and ``after``})."""
    changed = {}
    for job in planned:
        stored = store.get(job.key)
        if stored is not None and stored.status == "done":
            found = problems(run_dir, recorded(stored, run_dir))
            if found:
                changed[job.key] = found
    users: dict[str, list[str]] = {}
    for job in planned:
        for key in (*job.depends, *job.after):
            users.setdefault(key, []).append(job.key)
    redo = {}
    for start in changed:
        reached, queue = set(), [start]
        while queue:
            key = queue.pop()
            if key not in reached:
                reached.add(key)
                queue += users.get(key, [])
        redo[start] = reached
    return changed, redo


def remove(run_dir: str | os.PathLike, rels) -> None:
    """Delete changed files, so their job writes them afresh (a data job would otherwise resume from a cut
    trajectory or keep an edited one with the right frame count)."""
    for rel in rels:
        path = Path(run_dir) / rel
        if path.is_file():
            path.unlink()


def of_jobs(store, keys, run_dir: str | os.PathLike) -> dict:
    """The records of the finished jobs ``keys`` (what a job that uses them checks before it starts)."""
    out = {}
    for key in keys:
        job = store.get(key)
        if job is not None and job.status == "done":
            out.update({rel: rec for rel, rec in recorded(job, run_dir).items() if rec})
    return out
