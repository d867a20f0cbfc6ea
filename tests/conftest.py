"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def flare_python() -> str:
    """The `flare` env's python (built on first use); skips with the build error when it cannot be built."""
    from mlffbench.envs import EnvBuildError
    from mlffbench.models.flare_env import require_flare_python

    try:
        return str(require_flare_python())
    except EnvBuildError as exc:
        pytest.skip(f"FLARE environment unavailable: {exc}")
