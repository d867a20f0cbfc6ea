"""Observables and crash tests (issue 6; MS25, TEA, TM23 Fig. 7 / S4): a trained potential and the reference
labeler's calculator each compute EOS, elastic constants, phonons, vacancy energetics, RDF, MD stability and
speed; the score is model vs reference (``mlffbench.observables``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlffbench.data.labelers import make_labeler
from mlffbench.errors import ConfigError
from mlffbench.observables import NAMES, Settings, module, run_all
from mlffbench.report_text import format_table
from mlffbench.tasks import common

TITLE = "Observables: model vs reference labeler (EOS, elastic, phonons, vacancy, RDF, MD stability, speed)"


def refuse(config, dataset) -> str | None:
    """Observables compare the model with the labeler that made the data, on the element's own structures."""
    if dataset.reference is None:
        return "no reference calculator (the data set names no labeler)"
    if dataset.element is None and not dataset.structures:
        return ("the observables (EOS, elastic, phonons, vacancy, RDF) are built on one element's ground state or on "
                f"the data set's reference structures; data set '{dataset.name}' ({'-'.join(dataset.elements)}) has "
                "neither")
    if not make_labeler(dataset.reference).supports(list(dataset.elements)):
        return f"the reference labeler cannot compute {'-'.join(dataset.elements)}"
    return None


def jobs(config, dataset, model) -> list[dict]:
    """Two jobs: the accuracy task's fit (same inputs, so the same job when accuracy also runs), then an
    ``evaluate`` job that computes the observables with that potential once it is done."""
    obs = config.tasks.observables
    return [
        {"task": "accuracy", "split": dataset.base_split, "point": {}},
        {"kind": "evaluate", "split": {"kind": "none"}, "point": {},
         "after": [0],
         "inputs": {"labeler": dataset.reference, "element": dataset.element,
                    "observables": list(obs.names or NAMES) if dataset.element else ["structure_eos"],
                    "settings": Settings.from_dict(obs.settings).to_dict()}},
    ]


def resolve(inputs: dict, after_results: list) -> dict:
    return common.trained_potential(inputs, after_results, "observables")


def protocol_notes(config, planned) -> list[str]:
    s = Settings.from_dict(config.tasks.observables.settings)
    return [
        f"observables: the reference labeler's ground state and relaxed cells for both sides; crash test = Langevin "
        f"NVT, {s.md_timestep_fs:g} fs step, ramp {s.ramp_start:g}->{s.ramp_end:g} T_melt in {s.ramp_steps} steps and "
        f"{s.hold_steps} steps at {s.hold_temperature:g} T_melt (TEA: longer runs); vacancy cells >= "
        f"{s.vacancy_min_length:g} Å at constant volume; RDF distance = Wasserstein-1 of g(r) as a distribution over r"
    ]


def run(inputs: dict, run_dir) -> dict:
    """Inputs: element, potential (path to a saved Potential), labeler (spec), observables (names; default
    all), settings (dict for ``Settings``), model, label; optional workdir (default run_dir/observables/...)."""
    for key in ("element", "potential", "labeler"):
        if key not in inputs:
            raise ConfigError(f"observables task: inputs.{key} is missing")
    settings = Settings.from_dict(inputs.get("settings"))
    if inputs["element"] is None:  # a multi-element data set: the EOS of its reference structures
        return _structure_observables(inputs, run_dir, settings)
    names = list(inputs.get("observables") or NAMES)
    for name in names:
        module(name)
    element = inputs["element"]
    label = inputs.get("label") or inputs.get("model") or "model"
    potential = _potential(inputs, run_dir)
    reference = make_labeler(inputs["labeler"]).calculator([element])
    workdir = Path(inputs.get("workdir") or Path(run_dir) / "observables" / f"{element}_{label}")
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        observed = run_all(element, names, potential, reference, settings, workdir)
    finally:
        if hasattr(potential, "close"):
            potential.close()
    return {"task": "observables", "dataset": inputs["dataset"]["name"] if "dataset" in inputs else element,
            "element": element, "model": inputs.get("model"), "label": label, "observables": observed}


def _potential(inputs: dict, run_dir):
    """The trained potential: loaded here, or driven in its family's environment (models.remote)."""
    from mlffbench.models.base import load_potential

    path = Path(run_dir) / inputs["potential"]
    if inputs.get("model_python"):
        from mlffbench.models.remote import RemotePotential

        return RemotePotential(inputs["model_python"], path)
    return load_potential(path)


def _structure_observables(inputs: dict, run_dir, settings: Settings) -> dict:
    from mlffbench import datasets
    from mlffbench.observables import structure_eos

    dataset = inputs["dataset"]
    structures = datasets.load_structures(dataset, run_dir)
    reference = make_labeler(inputs["labeler"]).calculator(dataset["elements"])
    potential = _potential(inputs, run_dir)
    try:
        result = structure_eos.run(structures, potential, reference, settings)
    finally:
        if hasattr(potential, "close"):
            potential.close()
    label = inputs.get("label") or inputs.get("model")
    return {"task": "observables", "dataset": dataset["name"], "element": None, "model": inputs.get("model"),
            "label": label, "observables": {structure_eos.NAME: result}}


