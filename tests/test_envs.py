"""Family environments (mlffbench.envs): spec keys, build on first use, reuse, lock, atomic failure, launcher.

The environments built here are bare venvs (no packages, ``worker=False``): venv + ensurepip only, so every
test runs offline. The real family environments are exercised by tests/test_adapters.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import mlffbench
from mlffbench import envs
from mlffbench.cli import main as cli_main
from mlffbench.envs.build import MANIFEST, _build, build_lock

#: a build step writes a console script the way pip does (shebang = the build directory's python)
_SCRIPT = ("import os, sys; p = os.path.join(sys.argv[1], 'bin', 'hello'); "
           "open(p, 'w').write('#!' + sys.argv[1] + '/bin/python\\nimport sys; print(sys.prefix)\\n'); os.chmod(p, 0o755)")
BARE = envs.EnvSpec(name="bare", packages=(), torch=False, worker=False,
                    steps=(("{python}", "-c", _SCRIPT, "{env}"),), smoke="import sys\nassert sys.prefix != sys.base_prefix\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFFBENCH_ENV_CACHE", str(tmp_path / "envs"))
    return tmp_path / "envs"


def test_key_tracks_what_is_installed():
    assert BARE.key() == replace(BARE).key()
    assert replace(BARE, description="x", notes=("y",)).key() == BARE.key()  # documentation only
    changed = [replace(BARE, packages=("ase",)), replace(BARE, torch=True), replace(BARE, constraints=("a<2",)),
               replace(BARE, smoke="pass"), replace(BARE, steps=(("true",),)), replace(BARE, worker=True)]
    keys = {s.key() for s in changed} | {BARE.key()}
    assert len(keys) == len(changed) + 1
    assert BARE.dirname() == f"bare-{BARE.key()[:12]}"


def test_constraints_include_the_project_torch_pin():
    text = replace(BARE, constraints=("e3nn==0.4.4",)).constraints_text()
    assert "torch==2.13.0+cpu" in text and "e3nn==0.4.4" in text


def test_every_family_env_is_declared_and_keyed():
    assert {"mace", "nequip", "chgnet", "sevenn", "gap"} <= set(envs.SPECS)
    assert len({s.dirname() for s in envs.SPECS.values()}) == len(envs.SPECS)
    assert envs.env_name_for("mace") == "mace" and envs.env_name_for("allegro") == "nequip"
    assert envs.env_name_for("acegp") is None and envs.python_for("acegp") is None


def test_build_reuse_and_launcher(cache):
    start = time.perf_counter()
    path = envs.ensure(BARE, quiet=True)
    first_s = time.perf_counter() - start
    assert path == cache / BARE.dirname() and envs.is_built(BARE)
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["key"] == BARE.key() and manifest["name"] == "bare"
    assert not list(cache.glob(".tmp-*"))
    # console scripts were rewritten from the temporary build directory to the final one
    script = (path / "bin" / "hello").read_text()
    assert str(path) in script and ".tmp-" not in script
    out = subprocess.run([str(path / "bin" / "hello")], check=True, capture_output=True, text=True).stdout
    assert Path(out.strip()) == path
    # second use: no rebuild (same manifest, fast)
    mtime = (path / MANIFEST).stat().st_mtime_ns
    start = time.perf_counter()
    assert envs.ensure(BARE, quiet=True) == path
    assert time.perf_counter() - start < min(1.0, first_s)
    assert (path / MANIFEST).stat().st_mtime_ns == mtime
    # the launcher runs the env's python with this checkout's mlffbench importable
    launcher = envs.launcher(BARE)
    out = subprocess.run([str(launcher), "-c", "import mlffbench, sys; print(mlffbench.__file__); print(sys.prefix)"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert Path(out[0]).resolve() == Path(mlffbench.__file__).resolve()
    assert Path(out[1]) == path


def test_failed_build_is_one_line_names_log_and_leaves_nothing(cache):
    bad = replace(BARE, name="broken", packages=(str(cache / "no-such-dir" / "nothing-1.0-py3-none-any.whl"),))
    with pytest.raises(envs.EnvBuildError) as info:
        envs.ensure(bad, quiet=True)
    message = str(info.value)
    assert "\n" not in message and "broken" in message and "installing" in message
    log = envs.log_path(bad)
    assert str(log) in message and log.is_file() and "nothing-1.0" in log.read_text()
    assert not envs.env_path(bad).exists() and not list(cache.glob(".tmp-*"))
    assert not envs.is_built(bad)


def test_failed_smoke_check_leaves_no_env(cache):
    bad = replace(BARE, name="nosmoke", smoke="raise SystemExit('smoke says no')")
    with pytest.raises(envs.EnvBuildError, match="smoke check"):
        envs.ensure(bad, quiet=True)
    assert "smoke says no" in envs.log_path(bad).read_text()
    assert not envs.env_path(bad).exists() and not list(cache.glob(".tmp-*"))


def test_stale_partial_build_is_cleared(cache):
    stale = cache / f".tmp-{BARE.dirname()}-999999"
    (stale / "bin").mkdir(parents=True)
    half = cache / BARE.dirname()  # a directory without manifest is not an environment
    half.mkdir()
    envs.ensure(BARE, quiet=True)
    assert not stale.exists() and envs.is_built(BARE)


def test_concurrent_builder_waits_for_the_lock(cache):
    code = ("import sys, time; sys.path.insert(0, %r); from tests.test_envs import BARE; from mlffbench import envs; "
            "t = time.perf_counter(); envs.ensure(BARE, quiet=True); print(time.perf_counter() - t)"
            % str(Path(__file__).resolve().parents[1]))
    with build_lock(BARE, wait_message=False):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(1.5)
        assert proc.poll() is None, proc.communicate()  # blocked on our lock
        _build(BARE, quiet=True)  # we build while holding the lock, as a first builder would
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "waiting for another process" in err
    assert float(out.strip()) >= 1.0  # it waited for us, then reused our build
    assert len(list(cache.glob("bare-*"))) == 1


def test_remove_and_cli(cache, capsys):
    envs.ensure(BARE, quiet=True)
    assert [p for p, _ in envs.built_versions("bare")] == [envs.env_path(BARE)]
    assert envs.remove("bare") == [envs.env_path(BARE)]
    assert not envs.env_path(BARE).exists() and envs.remove("bare") == []
    assert cli_main(["env", "list"]) == 0
    out = capsys.readouterr().out
    assert str(cache) in out and "mace" in out and "not built" in out
    assert cli_main(["env", "build"]) == 2
    assert cli_main(["env", "build", "nope"]) == 2
    assert "unknown environment 'nope'" in capsys.readouterr().err


def test_build_all_goes_on_past_a_broken_family(cache, monkeypatch, capsys):
    broken = replace(BARE, name="abroken", packages=(str(cache / "no-such-dir" / "nothing-1.0-py3-none-any.whl"),))
    monkeypatch.setattr(envs, "SPECS", {"abroken": broken, "bare": BARE})
    monkeypatch.setattr("mlffbench.envs.families.SPECS", envs.SPECS)
    assert cli_main(["env", "build", "all"]) == 1
    err = capsys.readouterr().err
    assert "abroken: FAILED" in err and "1 failed: abroken" in err
    assert envs.is_built(BARE) and not envs.is_built(broken)  # built after the broken one (sorted order)


def test_cuda_variant_is_its_own_env_with_pypi_torch_and_no_cpu_pin(cache, monkeypatch, capsys):
    """--cuda: a separate env (name, key, directory) with the same packages, torch==2.13.0 under the constraint
    torch===2.13.0 (PyPI's default build: no +cpu wheel matches) and no index option; checked without pip."""
    cpu = envs.get_spec("mace")
    cuda = cpu.cuda_variant()
    assert cuda.name == "mace-cuda" and cuda.cuda and cuda.base_name == "mace" and cuda.cuda_variant() == cuda
    assert cuda.packages == cpu.packages and cuda.smoke == cpu.smoke and cuda.steps == cpu.steps
    assert cuda.key() != cpu.key() and cuda.dirname().startswith("mace-cuda-") and cuda.dirname() != cpu.dirname()
    assert "torch==2.13.0+cpu" in cpu.constraints_text()
    text = cuda.constraints_text()
    assert "+cpu" not in text and "torch===2.13.0" in text.splitlines() and "numpy<2.4" in text
    assert "e3nn" not in text or "e3nn" in cpu.constraints_text()
    plan_cpu, plan_cuda = envs.install_plan(cpu), envs.install_plan(cuda)
    assert [args for _, args, _ in plan_cuda] == [args for _, args, _ in plan_cpu]  # everything else the same
    assert plan_cuda[0][1] == ["torch==2.13.0"] and "CUDA" in plan_cuda[0][0] and "CPU" in plan_cpu[0][0]
    flat = [a for _, args, _ in plan_cuda for a in args]
    assert not [a for a in flat if "index" in a or "+cpu" in a or "download.pytorch.org" in a]
    # a non-torch env has no CUDA variant; names resolve both ways
    assert envs.spec_for("mace-cuda") == cuda == envs.spec_for("mace", cuda=True) and envs.spec_for("mace") == cpu
    with pytest.raises(ValueError, match="no torch"):
        envs.get_spec("gap").cuda_variant()
    assert cli_main(["env", "build", "gap", "--cuda"]) == 2
    assert "'gap' installs no torch" in capsys.readouterr().err


def test_device_picks_the_cpu_or_cuda_env(cache, monkeypatch):
    cpu = envs.get_spec("mace")
    cuda = cpu.cuda_variant()
    monkeypatch.setattr(envs, "gpu_present", lambda: True)
    assert envs.env_for_device("mace", "cuda") == cuda  # built on first use, like every env
    for device in (None, "cpu", "auto"):  # auto: no CUDA env built yet -> the CPU env
        assert envs.env_for_device("mace", device) == cpu
    assert envs.env_for_device("gap", "cuda") == envs.get_spec("gap")  # one variant: its adapter decides
    # a built CUDA env (faked: manifest + bin/python) is what auto takes on a GPU machine, and python_for runs it
    (envs.env_path(cuda) / "bin").mkdir(parents=True)
    (envs.env_path(cuda) / "bin" / "python").symlink_to(sys.executable)
    (envs.env_path(cuda) / MANIFEST).write_text(json.dumps({"name": "mace-cuda"}))
    assert envs.env_for_device("mace", "auto") == cuda and envs.env_for_device("mace", "cpu") == cpu
    launcher = envs.python_for("mace", quiet=True, device="auto")
    assert str(envs.env_path(cuda)) in Path(launcher).read_text()
    assert envs.python_for("acegp", device="cuda") is None
    monkeypatch.setattr(envs, "gpu_present", lambda: False)  # no GPU here: auto stays on the CPU env
    assert envs.env_for_device("mace", "auto") == cpu
    assert [p for p, _ in envs.built_versions("mace-cuda")] == [envs.env_path(cuda)]
    assert envs.built_versions("mace") == []  # the CPU env's listing never counts the CUDA variant
