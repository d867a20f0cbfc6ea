"""Where the separate FLARE 1.4.0 environment lives (built by scripts/build_flare_env.sh), for the cross-checks."""

from __future__ import annotations

import os
from pathlib import Path

#: Standalone script run by the FLARE environment's python (it imports flare, numpy and ase only).
DRIVER = Path(__file__).with_name("flare_driver.py")


def flare_python() -> Path | None:
    """$MLFFBENCH_FLARE_PYTHON, else the build script's default, when built; None when there is none."""
    env = os.environ.get("MLFFBENCH_FLARE_PYTHON")
    if env:
        return Path(env) if Path(env).is_file() else None
    cache = Path(os.environ.get("MLFFBENCH_CACHE") or Path.home() / ".cache" / "mlffbench")
    dest = cache / "envs" / "flare-1.4.0"
    python = dest / "bin" / "python"
    return python if (dest / ".built").is_file() and python.is_file() else None