@dataclass
class ObservablesRow:
    dataset: str
    element: str | None
    model: str
    status: dict  # observable -> "ok" | "failed: reason"
    a0_percent: float | None
    B_percent: float | None
    elastic_mae_GPa: float | None
    cauchy_error_GPa: float | None
    phonon_mae_THz: float | None
    dos_overlap: float | None
    imaginary: bool | None
    vacancy_formation_error_eV: float | None
    migration_error_eV: float | None
    neb_converged: bool | None
    rdf_w1: float | None
    survived: str | None  # "survived/runs" of the model, e.g. "1/2"
    reference_survived: str | None
    nve_drift_meV_atom_ps: float | None
    us_per_atom_step: float | None
    scaling_exponent: float | None
    wall_s: dict  # observable -> seconds


def _get(result: dict | None, *path):
    value = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def summarise(results: list[dict]) -> list[ObservablesRow]:
    rows = []
    for r in results:
        obs = r["observables"]
        ok = {k: v for k, v in obs.items() if v.get("status") == "ok"}

        def survived(side):
            runs = _get(obs.get("stability"), side, "runs")
            return f"{sum(x['survived'] for x in runs)}/{len(runs)}" if runs else None

        rows.append(ObservablesRow(
            dataset=r.get("dataset") or r["element"], element=r["element"], model=r["label"],
            status={k: "ok" if v.get("status") == "ok" else f"failed: {v.get('error')}" for k, v in obs.items()},
            a0_percent=_get(ok.get("eos") or ok.get("structure_eos"), "errors", "a0_percent"),
            B_percent=_get(ok.get("eos") or ok.get("structure_eos"), "errors", "B_percent"),
            elastic_mae_GPa=_get(ok.get("elastic"), "errors", "mae_GPa"),
            cauchy_error_GPa=_get(ok.get("elastic"), "errors", "cauchy", "GPa"),
            phonon_mae_THz=_get(ok.get("phonons"), "errors", "freq_mae_THz"),
            dos_overlap=_get(ok.get("phonons"), "errors", "dos_overlap"),
            imaginary=_get(obs.get("phonons"), "model", "imaginary"),
            vacancy_formation_error_eV=_get(ok.get("vacancy"), "errors", "formation_eV", "eV"),
            migration_error_eV=_get(ok.get("vacancy"), "errors", "migration_eV", "eV"),
            neb_converged=_get(obs.get("vacancy"), "model", "neb_converged"),
            rdf_w1=_get(ok.get("rdf"), "errors", "w1_mean"),
            survived=survived("model"), reference_survived=survived("reference"),
            nve_drift_meV_atom_ps=_get(obs.get("stability"), "model", "nve_drift_meV_atom_ps"),
            us_per_atom_step=_get(obs.get("speed"), "model", "us_per_atom_step_largest"),
            scaling_exponent=_get(obs.get("speed"), "model", "scaling_exponent"),
            wall_s={k: v.get("wall_s") for k, v in obs.items()},
        ))
    return rows


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def table(rows: list[ObservablesRow]) -> str:
    header = ["data set", "model", "a0 err", "B err", "Cij MAE", "Cauchy err", "phonon MAE", "DOS ovl", "imag",
              "Ef err", "Em err", "NEB conv", "RDF W1", "MD survived", "ref survived", "NVE drift",
              "speed", "exp", "failed"]
    units = ["", "", "%", "%", "GPa", "GPa", "THz", "", "", "eV", "eV", "", "Å", "", "", "meV/atom/ps",
             "µs/atom/step", "", ""]
    body = [[r.dataset, r.model, _fmt(r.a0_percent, ".2f"), _fmt(r.B_percent, ".1f"),
             _fmt(r.elastic_mae_GPa, ".1f"), _fmt(r.cauchy_error_GPa, "+.1f"), _fmt(r.phonon_mae_THz, ".3f"),
             _fmt(r.dos_overlap, ".3f"), _fmt(r.imaginary, ""), _fmt(r.vacancy_formation_error_eV, "+.3f"),
             _fmt(r.migration_error_eV, "+.3f"), _fmt(r.neb_converged, ""), _fmt(r.rdf_w1, ".4f"),
             r.survived or "-", r.reference_survived or "-", _fmt(r.nve_drift_meV_atom_ps, "+.3f"),
             _fmt(r.us_per_atom_step, ".1f"), _fmt(r.scaling_exponent, ".2f"),
             ",".join(k for k, v in r.status.items() if v != "ok") or "-"] for r in rows]
    return format_table(header, units, body)
