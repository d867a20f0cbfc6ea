"""Command line: thin wrappers that parse arguments, call the library and print."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlffbench.errors import MlffbenchError


def _cmd_run(args) -> int:
    from mlffbench.config import load_config
    from mlffbench.engine.runner import MainJob, protocol_notes, summary_counts
    from mlffbench.errors import ConfigError

    source = args.config or "quick"
    if args.data:
        if args.config:
            raise ConfigError(f"{args.config}: give a config or --data, not both")
        config, source = data_config(args), "--data"
    else:
        for flag in ("test", "models", "stress_unit", "stress_convention", "shear_order", "format", "group_key",
                     "transfer", "name", "path_groups", "energy", "allow_duplicates"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag.replace('_', '-')}: only with --data (a config file names these itself)")
        config = _builtin_data_config(args.config) or load_config(args.config)
    overrides = {"executor": args.executor, "workers": args.workers, "scheduler": args.scheduler}
    for key, value in overrides.items():
        if value is not None:
            setattr(config.execution, key, value)
    if args.scheduler:
        config.execution.executor = "dask"
    if args.elements is not None:
        generated = [entry for _, entry in config.entries() if entry.source == "generate"]
        if not generated:
            raise ConfigError(f"{source}: --elements applies to generated data, and this run has none")
        try:
            symbols = element_list(args.elements)
        except ConfigError as exc:
            raise ConfigError(f"{source} (with command-line overrides): {exc}") from None
        for entry in generated:
            entry.elements = symbols
    try:
        config.check("")  # the overrides obey the config's rules
    except ConfigError as exc:  # name the config file the overrides were applied to
        raise ConfigError(f"{source} (with command-line overrides): {exc}") from None
    run_dir = Path(args.run_dir or Path("runs") / config.name)
    main_job = MainJob(config, run_dir)
    try:
        planned = main_job.plan()  # everything is checked (files read) before the run directory is touched
    except ConfigError as exc:  # found while planning (e.g. learning-curve sizes vs the data): name the config
        raise ConfigError(f"{source}: {exc}") from None
    where = config.execution.scheduler or config.execution.executor

    def announce() -> None:  # once the run directory is ours and its store is sound: a refusal prints one line
        print(f"mlffbench run '{config.name}' -> {run_dir} (executor: {where}; {len(main_job.datasets)} data "
              f"set(s), {len(planned)} jobs)", flush=True)

    jobs = main_job.run(progress=not args.no_progress, announce=announce)
    print("\n" + finish_run(jobs, run_dir, main_job.not_run, protocol_notes(config, main_job.datasets),
                            main_job.labeler_checks, report=not args.no_report))
    return 1 if summary_counts(jobs).get("failed") else 0


def finish_run(jobs, run_dir: Path, not_run: list, notes: list[str], labeler_checks: dict | None = None,
               report: bool = True) -> str:
    """After a run: every full table to RUN/summary.txt, the report (unless ``report`` is false; a report that
    cannot be written is one line in the summary, never a failed run), and the short summary to print."""
    from mlffbench.errors import one_line
    from mlffbench.summary import full_text, short_summary, write_full

    full_error = None
    try:
        write_full(run_dir, full_text(jobs, not_run=not_run, notes=notes, run_dir=run_dir,
                                      labeler_checks=labeler_checks))
    except OSError as exc:  # e.g. a full disk: the results are stored; `mlffbench show` prints every table
        full_error = one_line(exc)
    html, error = None, None
    if report:
        from mlffbench.report import build_report

        try:
            html = build_report(run_dir)["html"]
        except Exception as exc:  # noqa: BLE001 - the run's results are stored; the report can be re-made
            error = one_line(exc)
    return short_summary(jobs, run_dir, not_run=not_run, n_notes=len(notes), report=html, report_error=error,
                         full_error=full_error)


def element_list(text: str) -> list[str]:
    """The symbols of ``--elements``. An empty item (``Cu,,W``, a trailing comma) is refused, not dropped: it is a
    typo, and the element meant there would silently be missing from the run."""
    from mlffbench.errors import ConfigError

    items = [item.strip() for item in text.split(",")]
    empty = [i + 1 for i, item in enumerate(items) if not item]
    if empty:
        raise ConfigError(f"--elements: item {empty[0]} of '{text}' is empty (give comma-separated symbols, e.g. "
                          "Cu,W)")
    return items


def _builtin_data_config(name: str | None):
    """``mlffbench run NAME`` for a built-in data set without a config of its own: acegp and the mean-energy
    baseline, accuracy, a learning curve and verification checks on it (None when NAME is a config or no
    built-in data set)."""
    from mlffbench.config import (BuiltinConfig, ChecksConfig, LearningCurveConfig, ModelConfig, RunConfig,
                                  builtin_configs)
    from mlffbench.datasets import builtin

    if name is None or name in builtin_configs() or Path(name).is_file() or name not in builtin.choices():
        return None
    config = RunConfig(name=name, datasets=[BuiltinConfig(names=[name])],
                       models=[ModelConfig("acegp"), ModelConfig("mean_energy")])
    config.tasks.learning_curve = LearningCurveConfig(sizes=list(DATA_CURVE_SIZES))
    config.tasks.checks = ChecksConfig()
    return config


#: learning-curve sizes of ``run --data``: fractions of the training set (MS25 data training rate)
DATA_CURVE_SIZES = [0.1, 0.3, 1.0]


def data_config(args):
    """The run config of ``mlffbench run --data``: one files data set, the given models (default acegp and
    mean_energy), accuracy, a learning curve and verification checks (and a group hold-out and uncertainty
    calibration with --transfer)."""
    from mlffbench.config import (CalibrationConfig, ChecksConfig, FilesConfig, LearningCurveConfig, ModelConfig,
                                  RunConfig, TransferConfig)
    from mlffbench.errors import ConfigError

    name = args.name or _data_name(args.data)
    entry = FilesConfig(name=name, files=[str(Path(p).resolve()) for p in args.data],
                        test_files=[str(Path(p).resolve()) for p in args.test or []], format=args.format,
                        group_key=args.group_key, stress_unit=args.stress_unit,
                        stress_convention=args.stress_convention, shear_order=args.shear_order,
                        path_groups=[g for g in (args.path_groups or "").split(",") if g], energy=args.energy,
                        allow_duplicates=args.allow_duplicates)
    names = [m for m in (args.models or "acegp,mean_energy").split(",") if m]
    if not names:
        raise ConfigError("--models: no model names given")
    config = RunConfig(name=name, datasets=[entry], models=[ModelConfig(m) for m in names])
    config.tasks.learning_curve = LearningCurveConfig(sizes=list(DATA_CURVE_SIZES))
    config.tasks.checks = ChecksConfig()
    if args.transfer:
        train, _, test = args.transfer.partition(":")
        if not train or not test:
            raise ConfigError(f"--transfer: expected TRAIN_GROUP[,..]:TEST_GROUP[,..], got '{args.transfer}'")
        config.tasks.transfer = TransferConfig(train=train.split(","), test=test.split(","))
        config.tasks.calibration = CalibrationConfig(train=train.split(","), test=test.split(","))
    return config


def _data_name(paths: list[str]) -> str:
    """A data-set name from the paths: one file's stem, else the folder they share."""
    import re

    from mlffbench.data.io import uncompressed_name

    resolved = [Path(p).resolve() for p in paths]
    stem = uncompressed_name(resolved[0]).stem if len(resolved) == 1 else Path(os.path.commonpath(resolved)).name
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", stem).lstrip("._+-") or "data"


