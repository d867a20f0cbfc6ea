"""Label checks: the verification checks (``mlffbench.verification``) run on every reference calculator of a run
before it labels, once per labeler and data set, on a structure of that data set.

A reference that violates a conservation law or an invariance makes wrong labels, so ``forces_fd``, ``stress_fd``,
``translation``, ``rotation``, ``permutation``, ``extensivity`` and ``determinism`` fail a labeler exactly as they
fail a model (``verification.TOLERANCES``). Smoothness is judged on what a smooth model can reach, not on the
0.01 eV/Å used for trained models: a labeler fails ``smoothness_dimer`` / ``smoothness_compression`` only when the
force kink exceeds ``LABEL_TOLERANCES["force_kink"]`` (1 eV/Å: several times the per-component force error of a
good MLFF on these metals, so one kink crossing dominates the error; the Baskes 1992 MEAM's 48-172 eV/Å is far
past it), the pressure kink along the compression exceeds 1 GPa, or an energy jump exceeds 0.05 eV (a jump per
pair crossing a cutoff of that size is tens of meV/atom in a 50-atom cell). Beyond the model tolerance but within
these (measured on the TM23 starting cells: Cr's 2NN MEAM 0.27 eV/Å at 4.79 Å, Fe 0.074, V 0.064 eV/Å) is "mild":
reported beside the data set, not refused.

Where each labeler is checked: LAMMPS and EMT at planning (about a second each), on the structure its data job
starts from (generated TM23 data: the ground state relaxed with the labeler -> supercell -> the seeded vacancy,
exactly ``data.sample.prepare_cell``; files: the first frame; recipes: their first cell), cached outside the run
directory (``cache_dir()``, keyed by the labeler provenance, the structure's hash, the seed and the verification
code), so planning writes nothing into the run and a re-plan costs nothing. A universal potential (~0.5 s per
call, ~1000 calls for the checks) is checked the same way inside its data job, before the MD, and the data job
refuses to label on a failure. GPAW (minutes per call) is not checked: recorded "not checked" with that reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from mlffbench.errors import ConfigError, MlffbenchError, one_line

#: label tolerances of the smoothness measures (``Check.measures`` keys); see the module docstring for why
LABEL_TOLERANCES = {"force_kink": 1.0, "pressure_kink_GPa": 1.0, "dE_ds_kink": 1.0, "energy_jump": 0.05}
UNITS = {"force_kink": "eV/Å", "pressure_kink_GPa": "GPa", "dE_ds_kink": "eV", "energy_jump": "eV"}
SMOOTHNESS = ("smoothness_dimer", "smoothness_compression")
AT_PLANNING = ("lammps", "emt")  # cheap enough to check while planning
IN_DATA_JOB = ("universal",)  # checked inside the data job, before the MD
NOT_CHECKED = {"gpaw": "not checked: one GPAW call costs minutes and the checks need ~1000 calls"}


def check_names() -> tuple[str, ...]:
    from mlffbench.verification import CHECKS

    return CHECKS


def validate_accept(where: str, names) -> None:
    """``accept_failed_checks`` of a data-set entry: a list of known check names (a typo would accept nothing)."""
    if not isinstance(names, list):
        raise ConfigError(f"{where}.accept_failed_checks: a list of check names ({', '.join(check_names())})")
    for i, name in enumerate(names):
        if name not in check_names():
            raise ConfigError(f"{where}.accept_failed_checks[{i}]: unknown check '{name}' (known: "
                              f"{', '.join(check_names())})")


def cache_dir() -> Path:
    return Path(os.environ.get("MLFFBENCH_LABEL_CHECK_CACHE") or Path.home() / ".cache" / "mlffbench" / "labeler_checks")


def code_version() -> str:
    """Hash of the verification code: a change to a check re-measures every cached labeler."""
    from mlffbench import verification

    return hashlib.sha256(Path(verification.__file__).read_bytes()).hexdigest()[:12]


def structure_hash(atoms: Atoms) -> str:
    blob = json.dumps({"numbers": atoms.numbers.tolist(), "positions": np.round(atoms.positions, 8).tolist(),
                       "cell": np.round(np.array(atoms.cell), 8).tolist(), "pbc": atoms.pbc.tolist()})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def measure(spec: dict, atoms: Atoms, seed: int, cache: bool = True) -> tuple[str, list[dict]]:
    """(labeler provenance, the check dicts) of labeler ``spec`` on ``atoms``; cached in ``cache_dir()``."""
    from mlffbench import verification
    from mlffbench.data.labelers import make_labeler

    labeler = make_labeler(spec)
    symbols = sorted(set(atoms.get_chemical_symbols()))
    provenance = labeler.provenance(symbols)
    key = hashlib.sha256(json.dumps({"provenance": provenance, "spec": spec, "structure": structure_hash(atoms),
                                     "seed": seed, "verification": code_version()}, sort_keys=True,
                                    default=str).encode()).hexdigest()[:24]
    path = cache_dir() / f"{key}.json"
    if cache and path.is_file():
        try:
            return provenance, json.loads(path.read_text())["checks"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is measured again
    checks = [c.to_dict() for c in verification.run_checks(labeler.calculator(symbols), atoms, seed)]
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"provenance": provenance, "checks": checks}, default=float))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the checks are simply measured again next time
    return provenance, checks


def judge(check: dict) -> tuple[str, str]:
    """(verdict, the measure behind it) of one check of a labeler: pass / mild / fail / n/a."""
    name, status = check["name"], check["status"]
    if status in ("pass", "n/a"):
        return status, ""
    measures = check.get("measures") or {}
    if name not in SMOOTHNESS or not measures:
        value = "?" if check.get("value") is None else f"{check['value']:.3g} {check.get('unit', '')}".strip()
        return "fail", f"{value} > {check.get('tolerance')} ({one_line(check.get('detail', ''))})"
    over = [(k, v) for k, v in measures.items() if k in LABEL_TOLERANCES and v > LABEL_TOLERANCES[k]]
    worst = over or [(k, v) for k, v in measures.items() if k in LABEL_TOLERANCES]
    k, v = max(worst, key=lambda kv: kv[1] / LABEL_TOLERANCES[kv[0]])
    at = measures.get(f"{k}_at_A")
    text = (f"{k.replace('_GPa', '').replace('_', ' ')} {v:.3g} {UNITS[k]}" + (f" at {at:.2f} Å" if at else "")
            + f" (label tolerance {LABEL_TOLERANCES[k]:g} {UNITS[k]})")
    return ("fail" if over else "mild"), text


def record(dataset: str, spec: dict, provenance: str, where: str, checks: list[dict], accept=()) -> dict:
    """What a run stores and shows for one labeler on one data set."""
    verdicts = {c["name"]: judge(c) for c in checks}
    failed = [n for n, (v, _) in verdicts.items() if v == "fail"]
    mild = [n for n, (v, _) in verdicts.items() if v == "mild"]
    accepted = [n for n in failed if n in accept]
    status = ("fail" if set(failed) - set(accepted) else "accepted failure" if accepted else "mild" if mild
              else "pass")
    return {"dataset": dataset, "labeler": provenance, "spec": spec, "structure": where, "checks": checks,
            "failed": failed, "mild": mild, "accepted": accepted, "status": status,
            "why": {n: text for n, (v, text) in verdicts.items() if v in ("fail", "mild")},
            "label_tolerances": LABEL_TOLERANCES}


def not_checked(dataset: str, spec: dict, provenance: str, reason: str) -> dict:
    return {"dataset": dataset, "labeler": provenance, "spec": spec, "structure": "", "checks": [], "failed": [],
            "mild": [], "accepted": [], "status": "not checked", "why": {}, "reason": reason}


def refusal(rec: dict) -> str:
    """The one-line refusal of a labeler that fails a check the entry does not accept."""
    name = next(n for n in rec["failed"] if n not in rec["accepted"])
    return (f"data set '{rec['dataset']}': labeler {rec['labeler']} fails the label check {name}: "
            f"{rec['why'][name]}; use another labeler or accept it on the data-set entry with "
            f"accept_failed_checks: [{name}]")


def summary(rec: dict) -> str:
    """One short cell: "pass 9/9", "mild: smoothness_dimer", "ACCEPTED FAIL: ...", "not checked"."""
    if rec["status"] == "not checked":
        return "not checked"
    if rec["status"] == "in data job":
        return "checked in the data job"
    counted = [c for c in rec["checks"] if c["status"] != "n/a"]
    if rec["status"] == "pass":
        return f"pass {len(counted)}/{len(counted)}"
    parts = []
    if rec["failed"]:
        parts.append(("ACCEPTED FAIL " if rec["accepted"] == rec["failed"] else "FAIL ") + ", ".join(rec["failed"]))
    if rec["mild"]:
        parts.append("mild " + ", ".join(rec["mild"]))
    return "; ".join(parts)


# ----------------------------------------------------------------------------------- the structure of a data set
def structure(ds, seed: int) -> tuple[Atoms, str] | None:
    """(structure the data set's reference labeler is checked on, in words), or None when there is none."""
    if ds.source == "generate":
        from mlffbench.config import DataConfig, from_dict
        from mlffbench.data.labelers import make_labeler
        from mlffbench.data.sample import prepare_cell

        # exactly the cell the data job starts its MD from: relaxed with the MD labeler, supercell, vacancy
        cfg = from_dict(DataConfig, ds.data_inputs["data"], "data")
        cell, info = prepare_cell(ds.data_inputs["element"], cfg, make_labeler(cfg.labeler),
                                  ds.data_inputs["seed"])
        return cell, f"{info.element} {info.lattice} ground state, {info.natoms} atoms with the vacancy"
    source = ds.data_inputs.get("source", "")
    if source.startswith("recipe:"):
        from importlib import import_module

        recipe = import_module(f"mlffbench.data.recipes.{source[7:]}")
        if hasattr(recipe, "check_structure"):
            return recipe.check_structure(ds.data_inputs)
        return None
    if source == "files":
        from mlffbench.data.io import read_frames
        from mlffbench.datasets.files import resolve

        first = ds.data_inputs["files"][0]
        frames = read_frames(resolve(first["path"]), ds.data_inputs.get("format"), index="0:1",
                             **{k: ds.data_inputs.get(k) for k in ("stress_unit", "stress_convention", "shear_order")})
        return frames[0], f"frame 0 of {Path(first['path']).name}"
    return None


def accepted_of(ds) -> list[str]:
    return list((ds.provenance or {}).get("accept_failed_checks") or [])


def plan(datasets, seed: int) -> dict[str, dict]:
    """Check the reference labeler of every data set that has one ({data set: record}); raises ConfigError with
    the one-line reason for a failure the data-set entry does not accept. Nothing is written into the run."""
    out: dict[str, dict] = {}
    for ds in datasets:
        spec = ds.reference
        if not spec:
            continue
        name = spec.get("name")
        from mlffbench.data.labelers import make_labeler

        try:
            provenance = make_labeler(spec).provenance(list(ds.elements))
        except MlffbenchError:
            provenance = name
        if name in NOT_CHECKED:
            out[ds.name] = not_checked(ds.name, spec, provenance, NOT_CHECKED[name])
            continue
        if name in IN_DATA_JOB:
            out[ds.name] = {**not_checked(ds.name, spec, provenance, "checked in the data job, before the MD"),
                            "status": "in data job"}
            continue
        if name not in AT_PLANNING:
            out[ds.name] = not_checked(ds.name, spec, provenance, f"no check rule for labeler '{name}'")
            continue
        found = structure(ds, seed)
        if found is None:
            out[ds.name] = not_checked(ds.name, spec, provenance, "no structure of the data set to check on")
            continue
        atoms, where = found
        provenance, checks = measure(spec, atoms, seed)
        rec = record(ds.name, spec, provenance, where, checks, accepted_of(ds))
        if rec["status"] == "fail":
            raise ConfigError(refusal(rec))
        out[ds.name] = rec
    return out


def in_data_job(dataset: str, spec: dict, atoms: Atoms, seed: int, accept=()) -> dict:
    """The check of a labeler too slow to check at planning, run by its data job before the MD; raises
    MlffbenchError (the data job fails with the one-line reason) on a failure the entry does not accept."""
    provenance, checks = measure(spec, atoms, seed)
    rec = record(dataset, spec, provenance, f"the data job's starting cell, {len(atoms)} atoms", checks, accept)
    if rec["status"] == "fail":
        raise MlffbenchError(refusal(rec))
    return rec


# ------------------------------------------------------------------------------------------ marks in the tables
def marked(records: dict | None) -> dict[str, dict]:
    """{data set: record} of the data sets whose labels come from a labeler with an accepted failure: marked in
    every table built on them and left out of claims."""
    return {n: r for n, r in (records or {}).items() if r.get("accepted")}


MARK = "‡"


def mark_note(records: dict | None) -> str:
    """Footnote of the tables: the marked data sets with the failure; then the mild findings."""
    lines = [f"{MARK} {n}: labels from {r['labeler']}, which fails the label check "
             + "; ".join(f"{c} ({r['why'][c]})" for c in r["accepted"])
             + " (accepted by accept_failed_checks; left out of claims)" for n, r in marked(records).items()]
    return "\n".join(lines)


def mild_note(records: dict | None) -> str:
    return "\n".join(f"{n}: labeler {r['labeler']} is outside the model tolerance but within the label tolerance: "
                     + "; ".join(f"{c} {r['why'][c]}" for c in r["mild"])
                     for n, r in (records or {}).items() if r.get("mild"))


# ------------------------------------------------------------------------------ shipped potentials (``potentials``)
def potential_record(element: str, pot_id: str, seed: int = 0) -> dict:
    """The label checks of one shipped potential on ``element``'s TM23 starting cell (default protocol and seed),
    as a generated data set of the quick run would check it; cached like every label check."""
    from mlffbench.config import DataConfig
    from mlffbench.data.labelers.lammps import LammpsLabeler
    from mlffbench.data.sample import prepare_cell

    spec = {"name": "lammps", "potentials": {element: pot_id}}
    try:
        cell, info = prepare_cell(element, DataConfig(), LammpsLabeler({element: pot_id}), seed)
        provenance, found = measure(spec, cell, seed)
    except MlffbenchError as exc:
        return not_checked(element, spec, pot_id, one_line(exc))
    return record(element, spec, provenance, f"{element} TM23 cell, {info.natoms} atoms", found)


def recipe_records(seed: int = 0) -> dict[str, dict]:
    """The label checks of the built-in recipes' reference potentials (ms25: HEA 2NN MEAM, silica Vashishta)."""
    from mlffbench.data.recipes import hea, silica

    out = {}
    for recipe in (hea, silica):
        atoms, where = recipe.check_structure({"params": recipe.PARAMS, "seed": seed})
        provenance, found = measure(recipe.reference(), atoms, seed)
        out[recipe.__name__.rsplit(".", 1)[-1]] = record(recipe.__name__.rsplit(".", 1)[-1], recipe.reference(),
                                                          provenance, where, found)
    return out


def cell_text(rec: dict) -> str:
    """The check column of ``mlffbench potentials``: the verdict and the worst measure behind it."""
    text = summary(rec)
    worst = next((rec["why"][n] for n in rec["failed"] + rec["mild"] if n in rec["why"]), "")
    return f"{text}: {worst.split(' (label tolerance')[0]}" if worst and rec["failed"] + rec["mild"] else text
