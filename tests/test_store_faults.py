"""Integrity faults of a run directory, made for real: a damaged or empty store, a full disk (tmpfs, SQLite's page
limit), a second coordinator, a coordinator killed with -9, a holder on another host, a closed stdout. Each is
one line on stderr and an exit code != 0, with nothing written, or a clean take-over / resume."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlffbench.cli import main
from mlffbench.engine.lock import FILE as LOCK_FILE
from mlffbench.engine.store import RunStore, StoreFullError
from test_runner import TINY, _final_state, run_main, write_config

from cli_helpers import cli, one_line, snapshot


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(config, run directory) of a finished TINY run; tests work on copies."""
    root = tmp_path_factory.mktemp("faults")
    config = write_config(root / "tiny.yaml", TINY)
    run_main(TINY, root / "run", config)
    return config, root / "run"


def copy_run(finished, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(finished[1], run_dir)
    return run_dir




# -- a damaged or empty store ------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def _overwrite_page(path: Path) -> None:  # header intact: only a check of every page finds it
    data = bytearray(path.read_bytes())
    data[20000:24000] = random.Random(1).randbytes(4000)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _overwrite_page], ids=["truncated", "garbage", "page"])
def test_damaged_store_is_one_line_error(finished, tmp_path, capsys, damage):
    run_dir = copy_run(finished, tmp_path)
    store = run_dir / RunStore.FILE
    damage(store)
    before = snapshot(run_dir)
    for args in (["status", run_dir], ["report", run_dir, "--no-parity"], ["compare", run_dir, "--out",
                 tmp_path / "c.html"], ["run", finished[0], "--run-dir", run_dir, "--no-progress"]):
        assert main(list(map(str, args))) == 2, args
        out, err = capsys.readouterr()
        assert out == "", (args, out)  # the run's header line comes only once the store is sound
        one_line(err, str(store), "damaged", "backup", "aside and re-run")
    assert snapshot(run_dir) == before and not (tmp_path / "c.html").exists()  # the lock file, held, emptied again


def test_zero_byte_store_refused_by_readers_and_a_new_store_for_run(finished, tmp_path, capsys):
    """Decision: zero bytes is not damage (a coordinator writes the header as it opens the store, so nothing was
    ever recorded): status/report say so in one line; `run` starts it afresh, recomputing every job."""
    run_dir = copy_run(finished, tmp_path)
    (run_dir / RunStore.FILE).write_bytes(b"")
    for args in (["status", run_dir], ["report", run_dir, "--no-parity"]):
        assert main(list(map(str, args))) == 2
        one_line(capsys.readouterr().err, str(run_dir / RunStore.FILE), "empty (0 bytes)")
    assert main(["run", str(finished[0]), "--run-dir", str(run_dir), "--no-progress"]) == 0
    assert "jobs: done 3" in capsys.readouterr().out
    assert _final_state(run_dir) == _final_state(finished[1])


# -- a full disk ------------------------------------------------------------------------------------------


def test_full_store_rolls_back_the_transaction(finished, tmp_path):
    """SQLite's page limit makes the commit fail with the real SQLITE_FULL: one-line StoreFullError, and the store
    keeps the state before the transaction."""
    run_dir = copy_run(finished, tmp_path)
    store = RunStore(run_dir)
    job = next(store.jobs(kind="fit_score"))
    store.start(job.key)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreFullError, match=r"run\.sqlite: disk full while writing the run store .* resume"):
        store.finish(job.key, {**job.result, "padding": "x" * 200_000}, 1.0)
    store.close()
    store = RunStore(run_dir)
    kept = store.get(job.key)
    assert (kept.status, kept.result) == ("running", job.result) and store.integrity_check() == "ok"
    store.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root / CAP_SYS_ADMIN, else skip)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("free_kb, needles", [
    (40, ["run.sqlite: disk full while writing the run store", "store is intact"]),  # the store's first writes
    (200, ["no space left on the device while data:Cu wrote its files", "Errno 28"]),  # the data job's files
])
def test_disk_full_stops_the_run_and_a_rerun_resumes(finished, small_disk, free_kb, needles):
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - free_kb * 1024))
    run_dir = small_disk / "run"
    full = cli("run", finished[0], "--run-dir", run_dir, "--no-progress")
    assert full.returncode == 2, full.stderr
    one_line(full.stderr, *needles, "free space and re-run the same command to resume")
    filler.unlink()
    if (run_dir / RunStore.FILE).stat().st_size:  # what the store holds is consistent: nothing done or failed
        status = cli("status", run_dir)
        assert status.returncode == 0 and "done: 0" in status.stdout and "failed: 0" in status.stdout, status
    again = cli("run", finished[0], "--run-dir", run_dir, "--no-progress")
    assert again.returncode == 0 and "jobs: done 3" in again.stdout, again.stderr
    assert _final_state(run_dir) == _final_state(finished[1])


