"""``mlffbench env list|build NAME|remove NAME`` (registered by mlffbench.cli)."""

from __future__ import annotations

import json
import sys


def _cmd_env(args) -> int:
    from mlffbench import envs

    if args.action == "list":
        print(f"cache: {envs.cache_dir()}")
        print(f"{'env':<8} {'status':<10} {'dir':<22} {'build s':>8}  packages")
        for name, spec in sorted(envs.SPECS.items()):
            built = envs.is_built(spec)
            build_s = ""
            if built:
                build_s = str(json.loads((envs.env_path(spec) / ".mlffbench-env.json").read_text()).get("build_s"))
            stale = [p.name for p, _ in envs.built_versions(name) if p != envs.env_path(spec)]
            status = "built" if built else "not built"
            print(f"{name:<8} {status:<10} {spec.dirname():<22} {build_s:>8}  {' '.join(spec.packages)}"
                  + (f"  (older builds: {', '.join(stale)})" if stale else ""))
        return 0
    names = sorted(envs.SPECS) if args.name == "all" else [args.name]
    failed = []
    for name in names:
        spec = envs.get_spec(name)
        if args.action == "build":
            try:
                path = envs.ensure(spec)
            except envs.EnvBuildError as exc:
                if len(names) == 1:
                    raise
                failed.append(name)  # one broken family must not keep the others from building
                print(f"{name}: FAILED: {exc}", file=sys.stderr)
                continue
            print(f"{name}: {envs.launcher(spec)} ({path})")
        else:
            removed = envs.remove(name)
            print(f"{name}: removed {len(removed)} build(s)" + "".join(f"\n  {p}" for p in removed))
    if failed:
        print(f"mlffbench env build all: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_env_parser(sub) -> None:
    p = sub.add_parser("env", help="model family environments (list, build, remove)",
                       description="Per-family Python environments, built on first use under $MLFFBENCH_ENV_CACHE "
                                   "(default ~/.cache/mlffbench/envs).")
    p.add_argument("action", choices=["list", "build", "remove"])
    p.add_argument("name", nargs="?", default=None, help="environment name, or 'all' (build/remove)")
    p.set_defaults(func=_checked)


def _checked(args) -> int:
    from mlffbench.errors import ConfigError

    if args.action != "list" and not args.name:
        raise ConfigError(f"mlffbench env {args.action}: give an environment name (see 'mlffbench env list')")
    return _cmd_env(args)
