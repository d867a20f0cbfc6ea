#!/usr/bin/env bash
# Build a virtual environment with FLARE (PyPI sdist mir-flare==1.4.0): the `flare` model family
# (src/mlffbench/models/adapters/flare.py) and the cross-checks of the project's own ACE-descriptor sparse GP
# (tests/test_flare_env.py, tests/test_flare_crosscheck.py, src/mlffbench/models/flare_driver.py).
#
# Usage: scripts/build_flare_env.sh [DEST]
#   DEST defaults to ${MLFFBENCH_CACHE:-$HOME/.cache/mlffbench}/envs/flare-1.4.0
#   On success prints DEST/bin/python on stdout (progress goes to stderr) and writes DEST/.built.
#   When DEST/.built exists it only prints the path (idempotent, < 1 s). An existing venv at DEST (with or
#   without pip) is reused and FLARE is installed into it.
# Normally run by mlffbench's env builder as the build step of the "flare" environment
# (src/mlffbench/envs/families.py; `mlffbench env build flare`), with DEST = the new env directory; the
# sha256 of this file is part of that environment's key, so editing it makes a new environment.
#
# Why it is done this way (see shared/notes/ENVIRONMENT.md, row mir-flare): `pip install mir-flare` fails
# offline -- its metadata pins numpy<1.23 and ase==3.22, and its CMakeLists clones googletest, nlohmann
# json and pybind11 from GitHub and downloads Eigen from GitHub. Here everything comes from Debian apt
# (`apt-get download` + `dpkg -x`, nothing is installed system-wide) and PyPI:
#   * libeigen3-dev (Eigen 3.4.0)   -> local tarball; the ExternalProject URL in CMakeLists is patched to it
#   * nlohmann-json3-dev (3.11.2)   -> tiny CMake project exporting nlohmann_json::nlohmann_json
#   * googletest (1.12.1 sources)   -> FETCHCONTENT_SOURCE_DIR_GOOGLETEST
#   * pybind11 sdist from PyPI      -> FETCHCONTENT_SOURCE_DIR_PYBIND11 (3.x: the 2.x sdists carry no
#                                      top-level CMakeLists.txt)
#   FETCHCONTENT_FULLY_DISCONNECTED=ON, passed through FLARE_CMAKE_FLAGS (read by FLARE's setup.py);
#   NO_LAPACK=1 (no LAPACKE on these machines); setuptools<76 + --no-build-isolation; the C++ unit tests
#   (ctests/) are not built. The wheel is installed with --no-deps into a venv holding numpy>=2,<2.4,
#   ase 3.29 and scipy, and the one numpy-2 incompatibility in flare/utils (np.float_) is patched.
# Every pip call goes through the repository's constraints.txt (PIP_CONSTRAINT) so nothing pulls CUDA torch.
set -eEuo pipefail

FLARE_VERSION=1.4.0
PYBIND11_VERSION=3.0.1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${MLFFBENCH_CACHE:-$HOME/.cache/mlffbench}/envs/flare-$FLARE_VERSION}"
stamp="$dest/.built"

if [ -f "$stamp" ] && [ -x "$dest/bin/python" ]; then
  echo "$dest/bin/python"
  exit 0
fi

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
stamp="$dest/.built"
work="$dest/build"
log="$work/build.log"
mkdir -p "$work"
: > "$log"

step="starting"
fail() {
  echo "build_flare_env: FAILED at step '$step' -- see $log" >&2
  exit 1
}
trap 'fail' ERR
say() { step="$*"; echo "build_flare_env: $*" >&2; echo "=== $* ($(date -u +%FT%TZ))" >> "$log"; }
run() { "$@" >> "$log" 2>&1; }
die() { echo "build_flare_env: $* -- see $log" >&2; echo "ERROR: $*" >> "$log"; exit 1; }

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || die "python3.11 not found (set PYTHON=/path/to/python3.11)"
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "$python is not Python 3.11"

export PIP_CONSTRAINT="$root/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INPUT=1
pip() { run "$dest/bin/python" -m pip "$@"; }

# --- 1. venv and runtime/build Python packages ---------------------------------------------------------
say "creating venv $dest"
[ -x "$dest/bin/python" ] || run "$python" -m venv "$dest"
# A venv made elsewhere (mlffbench's env builder creates it --without-pip and drives it with its own pip):
# give it its own pip, which the steps below use.
if ! "$dest/bin/python" -m pip --version >/dev/null 2>&1; then
  say "bootstrapping pip into the venv (ensurepip)"
  run "$dest/bin/python" -m ensurepip --upgrade --default-pip
