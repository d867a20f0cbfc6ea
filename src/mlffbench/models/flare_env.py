"""Where FLARE 1.4.0 runs: the ``flare`` environment of mlffbench.envs (spec in envs/families.py, built by
scripts/build_flare_env.sh as its build step), for the ``flare`` model family and the cross-checks.

$MLFFBENCH_FLARE_PYTHON, when set, overrides it (any python with flare importable, e.g. a venv built by running
scripts/build_flare_env.sh by hand).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Standalone script run by the FLARE environment's python (it imports flare, numpy and ase only).
DRIVER = Path(__file__).with_name("flare_driver.py")

ENV_NAME = "flare"


def _override() -> Path | None:
    env = os.environ.get("MLFFBENCH_FLARE_PYTHON")
    return Path(env) if env else None


def flare_python() -> Path | None:
    """The FLARE python when it is there already (never builds): $MLFFBENCH_FLARE_PYTHON if that file exists,
    else the launcher of the built ``flare`` env (its python with this checkout's mlffbench importable)."""
    from mlffbench import envs

    override = _override()
    if override is not None:
        return override if override.is_file() else None
    spec = envs.get_spec(ENV_NAME)
    return envs.launcher(spec) if envs.is_built(spec) else None


def require_flare_python(quiet: bool = True) -> Path:
    """The FLARE python, building the ``flare`` env first when needed (~3 min, cached).

    Raises EnvBuildError (one line naming the build log) when it cannot be built, or when
    $MLFFBENCH_FLARE_PYTHON names a file that does not exist."""
    from mlffbench import envs

    override = _override()
    if override is not None:
        if not override.is_file():
            raise envs.EnvBuildError(f"MLFFBENCH_FLARE_PYTHON={override} does not exist")
        return override
    spec = envs.get_spec(ENV_NAME)
    envs.ensure(spec, quiet=quiet)
    return envs.launcher(spec)
