"""``mlffbench env list|build NAME [--cuda]|remove NAME [--cuda]`` (registered by mlffbench.cli)."""

from __future__ import annotations

import json
import sys


def _cmd_env(args) -> int:
    from mlffbench import envs
    from mlffbench.errors import ConfigError

    cuda = bool(getattr(args, "cuda", False))
    if args.action == "list":
        print(f"cache: {envs.cache_dir()}")
        print(f"{'env':<13} {'status':<10} {'dir':<27} {'build s':>8}  packages")
        for name, base in sorted(envs.SPECS.items()):
            variants = [base] + ([base.cuda_variant()] if base.torch else [])
            for spec in variants:
                built = envs.is_built(spec)
                if spec.cuda and not built and not envs.built_versions(spec.name):
                    continue  # CUDA variants are listed once built (mlffbench env build NAME --cuda)
                build_s = ""
                if built:
                    build_s = str(json.loads((envs.env_path(spec) / ".mlffbench-env.json").read_text())
                                  .get("build_s"))
                stale = [p.name for p, _ in envs.built_versions(spec.name) if p != envs.env_path(spec)]
                status = "built" if built else "not built"
                print(f"{spec.name:<13} {status:<10} {spec.dirname():<27} {build_s:>8}  {' '.join(spec.packages)}"
                      + (f"  (older builds: {', '.join(stale)})" if stale else ""))
        torch_envs = ", ".join(n for n, s in sorted(envs.SPECS.items()) if s.torch)
        print(f"CUDA variants (torch==2.13.0 from PyPI instead of the CPU wheel): 'mlffbench env build NAME --cuda' "
              f"for {torch_envs}")
        return 0
    if args.name == "all":
        names = sorted(n for n, s in envs.SPECS.items() if s.torch or not cuda)
    else:
        names = [args.name]
    failed = []
    for name in names:
        try:
            spec = envs.spec_for(name, cuda=cuda)
        except ValueError as exc:  # --cuda on an env without torch
            raise ConfigError(f"mlffbench env {args.action} {name} --cuda: {exc}") from None
        if args.action == "build":
            try:
                path = envs.ensure(spec)
            except envs.EnvBuildError as exc:
                if len(names) == 1:
                    raise
                failed.append(spec.name)  # one broken family must not keep the others from building
                print(f"{spec.name}: FAILED: {exc}", file=sys.stderr)
                continue
            print(f"{spec.name}: {envs.launcher(spec)} ({path})")
        else:
            removed = envs.remove(spec.name)
            print(f"{spec.name}: removed {len(removed)} build(s)" + "".join(f"\n  {p}" for p in removed))
    if failed:
        print(f"mlffbench env build all: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_env_parser(sub) -> None:
    p = sub.add_parser("env", help="model family environments (list, build, remove)",
                       description="Per-family Python environments, built on first use under $MLFFBENCH_ENV_CACHE "
                                   "(default ~/.cache/mlffbench/envs). Torch families get the CPU build of torch "
                                   "unless --cuda is given.")
    p.add_argument("action", choices=["list", "build", "remove"])
    p.add_argument("name", nargs="?", default=None, help="environment name, or 'all' (build/remove)")
    p.add_argument("--cuda", action="store_true",
                   help="the family's CUDA environment (<name>-cuda: torch==2.13.0 from PyPI's default index, the "
                        "CUDA build on Linux x86_64, instead of the CPU wheel; its own directory). Runs use it "
                        "for training.device cuda, or auto when it is built and a GPU is present")
    p.set_defaults(func=_checked)


def _checked(args) -> int:
    from mlffbench.errors import ConfigError

    if args.action != "list" and not args.name:
        raise ConfigError(f"mlffbench env {args.action}: give an environment name (see 'mlffbench env list')")
    return _cmd_env(args)
