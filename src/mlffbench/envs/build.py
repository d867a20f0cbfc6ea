"""Build, find, list and remove family environments under the cache directory.

Layout under ``cache_dir()`` (default ~/.cache/mlffbench/envs, or $MLFFBENCH_ENV_CACHE):
  <name>-<key12>/           a finished venv (has .mlffbench-env.json, written before it was renamed into place)
  .tmp-<name>-<key12>-<pid>/ a build in progress (renamed to the final name only after the smoke check passed)
  .locks/<name>-<key12>.lock one builder at a time per spec (fcntl lock; waiters reuse the finished env)
  logs/<name>-<key12>.log   the last build's log (kept after a failure; the error message names it)

mlffbench is not installed into a family env: ``python_for`` returns a launcher script that puts this
checkout's mlffbench package (and nothing else of the main venv) on PYTHONPATH and execs the env's python,
so a family env never goes stale when the code changes and several checkouts can share one cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import mlffbench
from mlffbench.envs.spec import PROJECT_ROOT, TORCH_VERSION, WORKER_REQUIREMENTS, EnvSpec
from mlffbench.errors import MlffbenchError

MANIFEST = ".mlffbench-env.json"


class EnvBuildError(MlffbenchError):
    """A family environment could not be built; the message names the step and the log file."""


def cache_dir() -> Path:
    return Path(os.environ.get("MLFFBENCH_ENV_CACHE") or Path.home() / ".cache" / "mlffbench" / "envs")


def env_path(spec: EnvSpec) -> Path:
    return cache_dir() / spec.dirname()


def log_path(spec: EnvSpec) -> Path:
    return cache_dir() / "logs" / f"{spec.dirname()}.log"


def is_built(spec: EnvSpec) -> bool:
    path = env_path(spec)
    return (path / MANIFEST).is_file() and (path / "bin" / "python").exists()


@contextmanager
def build_lock(spec: EnvSpec, wait_message: bool = True):
    """Exclusive lock per spec, held for a whole build (other processes block, then find the env built)."""
    lock_dir = cache_dir() / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{spec.dirname()}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait_message:
                print(f"mlffbench: waiting for another process building environment '{spec.name}'",
                      file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_python() -> str:
    """The interpreter family venvs are created from: the base of the running (venv) python."""
    return os.environ.get("MLFFBENCH_ENV_PYTHON") or getattr(sys, "_base_executable", None) or sys.executable


def ensure(spec: EnvSpec, quiet: bool = False) -> Path:
    """The env's directory, building it first when it is not there yet (locked, atomic)."""
    if is_built(spec):
        return env_path(spec)
    with build_lock(spec):
        if is_built(spec):  # another process finished it while we waited
            return env_path(spec)
        _build(spec, quiet)
    return env_path(spec)


