"""A cut extended-XYZ file is refused, naming the frame where it ends.

ASE reads a file cut inside a frame's atom lines as an error without the frame ("Frame has 1 atoms, expected 4"),
and a file cut inside the last number of its last line (``truncate -s -10``, a copy that stopped) as a valid file:
``-0.70995993`` becomes ``-0.70`` and the frame is benchmarked with a wrong label. So before ASE reads it, the file's
frame structure is walked here (atom count, comment, that many atom lines per frame): a frame with fewer atom lines
than its count, or a last line without its newline that is shorter than the line above it, is a one-line DataError
naming the file and the frame. ASE writes every line in fixed-width columns and ends the file with a newline; a
complete hand-written file without the final newline whose last number has fewer digits than the one above is
refused too, and the message says to end the file with a newline.
"""

from __future__ import annotations

from pathlib import Path

from mlffbench.errors import DataError


def check_extxyz(path: str | Path) -> None:
    """Raise DataError if the (extended) XYZ file ``path`` (plain or compressed) ends inside a frame."""
    from mlffbench.data.io import open_text

    with open_text(path) as fh:
        frame = 0
        line = fh.readline()
        while line:
            if not line.strip():  # blank lines after the last frame; anything else is for the reader to name
                return
            try:
                natoms = int(line.split()[0])
            except ValueError:
                return  # not an atom count: ASE's own error names the problem
            comment = fh.readline()
            if not comment:
                raise _cut(path, frame, f"ends after its atom count line ({natoms} atoms, no comment line)")
            previous = None
            for k in range(natoms):
                atom = fh.readline()
                if not atom:
                    raise _cut(path, frame, f"ends after {k} of its {natoms} atom lines")
                if not atom.endswith("\n") and previous is not None and _shorter(atom, previous):
                    raise _cut(path, frame, f"its last line (atom {k}) is shorter than the one above it and has no "
                                            "newline: cut mid-line", " (if it is complete, end it with a newline)")
                previous = atom
            frame += 1
            line = fh.readline()


def _shorter(last: str, above: str) -> bool:
    """Whether ``last`` has fewer fields than ``above``, or its last field fewer characters (a number cut short)."""
    a, b = last.split(), above.split()
    return len(a) < len(b) or (len(a) == len(b) and bool(a) and len(a[-1]) < len(b[-1]))


def _cut(path, frame: int, what: str, hint: str = "") -> DataError:
    return DataError(f"{path}: frame {frame}: {what}; the file looks truncated: restore the complete file{hint}")


__all__ = ["check_extxyz"]
