"""Verification checks of every trained or published potential (OpenKIM-style; :mod:`mlffbench.verification`):
forces and stress against finite differences, translation/rotation/permutation invariance, extensivity,
smoothness along a dimer and a compression, determinism. A job per potential and data set, on the potential its
accuracy fit saved, in the model's own environment; seconds. Runs on any data set (no reference needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
import numpy as np

from mlffbench.report_text import format_table
from mlffbench.tasks import common

TITLE = "Verification checks of the potentials (pass / fail with the measured number)"


def jobs(config, dataset, model) -> list[dict]:
    return common.after_accuracy_fit(dataset, asdict(config.tasks.checks))


def resolve(inputs: dict, after_results: list) -> dict:
    return common.trained_potential(inputs, after_results, "verification checks")


def run(inputs: dict, run_dir) -> dict:
    from mlffbench import datasets, verification
    from mlffbench.data import splits

    frames = datasets.load(inputs["dataset"], run_dir)
    test = [frames[i] for i in splits.base(frames, inputs["split"], inputs["seed"]).test]
    n = min(int(inputs["settings"]["frames"]), len(test))
    picks = sorted(set(np.linspace(0, len(test) - 1, n).round().astype(int).tolist()))
    potential = common.open_potential(inputs, run_dir)
    try:
        checked = [{"test_frame": k, "natoms": len(test[k]), "periodic": bool(test[k].pbc.all()),
                    "checks": [c.to_dict() for c in verification.run_checks(potential, test[k], inputs["seed"] + k)]}
                   for k in picks]
    finally:
        if hasattr(potential, "close"):
            potential.close()
    dataset = inputs["dataset"]
    return {"task": "checks", "dataset": dataset["name"],
            "element": dataset["elements"][0] if len(dataset["elements"]) == 1 else None,
            "model": inputs["model"], "label": inputs["label"], "frames": checked,
            "tolerances": verification.TOLERANCES}


@dataclass
class ChecksRow:
    dataset: str
    model: str
    passed: int
    failed: list[str]  # names of failing checks (any frame)
    checks: dict  # name -> the worst frame's check dict (status, value, tolerance, unit, detail)

    @property
    def ok(self) -> bool:
        return not self.failed


def summarise(results: list[dict]) -> list[ChecksRow]:
    rows = []
    order = {"fail": 0, "pass": 1, "n/a": 2}
    for r in results:
        worst: dict[str, dict] = {}
        for frame in r["frames"]:
            for c in frame["checks"]:
                have = worst.get(c["name"])
                if have is None or order[c["status"]] < order[have["status"]]:
                    worst[c["name"]] = c
        failed = [name for name, c in worst.items() if c["status"] == "fail"]
        rows.append(ChecksRow(r["dataset"], r["label"], sum(c["status"] == "pass" for c in worst.values()), failed,
                              worst))
    return rows


def failing(rows: list[ChecksRow]) -> dict[tuple[str, str], list[str]]:
    """{(data set, model): failing checks} of the potentials that fail any check (marked in every ranking)."""
    return {(r.dataset, r.model): r.failed for r in rows if r.failed}


def cell(c: dict | None) -> str:
    if c is None:
        return "-"
    if c["status"] == "n/a":
        return "n/a"
    value = "?" if c["value"] is None else f"{c['value']:.1e}"
    return f"{'ok' if c['status'] == 'pass' else 'FAIL'} {value}"


def table(rows: list[ChecksRow]) -> str:
    from mlffbench.verification import CHECKS

    header = ["data set", "model", "passed"] + list(CHECKS)
    units = ["", "", ""] + ["" for _ in CHECKS]
    body = [[r.dataset, r.model, f"{r.passed}/{sum(c['status'] != 'n/a' for c in r.checks.values())}"]
            + [cell(r.checks.get(name)) for name in CHECKS] for r in rows]
    fails = [f"\n{r.dataset} {r.model} fails {name}: {r.checks[name]['detail']}" for r in rows for name in r.failed]
    return (format_table(header, units, body) + "\nvalues: the measured number in the check's unit (forces_fd eV/Å, "
            "stress_fd GPa, invariances and extensivity eV/atom, smoothness eV energy jump; tolerances and the other "
            "measures in the report)" + "".join(fails))