def _build(spec: EnvSpec, quiet: bool) -> None:
    root = cache_dir()
    final = env_path(spec)
    for stale in root.glob(f".tmp-{spec.dirname()}-*"):  # left by a killed builder; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():  # a directory without a manifest is not an env
        shutil.rmtree(final)
    tmp = root / f".tmp-{spec.dirname()}-{os.getpid()}"
    log = log_path(spec)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    step = "starting"

    def say(what: str) -> None:
        nonlocal step
        step = what
        if not quiet:
            print(f"mlffbench env {spec.name}: {what}", file=sys.stderr)
        with open(log, "a") as out:
            out.write(f"=== {what} ({time.strftime('%Y-%m-%dT%H:%M:%S')})\n")

    def run(argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update({"PIP_CONSTRAINT": str(tmp / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                    "PIP_NO_INPUT": "1", "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '')}", **(extra_env or {})})
        with open(log, "a") as out:
            out.write("$ " + " ".join(argv) + "\n")
            out.flush()
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        if proc.returncode:
            raise EnvBuildError(f"exit status {proc.returncode}")

    log.write_text(f"mlffbench environment {spec.name} key {spec.key()}\n{json.dumps(spec_summary(spec))}\n")
    try:
        say(f"creating venv {tmp}")
        python = str(tmp / "bin" / "python")
        # this interpreter's pip drives the new venv (pip --python): no ensurepip copy per env (~15 s each)
        own_pip = importlib.util.find_spec("pip") is not None
        with open(log, "a") as out:
            subprocess.run([base_python(), "-m", "venv", str(tmp)] + (["--without-pip"] if own_pip else []),
                           stdout=out, stderr=subprocess.STDOUT, check=True)
        (tmp / "constraints.txt").write_text(spec.constraints_text())
        pip = ([sys.executable, "-m", "pip", "--python", python] if own_pip else [python, "-m", "pip"]) + [
            "install", "--quiet"]
        for what, args, extra in install_plan(spec):
            say(what)
            run(pip + args, extra)
        for argv in spec.steps:  # {pip} = the pip command that installs into this env; {project} = the checkout
            argv = [part for a in argv
                    for part in (pip[:-2] if a == "{pip}"
                                 else [a.format(python=python, env=str(tmp), project=str(PROJECT_ROOT))])]
            say("running " + " ".join(argv))
            run(argv, dict(spec.step_env))
        say("smoke check")
        run([python, "-c", _smoke_code(spec)], {"PYTHONPATH": str(_mlffbench_path_dir(tmp))})
        say("finishing")
        freeze = subprocess.run(pip[:-2] + ["freeze"], capture_output=True, text=True).stdout.split()
        _relocate_scripts(tmp, final)
        (tmp / MANIFEST).write_text(json.dumps({
            **spec_summary(spec), "key": spec.key(), "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "build_s": round(time.perf_counter() - start, 1), "freeze": freeze}, indent=1))
        os.rename(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (EnvBuildError, subprocess.CalledProcessError, OSError)):
            raise EnvBuildError(f"environment '{spec.name}' failed to build at step '{step}' "
                                f"({exc}); see {log}") from None
        raise
    say(f"done in {time.perf_counter() - start:.0f} s: {final}")


def install_plan(spec: EnvSpec) -> list[tuple[str, list[str], dict[str, str]]]:
    """The pip installs of a build, in order: (what, arguments after ``pip install --quiet``, extra environment).
    Every one runs with ``PIP_CONSTRAINT`` = ``spec.constraints_text()`` (CPU: ``torch==2.13.0+cpu``; CUDA
    variant: ``torch===2.13.0``, PyPI's default build) and no index option of its own."""
    plan = []
    if spec.torch:
        kind = "CUDA build from PyPI's default index" if spec.cuda else "CPU"
        plan.append((f"installing torch=={TORCH_VERSION} ({kind})", [f"torch=={TORCH_VERSION}"], {}))
    requirements = (list(WORKER_REQUIREMENTS) if spec.worker else []) + list(spec.packages)
    if requirements:
        plan.append(("installing " + " ".join(spec.packages or WORKER_REQUIREMENTS), requirements,
                     dict(spec.pip_env)))
    return plan


def _smoke_code(spec: EnvSpec) -> str:
    # the worker's own import chain first: a family env that cannot run mlffbench jobs is not built
    return ("import mlffbench.worker, mlffbench.engine.jobs\n" if spec.worker else "") + spec.smoke


def _relocate_scripts(tmp: Path, final: Path) -> None:
    """Console scripts (shebang) and activate scripts carry the venv's absolute path: point them at the final one."""
    old, new = str(tmp).encode(), str(final).encode()
    for script in (tmp / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        if script.stat().st_size > 1 << 20:  # binaries (none expected in a venv's bin) are left alone
            continue
        data = script.read_bytes()
        if old in data:  # console-script shebangs, activate scripts
            script.write_bytes(data.replace(old, new))
    cfg = tmp / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace(str(tmp), str(final)))


def spec_summary(spec: EnvSpec) -> dict:
    return {"name": spec.name, "packages": list(spec.packages), "torch": spec.torch, "cuda": spec.cuda,
            "constraints": list(spec.constraints), "steps": [list(s) for s in spec.steps]}


# -- launching -------------------------------------------------------------------------------------------
def _mlffbench_path_dir(base: Path) -> Path:
    """A directory holding only a symlink to this checkout's mlffbench package (what goes on PYTHONPATH)."""
    package = Path(mlffbench.__file__).resolve().parent
    tag = hashlib.sha256(str(package).encode()).hexdigest()[:12]
    where = base / "mlffbench-path" / tag
    link = where / "mlffbench"
    if not link.is_symlink() or link.resolve() != package:
        where.mkdir(parents=True, exist_ok=True)
        tmp = where / f".mlffbench.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(package)
        os.replace(tmp, link)
    return where


def launcher(spec: EnvSpec) -> Path:
    """An executable that runs the env's python with this checkout's mlffbench importable."""
    env = env_path(spec)
    path_dir = _mlffbench_path_dir(env)
    script = path_dir / "python"
    text = ("#!/bin/sh\n# written by mlffbench.envs: the family env's python with this checkout's mlffbench\n"
            f'export PYTHONPATH="{path_dir}${{PYTHONPATH:+:$PYTHONPATH}}"\n'
            f'exec "{env / "bin" / "python"}" "$@"\n')
    if not script.is_file() or script.read_text() != text:
        tmp = script.with_name(f".python.{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, script)
    return script


def remove(spec_name: str) -> list[Path]:
    """Delete every built version of the env called ``spec_name``; returns what was removed."""
    removed = []
    for path in sorted(cache_dir().glob(f"{spec_name}-*")):
        manifest = path / MANIFEST
        if path.is_dir() and manifest.is_file() and json.loads(manifest.read_text()).get("name") == spec_name:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def built_versions(spec_name: str) -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(cache_dir().glob(f"{spec_name}-*")):
        manifest = path / MANIFEST
        if manifest.is_file():
            data = json.loads(manifest.read_text())
            if data.get("name") == spec_name:
                out.append((path, data))
    return out