fi
say "installing numpy, ase, scipy and build tools into the venv"
pip install -q --upgrade "pip>=24"
pip install -q "numpy>=2,<2.4" "ase==3.29.*" scipy "setuptools<76" wheel
if ! command -v cmake >/dev/null 2>&1; then
  pip install -q "cmake>=3.18,<3.31"
fi
export PATH="$dest/bin:$PATH"

# --- 2. C++ toolchain check ----------------------------------------------------------------------------
say "checking the C++ toolchain"
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "no C++ compiler (g++) found; install g++ (needs root)"
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ make
fi
if ! command -v make >/dev/null 2>&1 && ! command -v ninja >/dev/null 2>&1; then
  pip install -q ninja
fi

# --- 3. Debian sources of Eigen, nlohmann json and googletest (downloaded, not installed) ---------------
debs="$work/debs"
mkdir -p "$debs"
say "downloading libeigen3-dev nlohmann-json3-dev googletest with apt-get download"
apt_download() {
  (cd "$debs" && apt-get download libeigen3-dev nlohmann-json3-dev googletest) >> "$log" 2>&1
}
if ! ls "$debs"/libeigen3-dev_*.deb "$debs"/nlohmann-json3-dev_*.deb "$debs"/googletest_*.deb \
    >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available (Debian/Ubuntu needed for the C++ sources)"
  chmod 755 "$debs"   # lets apt's sandbox user write there (avoids a warning only)
  if ! apt_download; then
    [ "$(id -u)" = 0 ] || die "apt-get download failed and apt-get update needs root; run 'apt-get update' as root"
    say "apt-get download failed; running apt-get update"
    run apt-get update
    say "downloading libeigen3-dev nlohmann-json3-dev googletest (after apt-get update)"
    apt_download || die "apt-get download libeigen3-dev nlohmann-json3-dev googletest failed"
  fi
