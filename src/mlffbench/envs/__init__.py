"""Per-family Python environments: declared in ``families``, built on first use (``build``), reused by key.

``python_for(family, device=...)`` is what the runner calls: the interpreter a family's jobs run with (building its
environment first if needed), or None for families that run in the main environment. A torch family has a CPU
environment (the default, what CI uses) and, when asked for, a CUDA one (``<name>-cuda``: torch 2.13.0 from
PyPI's default index; ``mlffbench env build NAME --cuda``); ``device`` picks between them (``env_for_device``).
"""

from __future__ import annotations

from pathlib import Path

from mlffbench.envs.build import (EnvBuildError, built_versions, cache_dir, ensure, env_path, install_plan, is_built,
                                  launcher, log_path, remove)
from mlffbench.envs.families import SPECS, get_spec
from mlffbench.envs.spec import CUDA_SUFFIX, EnvSpec


def env_name_for(family: str) -> str | None:
    """The environment a model family declares (``Model.env``), or None when it runs in the main venv."""
    from mlffbench.models.registry import get_model_class

    return getattr(get_model_class(family), "env", None)


def spec_for(name: str, cuda: bool = False) -> EnvSpec:
    """The spec of environment ``name`` (``mace``), its CUDA variant with ``cuda`` or a ``-cuda`` name
    (``mace-cuda``). ConfigError for an unknown name; ValueError for ``cuda`` on an env without torch."""
    if name.endswith(CUDA_SUFFIX) and name not in SPECS:
        name, cuda = name[:-len(CUDA_SUFFIX)], True
    spec = get_spec(name)
    return spec.cuda_variant() if cuda else spec


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU (driver's /proc entry; no CUDA library is loaded)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        return gpus.is_dir() and any(gpus.iterdir())
    except OSError:
        return False


def env_for_device(name: str, device: str | None) -> EnvSpec:
    """The variant of env ``name`` a job with ``training.device`` = ``device`` runs in: ``cuda`` -> the CUDA
    variant (built on first use like any env); ``auto`` -> the CUDA variant when it is already built and this
    machine has a GPU, else the CPU env; ``cpu`` / None (jobs without a training protocol) -> the CPU env. An env
    without torch has one variant: its own (its adapter decides what ``cuda`` means there)."""
    spec = get_spec(name)
    if not spec.torch or device in (None, "cpu"):
        return spec
    cuda = spec.cuda_variant()
    if device == "cuda":
        return cuda
    return cuda if is_built(cuda) and gpu_present() else spec


def python_for(family: str, quiet: bool = False, device: str | None = None) -> str | None:
    """Interpreter for ``family``'s jobs (its env built if needed), or None for main-venv families.

    ``device``: the job's ``training.device`` (auto | cpu | cuda; None = the CPU env), see ``env_for_device``.
    Raises EnvBuildError (one line, naming the log) when the environment cannot be built."""
    name = env_name_for(family)
    if name is None:
        return None
    spec = env_for_device(name, device)
    ensure(spec, quiet=quiet)
    return str(launcher(spec))


def python_of_env(name: str, quiet: bool = False) -> str:
    """Interpreter of the environment called ``name`` (``mace``, or ``mace-cuda`` for the CUDA variant; built
    first if needed), with this checkout's mlffbench."""
    spec = spec_for(name)
    ensure(spec, quiet=quiet)
    return str(launcher(spec))


__all__ = ["CUDA_SUFFIX", "EnvBuildError", "EnvSpec", "SPECS", "built_versions", "cache_dir", "ensure",
           "env_for_device", "env_name_for", "env_path", "get_spec", "gpu_present", "install_plan", "is_built",
           "launcher", "log_path", "python_for", "python_of_env", "remove", "spec_for"]
