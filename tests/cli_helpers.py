"""Helpers the CLI tests share: run ``python -m mlffbench``, assert a one-line error, snapshot a run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cli(*args, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m mlffbench ARGS`` in a fresh process (stdout, stderr captured as text)."""
    return subprocess.run([sys.executable, "-m", "mlffbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def one_line(err: str, *needles: str, prefix: str = "mlffbench: error: ") -> str:
    """``err`` is exactly one line starting with ``prefix`` and holding every needle; returns it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """A CLI run that failed with exit 2 and a one-line error holding every needle; returns the line."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr)
    return one_line(result.stderr, *needles, prefix="mlffbench: error:")


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file under ``run_dir`` by relative path, with its bytes (to prove a refusal wrote nothing)."""
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