def _cmd_generate(args) -> int:
    from mlffbench.config import load_config
    from mlffbench.data.sample import generate

    from mlffbench.errors import ConfigError

    config = load_config(args.config)
    generated = [entry for _, entry in config.entries() if entry.source == "generate"]
    if not generated:
        raise ConfigError(f"{args.config}: has no generated data set (source: generate) to make")
    data = generated[0]
    if args.elements is not None:
        try:
            data.elements = element_list(args.elements)
        except ConfigError as exc:
            raise ConfigError(f"{args.config or 'quick'} (with command-line overrides): {exc}") from None
    if args.frames:
        data.frames_per_temperature = args.frames
    data.check("data")

    def report(element, label, seconds):
        print(f"  {element:<3} {label:<5} {seconds:6.1f} s", flush=True)

    summary = generate(data, args.out, seed=config.seed, progress=report)
    for element, item in summary.items():
        cell = item["cell"]
        temps = ", ".join(
            f"{k} {v['kinetic_temperature_mean']:.0f}±{v['kinetic_temperature_std']:.0f} K (target {v['target_temperature']:.0f})"
            for k, v in item["trajectories"].items()
        )
        print(f"{element}: {cell['natoms']} atoms, {temps}")
    print(f"wrote {args.out}/<El>/<El>_<label>.extxyz and summary.json")
    return 0