fi
say "unpacking the Debian packages"
rm -rf "$work/deb-root" && mkdir -p "$work/deb-root"
for deb in "$debs"/*.deb; do run dpkg -x "$deb" "$work/deb-root"; done
[ -f "$work/deb-root/usr/include/eigen3/Eigen/Dense" ] || die "Eigen headers missing in libeigen3-dev"
[ -f "$work/deb-root/usr/include/nlohmann/json.hpp" ] || die "json.hpp missing in nlohmann-json3-dev"
[ -f "$work/deb-root/usr/src/googletest/CMakeLists.txt" ] || die "googletest sources missing"

# Eigen as a local tarball for FLARE's ExternalProject_Add (single top-level dir; CMake strips it).
eigen_tar="$work/eigen3-debian.tar.gz"
run tar -czf "$eigen_tar" -C "$work/deb-root/usr/include" eigen3
eigen_sha="$(sha256sum "$eigen_tar" | cut -d' ' -f1)"

# nlohmann json: FLARE 1.4.0 does FetchContent_Populate(json) + add_subdirectory(${json_SOURCE_DIR}) and
# links nlohmann_json::nlohmann_json, so give it a minimal CMake project around the Debian header.
json_src="$work/json-src"
rm -rf "$json_src" && mkdir -p "$json_src/include"
cp -r "$work/deb-root/usr/include/nlohmann" "$json_src/include/"
cat > "$json_src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.5)
project(nlohmann_json LANGUAGES CXX)
add_library(nlohmann_json INTERFACE)
add_library(nlohmann_json::nlohmann_json ALIAS nlohmann_json)
target_include_directories(nlohmann_json INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
EOF

# --- 4. pybind11 and FLARE sdists from PyPI --------------------------------------------------------------
sdists="$work/sdists"
mkdir -p "$sdists"
say "downloading sdists pybind11==$PYBIND11_VERSION mir-flare==$FLARE_VERSION from PyPI"
ls "$sdists"/pybind11-"$PYBIND11_VERSION".tar.gz >/dev/null 2>&1 \
  || pip download -q --no-deps --no-binary :all: "pybind11==$PYBIND11_VERSION" -d "$sdists"
ls "$sdists"/mir_flare-"$FLARE_VERSION".tar.gz >/dev/null 2>&1 \
  || pip download -q --no-deps --no-binary :all: "mir-flare==$FLARE_VERSION" -d "$sdists"
say "unpacking sdists"
rm -rf "$work/src" && mkdir -p "$work/src"
run tar -xzf "$sdists/pybind11-$PYBIND11_VERSION.tar.gz" -C "$work/src"
run tar -xzf "$sdists/mir_flare-$FLARE_VERSION.tar.gz" -C "$work/src"
pybind_src="$work/src/pybind11-$PYBIND11_VERSION"
flare_src="$work/src/mir_flare-$FLARE_VERSION"
[ -f "$pybind_src/CMakeLists.txt" ] || die "pybind11 sdist has no CMakeLists.txt"

# --- 5. patch FLARE's CMakeLists: local Eigen tarball, no C++ unit tests ---------------------------------
say "patching FLARE CMakeLists.txt"
cm="$flare_src/CMakeLists.txt"
grep -q 'eigen-git-mirror/archive/3.3.7.tar.gz' "$cm" || die "unexpected FLARE CMakeLists.txt (Eigen URL not found)"
sed -i \
  -e "s|URL \"https://github.com/eigenteam/eigen-git-mirror/archive/3.3.7.tar.gz\"|URL \"file://$eigen_tar\"|" \
  -e "s|URL_HASH MD5=77a2c934eaf35943c43ee600a83b72df|URL_HASH SHA256=$eigen_sha|" \
  -e 's|^add_subdirectory(ctests)|# add_subdirectory(ctests)  # C++ unit tests not built (build_flare_env.sh)|' \
  "$cm"
grep -q "file://$eigen_tar" "$cm" || die "patching the Eigen URL failed"

# --- 6. build the wheel offline ---------------------------------------------------------------------------
say "building the mir-flare $FLARE_VERSION wheel (a few minutes)"
export NO_LAPACK=1
export FLARE_CMAKE_FLAGS="-DFETCHCONTENT_FULLY_DISCONNECTED=ON \
-DFETCHCONTENT_SOURCE_DIR_GOOGLETEST=$work/deb-root/usr/src/googletest \
-DFETCHCONTENT_SOURCE_DIR_JSON=$json_src \
-DFETCHCONTENT_SOURCE_DIR_PYBIND11=$pybind_src \
-DPython_EXECUTABLE=$dest/bin/python -DPYTHON_EXECUTABLE=$dest/bin/python \
-DCMAKE_BUILD_TYPE=Release"
echo "FLARE_CMAKE_FLAGS=$FLARE_CMAKE_FLAGS" >> "$log"
rm -rf "$work/wheels" && mkdir -p "$work/wheels"
pip wheel -v --no-deps --no-build-isolation "$flare_src" -w "$work/wheels"
wheel="$(ls "$work/wheels"/mir_flare-"$FLARE_VERSION"-*.whl 2>/dev/null | head -1)"
[ -n "$wheel" ] || die "no mir-flare wheel was produced"

say "installing the wheel (--no-deps)"
pip install -q --no-deps --force-reinstall "$wheel"

# --- 7. numpy-2 fix in flare/utils (np.float_ was removed in numpy 2.0) -------------------------------------
say "patching np.float_ in flare/utils"
utils="$("$dest/bin/python" -c 'import os, importlib.util as u; print(os.path.join(os.path.dirname(u.find_spec("flare").origin), "utils", "__init__.py"))')"
[ -f "$utils" ] || die "flare/utils/__init__.py not found"
sed -i 's/np\.float_\b/np.float64/g' "$utils"

# --- 8. smoke test ----------------------------------------------------------------------------------------
say "smoke test (import flare, B2 descriptor on a Cu cell)"
run "$dest/bin/python" - <<'EOF'
import numpy as np
from ase.build import bulk
from flare.bffs.sgp._C_flare import B2, Structure, NormalizedDotProduct, SparseGP
import flare.utils  # noqa: F401  (the np.float_ patch)
from flare.bffs.sgp import SGP_Wrapper  # noqa: F401
a = bulk("Cu", "fcc", a=3.6, cubic=True)
d = B2("chebyshev", "quadratic", [0.0, 4.0], [], [1, 3, 2])
s = Structure(np.array(a.cell), [0] * len(a), a.positions, 4.0, [d])
x = s.descriptors[0].descriptors[0]
assert x.shape == (4, 3 * 4 // 2 * 3), x.shape
assert np.all(np.isfinite(x))
print("flare ok", np.__version__)
EOF

rm -rf "$work/src" "$work/deb-root"   # keep the downloads, the wheel and the log
{
  echo "mir-flare==$FLARE_VERSION pybind11==$PYBIND11_VERSION"
  "$dest/bin/python" -m pip freeze 2>/dev/null
  date -u +%FT%TZ
} > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
trap - ERR
echo "build_flare_env: done ($dest)" >&2
echo "$dest/bin/python"
