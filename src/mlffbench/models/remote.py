"""A saved potential evaluated in another Python environment, as an ASE calculator in this one.

Tasks that drive a potential for many small calls (observables: relaxations, phonopy, NEB, MD) need the
reference labeler (LAMMPS) and phonopy, which live in the main environment, while a MACE or NequIP potential
only loads in its family's environment. ``RemotePotential`` starts ``python -m mlffbench.models.remote
POTENTIAL`` once in that environment and exchanges one JSON line per structure over pipes (full float64
precision; a few hundred µs of overhead per call). Errors in the server come back as one-line exceptions here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from mlffbench.errors import MlffbenchError


class RemotePotential(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, python: str, potential_path: str, **kwargs):
        super().__init__(**kwargs)
        self.python, self.potential_path = str(python), str(potential_path)
        self._proc: subprocess.Popen | None = None

    def _server(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            # stderr inherited: the server's own warnings and tracebacks land in the job's log
            self._proc = subprocess.Popen([self.python, "-m", "mlffbench.models.remote", self.potential_path],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        return self._proc

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        request = {"numbers": a.numbers.tolist(), "positions": a.positions.tolist(), "cell": a.cell.array.tolist(),
                   "pbc": a.pbc.tolist()}
        proc = self._server()
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise MlffbenchError(f"remote potential {self.potential_path} ({self.python}) exited with status "
                                 f"{proc.wait()}; see the log above")
        reply = json.loads(line)
        if "error" in reply:
            raise MlffbenchError(f"remote potential: {reply['error']}")
        energy = float(reply["energy"])
        self.results = {"energy": energy, "free_energy": energy, "forces": np.array(reply["forces"]),
                        "stress": np.array(reply["stress"])}

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._proc = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def serve(potential_path: str) -> int:
    """The server loop: one JSON request per stdin line, one JSON reply per stdout line."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything a model package prints must not corrupt the protocol
    from ase import Atoms

    from mlffbench.errors import one_line
    from mlffbench.models.base import load_potential

    potential = load_potential(potential_path)
    for line in sys.stdin:
        try:
            r = json.loads(line)
            atoms = Atoms(numbers=r["numbers"], positions=r["positions"], cell=r["cell"], pbc=r["pbc"])
            atoms.calc = potential
            reply = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist(),
                     "stress": atoms.get_stress().tolist()}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the server keeps serving
            reply = {"error": one_line(exc)}
        protocol.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m mlffbench.models.remote POTENTIAL_JSON", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
