"""Per-family Python environments: declared in ``families``, built on first use (``build``), reused by key.

``python_for(family)`` is what the runner calls: the interpreter a family's jobs run with (building its
environment first if needed), or None for families that run in the main environment.
"""

from __future__ import annotations

from mlffbench.envs.build import (EnvBuildError, built_versions, cache_dir, ensure, env_path, is_built, launcher,
                                  log_path, remove)
from mlffbench.envs.families import SPECS, get_spec
from mlffbench.envs.spec import EnvSpec


def env_name_for(family: str) -> str | None:
    """The environment a model family declares (``Model.env``), or None when it runs in the main venv."""
    from mlffbench.models.registry import get_model_class

    return getattr(get_model_class(family), "env", None)


def python_for(family: str, quiet: bool = False) -> str | None:
    """Interpreter for ``family``'s jobs (its env built if needed), or None for main-venv families.

    Raises EnvBuildError (one line, naming the log) when the environment cannot be built."""
    name = env_name_for(family)
    return None if name is None else python_of_env(name, quiet)


def python_of_env(name: str, quiet: bool = False) -> str:
    """Interpreter of the environment called ``name`` (built first if needed), with this checkout's mlffbench."""
    spec = get_spec(name)
    ensure(spec, quiet=quiet)
    return str(launcher(spec))


__all__ = ["EnvBuildError", "EnvSpec", "SPECS", "built_versions", "cache_dir", "ensure", "env_name_for",
           "env_path", "get_spec", "is_built", "launcher", "log_path", "python_for", "python_of_env", "remove"]
