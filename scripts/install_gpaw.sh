#!/usr/bin/env bash
# Install GPAW (real DFT, PAW/PBE) from Debian for the `gpaw` labeler: packages gpaw + gpaw-data (the PAW
# setups) and the MPI launcher. GPAW runs under Debian's /usr/bin/python3 (with Debian's ASE), not in the
# project venv; the labeler talks to it through a driver script run by mpirun. Idempotent: does nothing when
# /usr/bin/python3 already imports gpaw and mpirun exists. Needs root (or sudo) and the Debian mirror.
# Waits up to 15 min for another apt/dpkg run to release its lock.
# Usage: scripts/install_gpaw.sh
set -euo pipefail

have_gpaw() {
  /usr/bin/python3 -c "import gpaw, gpaw.setup_data" >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1
}

if have_gpaw; then
  echo "install_gpaw: gpaw $(/usr/bin/python3 -c 'import gpaw; print(gpaw.__version__)') already installed; nothing to do"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_gpaw: need root or sudo to apt-get install gpaw" >&2; exit 1; }
  sudo="sudo"
fi
command -v apt-get >/dev/null 2>&1 || { echo "install_gpaw: apt-get not found (Debian/Ubuntu only)" >&2; exit 1; }

echo "install_gpaw: apt-get update"
$sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
echo "install_gpaw: apt-get install gpaw gpaw-data openmpi-bin"
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
  gpaw gpaw-data openmpi-bin python3-ase >/dev/null

if ! have_gpaw; then
  echo "install_gpaw: installed packages but /usr/bin/python3 cannot import gpaw (or no mpirun)" >&2
  exit 1
fi
echo "install_gpaw: installed gpaw $(/usr/bin/python3 -c 'import gpaw; print(gpaw.__version__)')," \
  "ase $(/usr/bin/python3 -c 'import ase; print(ase.__version__)'), $(mpirun --version 2>/dev/null | head -1)"
