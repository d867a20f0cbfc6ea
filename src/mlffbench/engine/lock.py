"""One coordinator per run directory: ``RUN/run.lock``, held with flock(2) while ``mlffbench run`` works there.

The kernel drops an flock when its holder dies, kill -9 included, so a re-run never needs a manual step on the
same host. The file also names the holder (JSON: pid, host, since) so that a refusal can say who holds it; it is
emptied on a clean exit, so a non-empty file whose flock is free was left by a coordinator that died. A holder
named on another host cannot be checked from here (the file system may not share flocks between hosts): that is
refused, with how to remove the file once the user knows the other run is gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mlffbench.errors import MlffbenchError

FILE = "run.lock"


class RunLockedError(MlffbenchError):
    """Another coordinator holds the run directory."""


@dataclass
class Holder:
    pid: int
    host: str
    since: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.since))}"

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()


def _read(fd: int) -> Holder | None:
    """The holder written in the lock file, or None (empty: released cleanly, or never held)."""
    data = os.pread(fd, 4096, 0)
    if not data.strip():
        return None
    try:
        item = json.loads(data)
        return Holder(int(item["pid"]), str(item["host"]), float(item["since"]))
    except (ValueError, KeyError, TypeError):  # a coordinator killed mid-write: treat as an unknown local holder
        return Holder(0, socket.gethostname(), os.fstat(fd).st_mtime)


def _flock(fd: int, flags: int) -> bool | None:
    """True: locked; False: someone else holds it; None: this file system has no flock (then pids decide)."""
    try:
        fcntl.flock(fd, flags | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # unknown (a holder killed mid-write); os.kill(0, ...) would test our own process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(run_dir):`` - hold the run directory, or raise RunLockedError (one line) naming the holder."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.path = self.dir / FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self._acquire()
        except OSError as exc:  # e.g. a full disk or a read-only directory: one line, like every other fault
            raise MlffbenchError(f"{self.path}: cannot take the run directory's lock: {exc.strerror or exc}; free "
                                 "space or fix the permissions and re-run") from None

    def _acquire(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            # a few tries: `mlffbench status` probes the lock for a moment (shared), which must not refuse a run
            for _ in range(20):
                locked = _flock(fd, fcntl.LOCK_EX)
                if locked is not False:
                    break
                time.sleep(0.05)
            previous = _read(fd)
            if locked is False:
                raise RunLockedError(self._busy(previous))
            if previous is not None and not previous.here:
                raise RunLockedError(f"{self.dir}: run directory held by {previous.describe()}, another host this "
                                     f"one cannot check; if that run is no longer running, delete {self.path} "
                                     "and re-run")
            if previous is not None and locked is None and _pid_alive(previous.pid) and previous.pid != os.getpid():
                raise RunLockedError(self._busy(previous))
            if previous is not None:
                print(f"mlffbench: taking over {self.dir} from {previous.describe()}, which is no longer running",
                      file=sys.stderr, flush=True)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.time()}).encode(), 0)
        except BaseException:
            os.close(fd)  # drops the flock if taken
            raise
        self._fd = fd

    def _busy(self, holder: Holder | None) -> str:
        who = holder.describe() if holder else "a process that is starting"
        hint = "wait for it to finish or stop it" if holder is None or holder.here else (
            f"if it is no longer running, delete {self.path}")
        return f"{self.dir}: another mlffbench run is using this run directory ({who}); {hint}"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # empty = released cleanly; kept (not unlinked) so no two inodes compete
        except OSError:
            pass  # e.g. a full disk: the stale content is detected and taken over next time
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def coordinator(run_dir: str | Path) -> tuple[bool | None, Holder | None]:
    """Is a coordinator working in ``run_dir`` now? (True, holder) / (False, None) / (None, holder) when the
    holder is on another host and cannot be checked. Reads only; never creates the lock file."""
    path = Path(run_dir) / FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    try:
        holder = _read(fd)
        locked = _flock(fd, fcntl.LOCK_SH)
        if locked is False:
            return True, holder
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
        if holder is None:
            return False, None
        if not holder.here:
            return None, holder
        if locked is None:  # no flock on this file system: the pid decides
            return (True, holder) if _pid_alive(holder.pid) else (False, None)
        return False, None
    finally:
        os.close(fd)


__all__ = ["RunLock", "RunLockedError", "Holder", "coordinator", "FILE"]