# -- one coordinator per run directory ---------------------------------------------------------------------


def hold(run_dir: Path) -> subprocess.Popen:
    """Another process holding the run directory's lock as a coordinator does (mlffbench.engine.lock)."""
    code = ("import sys, time; from mlffbench.engine.lock import RunLock; lock = RunLock(sys.argv[1]); "
            "lock.acquire(); print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_coordinator_refused_then_dead_one_taken_over(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path)
    store = RunStore(run_dir)  # a job in flight, as a coordinator killed mid-job leaves it
    running = next(store.jobs(kind="fit_score"))
    store.start(running.key)
    store.close()
    holder = hold(run_dir)
    try:
        before = snapshot(run_dir)
        second = cli("run", finished[0], "--run-dir", run_dir, "--no-progress")
        assert second.returncode == 2 and second.stdout == ""
        one_line(second.stderr, "another mlffbench run is using this run directory",
                 f"pid {holder.pid} on {socket.gethostname()} since ")
        assert snapshot(run_dir) == before  # nothing written, the holder's lock file untouched

        status = cli("status", run_dir)  # live coordinator: 'running' is true
        assert status.stdout.splitlines()[0] == "done: 2, running: 1, failed: 0, pending: 0", status.stdout
        assert f"coordinator: pid {holder.pid}" in status.stdout and f"running     {running.name}" in status.stdout
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    status = cli("status", run_dir)  # killed: its job is interrupted, not running
    lines = status.stdout.splitlines()
    assert lines[0] == "done: 2, running: 0, interrupted: 1, failed: 0, pending: 0", status.stdout
    assert f"interrupted {running.name}" in status.stdout and "re-run the same command to resume" in lines[1]

    again = cli("run", finished[0], "--run-dir", run_dir, "--no-progress")
    assert again.returncode == 0 and "jobs: done 3" in again.stdout, again.stderr
    (took_over,) = again.stderr.strip().splitlines()
    assert took_over.startswith(f"mlffbench: taking over {run_dir} from pid {holder.pid} on {socket.gethostname()} "
                                "since ") and took_over.endswith(", which is no longer running"), took_over
    assert (run_dir / LOCK_FILE).read_bytes() == b""  # released at exit
    assert _final_state(run_dir) == _final_state(finished[1])


def test_holder_on_another_host_is_refused_with_how_to_remove_it(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path)
    lock = run_dir / LOCK_FILE
    lock.write_text(json.dumps({"pid": 4242, "host": "elsewhere.example", "since": time.time() - 3600}))
    before = snapshot(run_dir)
    result = cli("run", finished[0], "--run-dir", run_dir, "--no-progress")
    assert result.returncode == 2 and result.stdout == ""
    one_line(result.stderr, "pid 4242 on elsewhere.example since", f"delete {lock}")
    assert snapshot(run_dir) == before


# -- a closed stdout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "elements"])
def test_closed_stdout_is_quiet(finished, command):
    """`mlffbench status RUN | head -1`: the reader is gone before the output is written (closed here at once,
    so the write surely fails): no traceback, exit 141 (128 + SIGPIPE)."""
    args = [command, finished[1], "--all"] if command == "status" else [command]
    proc = subprocess.Popen([sys.executable, "-m", "mlffbench", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == "", err