def _cmd_status(args) -> int:
    from mlffbench.engine.lock import FILE, coordinator
    from mlffbench.engine.sources import current
    from mlffbench.engine.store import STATUSES, open_existing

    store = open_existing(args.run)
    try:
        jobs, provenance = list(store.jobs()), store.provenance()
    finally:
        store.close()
    # jobs of a data set's earlier version (a source file changed) are not this run's: counted apart
    jobs, superseded = current(jobs, provenance)
    counts = {s: sum(job.status == s for job in jobs) for s in STATUSES}
    alive, holder = coordinator(args.run)
    # 'running' in the store means running only while a coordinator holds the run directory; else it was killed
    shown = "interrupted" if alive is False else "running"
    if counts["running"] and alive is False:
        counts = {"done": counts["done"], "running": 0, "interrupted": counts["running"],
                  **{k: counts[k] for k in ("failed", "pending")}}
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    if superseded:
        print(f"  superseded: {len(superseded)} job(s) of earlier versions of data set(s) whose source files changed "
              "(kept in the store, not shown by report)")
    if alive:
        print(f"  coordinator: {holder.describe() if holder else 'starting'}")
    elif alive is None:
        print(f"  coordinator: {holder.describe()}, another host: cannot tell whether it is still running")
    elif counts.get("interrupted"):
        print(f"  no coordinator holds {Path(args.run) / FILE}: re-run the same command to resume")
    for job in jobs:
        if args.all or job.status != "done":
            status = shown if job.status == "running" else job.status
            extra = f"  ({job.error})" if job.error else ""
            print(f"  {status:<11} {job.name}{extra}")
    return 0


def _cmd_datasets(args) -> int:
    from mlffbench.datasets import builtin
    from mlffbench.report_text import format_table

    rows = builtin.table()
    print(format_table(["name", "elements", "frames", "train/test", "atoms", "groups", "cell", "level of theory",
                        "source", "licence"], [""] * 10,
                       [[r["name"], r["elements"], r["frames"], r["train/test"], r["atoms"], r["groups"], r["cell"],
                         r["theory"], r["source"], r["licence"]] for r in rows], text_columns=(0, 1, 5, 6, 7, 8, 9)))
    print("\nsuites: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in builtin.SUITES.items()))
    print("citations:")
    for citation in dict.fromkeys(r["citation"] for r in rows):
        print(f"  - {citation}")
    print("use: a config entry {source: builtin, names: [NAME or suite]}; built-in configs run them: "
          "mlffbench run mlearn, mlffbench run acac, ...")
    return 0


def _cmd_elements(args) -> int:
    from mlffbench import elements

    print(elements.format_table(args.symbols or None))
    return 0


def _cmd_potentials(args) -> int:
    from mlffbench import elements
    from mlffbench.data.labelers import checks as label_checks
    from mlffbench.data.labelers import potentials as pots

    # the label checks of each potential on its TM23 starting cell (cached outside any run: seconds the first time)
    def row(el: str, p) -> str:
        check = label_checks.cell_text(label_checks.potential_record(el, p.id))
        return f"{el:<5} {p.id:<20} {p.pair_style:<12} {p.file or p.library:<26} {check:<56} {p.citation}"

    header = f"{'metal':<5} {'potential':<20} {'pair style':<12} {'file':<26} {'label check':<56} citation"
    print(header)
    for el in elements.TM23:
        if el in pots.DEFAULT_POTENTIAL:
            print(row(el, pots.POTENTIALS[pots.DEFAULT_POTENTIAL[el]]))
    others = [(el, p) for p in pots.POTENTIALS.values() for el in p.elements
              if el in elements.TM23 and pots.DEFAULT_POTENTIAL.get(el) != p.id and not p.id.endswith("_qsnap")]
    print("\nother shipped potentials of TM23 metals (not defaults; choose one with labeler: {name: lammps, "
          "potentials: {El: id}}):")
    for el, p in sorted(others, key=lambda x: (elements.TM23.index(x[0]), x[1].id)):
        print(row(el, p))
    print("\nbuilt-in recipes (ms25):")
    for name, rec in label_checks.recipe_records().items():
        print(f"{name:<7} {rec['labeler']:<60} {label_checks.cell_text(rec)}")
    tol = label_checks.LABEL_TOLERANCES
    print(f"\nlabel check: the verification checks (mlffbench.verification) on the TM23 starting cell, judged as "
          f"for models except smoothness: a labeler fails only above a force kink of {tol['force_kink']:g} eV/Å, "
          f"a pressure kink of {tol['pressure_kink_GPa']:g} GPa or an energy jump of {tol['energy_jump']:g} eV "
          "(mild: above the model tolerance, within these)")
    print("\nnot covered: " + "; ".join(f"{el} ({why})" for el, why in pots.UNCOVERED_TM23.items()))
    print("every metal (all 43): labeler {name: universal, model: sevennet | chgnet}, a pretrained universal potential "
          "as a surrogate for DFT (README, 'Every metal'); e.g. labeler: [lammps, {name: universal}]")
    return 0


def _cmd_check(args) -> int:
    from collections import Counter

    from mlffbench import frames as fr
    from mlffbench.data import sanity
    from mlffbench.data.io import detect_format, read_frames, stress_declaration
    from mlffbench.data.mlearn import SHEAR_ORDER, SHEAR_ORDER_SOURCE
    from mlffbench.data.validate import STRESS_NOTE

    def counted(counter: Counter, limit: int = 12) -> str:
        items = [f"{value} {n}" for value, n in counter.most_common(limit)]
        more = len(counter) - limit
        return ", ".join(items) + (f", and {more} more" if more > 0 else "")

    require = tuple(x for x in args.require.split(",") if x)
    declared = {"stress_unit": args.stress_unit, "stress_convention": args.stress_convention}
    failed = 0
    read: list = []  # (path, frames) of the files read, for the per-atom check across files
    for path in args.files:
        try:
            frames = read_frames(path, fmt=args.format, require=require, shear_order=args.shear_order, **declared)
            unit, convention = stress_declaration(path, args.format, **declared)
            if args.energy == "per-atom":  # declared: judged (and shown) as the per-cell energies a run uses
                sanity.to_per_cell(frames)
            elif args.energy is None:
                sanity.check_energy_scale([(str(path), frames)])
        except MlffbenchError as exc:  # one line per bad file; the other files are still checked
            print(f"mlffbench: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        read.append((str(path), frames))
        for note in sanity.force_warnings(str(path), frames):
            sanity.warn(note)
        inside = sanity.repeats(frames)
        if inside:
            sanity.warn(f"{path}: {len(inside)} frames repeat earlier frames of the file (e.g. frame {inside[0][0]} "
                        f"= frame {inside[0][1]})")
        pbc = frames[0].pbc  # the reader refuses files that mix pbc
        partly = f"partly periodic (pbc {' '.join('T' if p else 'F' for p in pbc)})"
        periodic = "periodic" if pbc.all() else "non-periodic" if not pbc.any() else partly
        elements = sorted({s for f in frames for s in f.get_chemical_symbols()})
        print(f"{path} ({args.format or detect_format(path)}): {len(frames)} frames, {sum(len(f) for f in frames)} "
              f"atoms, elements {' '.join(elements)}, {periodic}")
        labels = {name: sum(fr.has_label(f, name) for f in frames) for name in ("energy", "forces", "stress")}
        line = ", ".join(f"{name} {n}" for name, n in labels.items())
        if labels["stress"]:
            sign = "positive = compression" if convention == "compressive" else "positive = tension"
            line += f" (stress read as {unit}, {convention}: {sign}; now eV/Å³, ASE sign)"
        print(f"  labels: {line}")
        orders = Counter(f"{f.info[SHEAR_ORDER]} ({f.info[SHEAR_ORDER_SOURCE]})" for f in frames
                         if SHEAR_ORDER in f.info)
        for order, n in orders.items():
            print(f"  shear order of stress components 4-6 ({n} frames): {order}")
        key = "config_type" if any("config_type" in f.info for f in frames) else fr.GROUP
        groups = Counter(str(f.info[key]) for f in frames if key in f.info)
        print(f"  groups ({key}): {counted(groups)}" if groups else "  groups: none in the file")
        for note, n in Counter(f.info[STRESS_NOTE] for f in frames if f.info.get(STRESS_NOTE)).items():
            print(f"  stress note ({n} frames): {note}")
        print(f"  ok: {', '.join(require) + ' on every frame' if require else 'structure'}")
    if args.energy is None and len(read) > 1:  # a per-atom file among per-cell ones shows only beside them
        try:
            sanity.check_energy_scale(read)
        except MlffbenchError as exc:
            print(f"mlffbench: error: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def _cmd_report(args) -> int:
    import json

    from mlffbench.report import build_report

    extra = None
    if args.properties:
        try:
            extra = json.loads(Path(args.properties).read_text())
        except (OSError, ValueError) as exc:
            raise MlffbenchError(f"{args.properties}: cannot read element properties ({exc})") from None
        if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
            raise MlffbenchError(f"{args.properties}: expected {{symbol: {{property: number}}}}")
    paths = build_report(args.run, args.out, parity=not args.no_parity, extra_properties=extra)
    print(f"wrote {paths['html']} (+ {paths['csv'].name}, {paths['json'].name})")
    return 0


def _cmd_show(args) -> int:
    from mlffbench.summary import show

    print(show(args.run, args.task, args.dataset), end="")
    return 0


def _cmd_rescore(args) -> int:
    from mlffbench.predictions import rescore, rescore_table

    rows, missing = rescore(args.run, args.metric, args.task, args.dataset)
    if rows:
        print(rescore_table(rows, args.metric))
    for line in missing:
        print(f"not rescored: {line}")
    return 0 if rows or not missing else 1


def _cmd_compare(args) -> int:
    from mlffbench.report import write_compare

    text, paths = write_compare(args.runs, args.out)
    print(text)
    print(f"\nwrote {paths['html']} and {paths['csv']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlffbench", description="Benchmark and crash-test machine-learned force fields.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a benchmark config (default: the built-in 'quick') or your own data",
                       description="Train and score models on the data sets of a config, or on your own labelled "
                                   "files with --data (accuracy and a learning curve on a seeded random 10 %% of "
                                   "each group, or on --test files). Re-running the same command resumes and "
                                   "skips finished jobs.")
    p.add_argument("config", nargs="?", help="YAML config file or built-in name (quick, tm23, ...); default quick")
    p.add_argument("--data", nargs="+", metavar="PATH", help="your labelled files or globs (extxyz, ASE db, mlearn "
                                                             "JSON, OUTCAR, vasprun.xml): one data set")
    p.add_argument("--test", nargs="+", metavar="PATH", help="test files (default: a seeded random 10 %% of each "
                                                             "group of --data)")
    p.add_argument("--models", help="comma-separated model names (default: acegp,mean_energy; see "
                                    "docs/models.md)")
    p.add_argument("--stress-unit", choices=["eV/A3", "GPa", "kbar", "bar"],
                   help="unit of the stress in the files (default: the format's: eV/Å³ for extxyz/db, kbar for "
                        "mlearn JSON)")
    p.add_argument("--stress-convention", choices=["tensile", "compressive"],
                   help="sign of the stress in the files: tensile = positive under tension (ASE), compressive = "
                        "positive under compression (VASP, LAMMPS pressure)")
    p.add_argument("--shear-order", help="mlearn-style JSON: meaning of stress components 4-6, e.g. xy,yz,zx")
    p.add_argument("--format", help="file format when the name does not tell (extxyz, db, mlearn, vasp-out, "
                                    "vasp-xml)")
    p.add_argument("--group-key", help="frame info key of the groups (default: config_type, else the file stem)")
    p.add_argument("--transfer", metavar="TRAIN:TEST", help="also a group hold-out: train on the TRAIN group(s), "
                                                            "test on each TEST group (comma-separated)")
    p.add_argument("--path-groups", metavar="G[,G]", help="groups whose frames, in file order, are a reaction path "
                                                          "(NEB images): the barrier is scored model vs reference")
    p.add_argument("--energy", choices=["per-cell", "per-atom"],
                   help="energies in the files: per-cell (default; declaring it skips the per-atom check) or "
                        "per-atom (converted to per cell on reading)")
    p.add_argument("--allow-duplicates", action="store_true",
                   help="keep test frames that repeat training frames (default: refused, they flatter every model)")
    p.add_argument("--name", help="data-set and run name (default: from the file names)")
    p.add_argument("--run-dir", help="run directory (default runs/<config name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--elements", help="comma-separated element symbols of generated data (default: the config's)")
    p.add_argument("--executor", choices=["inprocess", "dask"], help="default: the config's execution.executor")
    p.add_argument("--workers", type=int, help="Dask LocalCluster worker processes (default: one per core)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. one from dask-jobqueue)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end of the run")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("generate", help="generate TM23-style reference data only",
                       description="Run the TM23 data protocol and write extxyz files per trajectory.")
    p.add_argument("config", nargs="?", help="YAML config file or built-in name; its 'data' section is used")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--elements", help="comma-separated element symbols (default: the config's)")
    p.add_argument("--frames", type=int, help="frames per temperature (default: the config's)")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("status", help="job counts and unfinished jobs of a run", description="Show done / running / failed / pending jobs.")
    p.add_argument("run", help="run directory")
    p.add_argument("--all", action="store_true", help="list finished jobs too")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("elements", help="element facts (T_melt, structure, N_d, sources)", description="Print element facts with their sources.")
    p.add_argument("symbols", nargs="*", help="symbols (default: all 43)")
    p.set_defaults(func=_cmd_elements)

    p = sub.add_parser("datasets", help="the built-in data sets (shipped real DFT, generated MS25-style systems)",
                       description="List every built-in data set: elements, frames, splits, groups, level of theory, "
                                   "source, licence and citation.")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("potentials", help="LAMMPS potential coverage of the TM23 metals", description="Which potential file labels each TM23 metal.")
    p.set_defaults(func=_cmd_potentials)

    from mlffbench.units import STRESS_CONVENTIONS, STRESS_UNITS

    p = sub.add_parser("check", help="load and validate data files",
                       description="Read data files (extxyz, ASE db, mlearn JSON, OUTCAR, vasprun.xml), validate them "
                                   "and say what they hold: frames, atoms, elements, periodicity, labels, the stress "
                                   "units assumed, groups and stress notes.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--require", default="energy,forces", help="labels that must be present (comma-separated; default energy,forces)")
    p.add_argument("--format", help="file format (extxyz, db, mlearn, vasp-out, vasp-xml; default: from the name)")
    p.add_argument("--stress-unit", help=f"unit of the files' stress: {', '.join(STRESS_UNITS)} "
                                         "(default: the format's own; mlearn JSON kbar, others eV/A3)")
    p.add_argument("--stress-convention", help=f"{' or '.join(STRESS_CONVENTIONS)}: positive stress means tension "
                                               "(ASE) or compression (VASP, LAMMPS pressure, FitSNAP); default: the "
                                               "format's own (mlearn JSON compressive, others tensile)")
    p.add_argument("--shear-order", help='meaning of stress components 4-6 of a 6-number stress, e.g. "xy,yz,zx" '
                                         "(default: ASE's yz,xz,xy; mlearn JSON: its table or detected)")
    p.add_argument("--energy", choices=["per-cell", "per-atom"],
                   help="energies in the files: per-cell (default; declaring it skips the per-atom check) or "
                        "per-atom (converted to per cell on reading)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("report", help="HTML report (+ CSV/JSON) of a run, from its store",
                       description="Heatmaps, parity/learning-curve/cost/observables plots, correlations and a "
                                   "claims summary in one self-contained HTML file; no retraining.")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="HTML file (default RUN/report/report.html; .csv and .json beside it)")
    p.add_argument("--no-parity", action="store_true", help="skip parity plots (drawn from the stored predictions)")
    p.add_argument("--properties", help='JSON {symbol: {property: value}} of extra element properties '
                                        '(e.g. d_band_centre_eV) for the correlation plots')
    p.set_defaults(func=_cmd_report)

    from mlffbench.predictions import METRICS as RESCORE_METRICS
    from mlffbench.summary import EXTRA_TABLES

    p = sub.add_parser("show", help="print a run's full tables again from its store",
                       description="Print the full tables of a run from its store, as the run wrote them to "
                                   "RUN/summary.txt: all of them, one task's, or one data set's.")
    p.add_argument("run", help="run directory")
    p.add_argument("--task", help="one table: a task (accuracy, transfer, learning_curve, checks, calibration, ...) "
                                  f"or {', '.join(EXTRA_TABLES)}")
    p.add_argument("--dataset", help="only this data set's rows")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("rescore", help="score a run's stored predictions again with another metric",
                       description="Score every fit job's stored test-set predictions (models/<job>/predictions.npz) "
                                   "again, overall and per group, without loading any model.")
    p.add_argument("run", help="run directory")
    p.add_argument("--metric", default="mae", choices=list(RESCORE_METRICS), help="default mae")
    p.add_argument("--task", help="only this task's jobs")
    p.add_argument("--dataset", help="only this data set")
    p.set_defaults(func=_cmd_rescore)

    p = sub.add_parser("compare", help="leaderboard across runs and models",
                       description="Rank every (run, model) by mean force % error; text table, HTML and CSV.")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--out", help="HTML file (default ./compare.html; .csv beside it)")
    p.set_defaults(func=_cmd_compare)

    from mlffbench.envs.cli import add_env_parser  # mlffbench env list|build|remove

    add_env_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is handled below and not at interpreter exit
        return code
    except BrokenPipeError:  # the reader went away (`mlffbench status RUN | head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe stopped
    except MlffbenchError as exc:
        print(f"mlffbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlffbench: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
