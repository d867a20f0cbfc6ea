"""Observables and crash tests with tiny settings: EMT Cu (fast, known physics) and the LAMMPS labeler."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.io import read

from mlffbench.errors import ConfigError
from mlffbench.observables import NAMES, Settings, module, run_all


TINY = Settings().tiny()


class FlippedForcesEMT(EMT):
    """A deliberately broken potential: EMT energy and stress, forces with the wrong sign."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results["forces"] = -self.results["forces"]


class VolumeEnergy(Calculator):
    """E = V (no minimum): every EOS fit must be recorded as failed."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        v = self.atoms.get_volume()
        self.results = {"energy": v, "free_energy": v, "forces": np.zeros((len(self.atoms), 3)),
                        "stress": np.array([1.0, 1.0, 1.0, 0, 0, 0])}


@pytest.fixture(scope="module")
def emt_self(tmp_path_factory):
    """Every observable for EMT Cu scored against itself."""
    return run_all("Cu", NAMES, EMT(), EMT(), TINY, tmp_path_factory.mktemp("obs"))


@pytest.mark.slow  # shares one ~20 s fixture: every observable for EMT Cu
def test_every_result_has_the_envelope_and_is_strict_json(emt_self):
    assert set(emt_self) == set(NAMES)
    for name, result in emt_self.items():
        assert result["status"] == "ok", (name, result["error"])
        assert {"status", "error", "wall_s", "model", "reference", "errors", "settings"} <= set(result)
        assert result["settings"]["eos_points"] == TINY.eos_points
        json.dumps(result, allow_nan=False)


@pytest.mark.slow  # shares one ~20 s fixture: every observable for EMT Cu
def test_reference_against_itself_has_zero_error(emt_self):
    eos = emt_self["eos"]["errors"]
    assert eos["a0_percent"] == eos["v0_percent"] == eos["B_percent"] == 0.0
    assert eos["murnaghan"]["B_percent"] == 0.0
    elastic = emt_self["elastic"]["errors"]
    assert all(elastic[c]["GPa"] == 0.0 for c in ("C11", "C12", "C44", "cauchy")) and elastic["mae_GPa"] == 0.0
    ph = emt_self["phonons"]["errors"]
    assert ph["freq_mae_THz"] == ph["freq_rmse_THz"] == 0.0 and ph["dos_overlap"] == pytest.approx(1.0)
    vac = emt_self["vacancy"]["errors"]
    assert vac["formation_eV"]["eV"] == vac["migration_eV"]["eV"] == 0.0
    rdf = emt_self["rdf"]["errors"]
    assert rdf["w1_mean"] == 0.0 and all(t["g_mae"] == 0.0 for t in rdf["temperatures"].values())
    st = emt_self["stability"]
    for m, r in zip(st["model"]["runs"], st["reference"]["runs"]):
        assert {k: v for k, v in m.items() if k != "last_good_frame"} == \
            {k: v for k, v in r.items() if k != "last_good_frame"}
        assert np.array_equal(read(m["last_good_frame"]).positions, read(r["last_good_frame"]).positions)
    assert st["model"]["nve_drift_meV_atom_ps"] == st["reference"]["nve_drift_meV_atom_ps"]


@pytest.mark.slow  # shares one ~20 s fixture: every observable for EMT Cu
def test_emt_cu_known_physics(emt_self):
    eos = emt_self["eos"]["model"]
    assert eos["a0"] == pytest.approx(3.59, abs=0.01)  # EMT Cu lattice constant
    assert 100 < eos["B_GPa"] < 170 and eos["murnaghan"]["B_GPa"] > 0
    assert eos["fit"] == "birchmurnaghan" and len(eos["volumes"]) == TINY.eos_points
    assert max(eos["volumes"]) / min(eos["volumes"]) == pytest.approx(1.1 / 0.9, rel=1e-6)
    c = emt_self["elastic"]["model"]["constants_GPa"]
    assert c["C11"] > c["C12"] > 0 and c["C44"] > 0
    ph = emt_self["phonons"]["model"]
    assert not ph["imaginary"] and ph["min_frequency_THz"] > -TINY.phonon_imaginary_tol
    assert 6.0 < np.max(ph["frequencies_THz"]) < 9.0  # fcc Cu maximum ~7 THz
    assert np.shape(ph["frequencies_THz"]) == (TINY.phonon_path_points, 3)
    assert len(ph["labels"]) == len(ph["label_distances"]) and ph["labels"][0] == "G"
    vac = emt_self["vacancy"]["model"]
    assert 1.1 < vac["formation_eV"] < 1.3  # EMT Cu vacancy formation energy ~1.2 eV
    assert 0.3 < vac["migration_eV"] < 1.2 and vac["neb_converged"]
    assert len(vac["neb_energies"]) == TINY.neb_images + 2
    g = emt_self["rdf"]["model"]["temperatures"]["cold"]
    r, gr = np.array(g["r"]), np.array(g["g"])
    assert 2.3 < r[np.argmax(gr)] < 2.8  # first neighbour shell of fcc Cu (2.54 Å)
    assert all(run["survived"] for run in emt_self["stability"]["model"]["runs"])
    assert abs(emt_self["stability"]["model"]["nve_drift_meV_atom_ps"]) < 1.0
    speed = emt_self["speed"]["model"]
    assert math.isfinite(speed["scaling_exponent"]) and 0.3 < speed["scaling_exponent"] < 2.0
    assert speed["natoms"][0] == 32 and all(x > 0 for x in speed["us_per_atom_step"])


def test_broken_potential_is_caught_by_the_crash_test(tmp_path):
    settings = TINY.tiny(nve_steps=40)
    result = module("stability").run("Cu", FlippedForcesEMT(), EMT(), settings, tmp_path)
    assert result["status"] == "ok"  # a crash is a result, not an error
    for run in result["model"]["runs"]:
        assert run["survived"] is False and run["reason"]
        assert 0 < run["time_to_failure_ps"] <= run["simulated_ps"]
        assert os.path.exists(run["last_good_frame"])
    assert all(run["survived"] for run in result["reference"]["runs"])
    assert result["errors"]["model_survival_fraction"] == 0.0
    assert result["errors"]["reference_survival_fraction"] == 1.0


def test_failed_eos_fit_is_recorded_not_raised():
    result = module("eos").run("Cu", VolumeEnergy(), EMT(), TINY)
    assert result["status"] == "failed" and result["error"].startswith("model:")
    assert result["errors"] == {} and result["reference"]["B_GPa"] > 0


def test_lammps_reference_against_emt_scores_nonzero():
    """LAMMPS EAM Cu as reference, EMT as 'model': two different Cu models give real, finite errors."""
    from mlffbench.data.labelers import make_labeler

    labeler = make_labeler("lammps")
    if not labeler.supports(["Cu"]):
        pytest.skip("no LAMMPS Cu potential")
    ref = labeler.calculator(["Cu"])
    out = run_all("Cu", ["eos", "phonons"], EMT(), ref, TINY)
    assert out["eos"]["status"] == "ok" and out["phonons"]["status"] == "ok", out
    assert 0 < out["eos"]["errors"]["a0_percent"] < 5
    assert out["eos"]["reference"]["a0"] == pytest.approx(3.6, abs=0.08)
    assert 0 < out["phonons"]["errors"]["freq_mae_THz"] < 2 and 0 < out["phonons"]["errors"]["dos_overlap"] < 1


def test_task_runs_a_saved_potential_and_tabulates(tmp_path):
    from mlffbench.models.reference import LabelerPotential
    from mlffbench.tasks import observables as task

    path = tmp_path / "potential.json"
    LabelerPotential({"name": "emt"}).save(path)
    inputs = {"element": "Cu", "potential": str(path), "labeler": {"name": "emt"}, "model": "labeler",
              "label": "emt-self", "observables": ["eos", "speed"],
              "settings": {"eos_points": 7, "speed_sizes": [32, 108], "speed_steps": 1}}
    result = task.run(inputs, tmp_path)
    assert result["task"] == "observables" and set(result["observables"]) == {"eos", "speed"}
    assert result["observables"]["eos"]["errors"]["a0_percent"] == 0.0
    rows = task.summarise([result])
    assert rows[0].a0_percent == 0.0 and rows[0].phonon_mae_THz is None
    text = task.table(rows)
    assert "emt-self" in text and "Cu" in text


def test_bad_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown observable 'bandgap'"):
        run_all("Cu", ["eos", "bandgap"], EMT(), EMT(), TINY)
    with pytest.raises(ConfigError, match="observables.settings: unknown key"):
        Settings.from_dict({"eos_pts": 3})
    with pytest.raises(ConfigError, match="ramp_end"):
        Settings.from_dict({"ramp_end": 1.2})


# -- the task inside the engine: config -> accuracy fit (planned once) -> observables of that potential ----------

def _engine_config(tmp_path, names, **model):
    import yaml

    from mlffbench.config import load_config

    cfg = {"name": "obs", "seed": 0,
           "data": {"elements": ["Cu"], "labeler": "emt", "frames_per_temperature": 10, "equilibration_fs": 100},
           "split": {"test_last": 0.2},
           "models": [{"name": "acegp", "label": "b2", "params": {"n_max": 4, "l_max": 2}, **model}],
           "tasks": {"accuracy": True, "observables": {"names": names, "settings": TINY.to_dict()}},
           "execution": {"executor": "inprocess", "retries": 0}}
    path = tmp_path / "obs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.mark.slow  # trains a small ACE GP, then three tiny observables (~15 s)
def test_engine_runs_observables_on_the_accuracy_model(tmp_path):
    from mlffbench.engine.runner import MainJob, results_table

    jobs = MainJob(_engine_config(tmp_path, ["eos", "phonons", "rdf", "stability"]), tmp_path / "run").run(
        progress=False)
    assert all(j.status == "done" for j in jobs), [(j.name, j.error) for j in jobs]
    kinds = sorted(j.kind for j in jobs)
    assert kinds == ["data", "evaluate", "fit_score"]  # the accuracy fit is planned once for both tasks
    (obs,) = [j.result for j in jobs if j.kind == "evaluate"]
    assert obs["element"] == "Cu" and set(obs["observables"]) == {"eos", "phonons", "rdf", "stability"}
    eos = obs["observables"]["eos"]
    assert eos["status"] == "ok" and eos["reference"]["a0"] == pytest.approx(3.59, abs=0.02)
    assert 0 < eos["errors"]["a0_percent"] < 5  # a real trained model: close to, but not exactly, EMT
    text = results_table(jobs)
    assert "Observables" in text and "Accuracy" in text

    # the report draws the stored shape: model and reference curves in every figure
    from mlffbench.report import observables as plots

    for figure, min_lines in [(plots.eos_figure, 2), (plots.phonon_figure, 6), (plots.rdf_figure, 2)]:
        fig = figure([obs])
        assert len(fig.axes[0].lines) >= min_lines, figure.__name__
        plots.plt.close(fig)
    fig = plots.stability_figure([obs])
    assert len(fig.axes[0].collections) >= 2  # reference and model runs
    plots.plt.close(fig)


def test_engine_observables_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"tasks\.observables\.names\[1\]: unknown observable 'bandgap'"):
        _engine_config(tmp_path, ["eos", "bandgap"])
    with pytest.raises(ConfigError, match=r"tasks\.observables\.settings\.ramp_end"):
        import yaml

        from mlffbench.config import load_config

        cfg = {"name": "x", "models": [{"name": "mean_energy"}],
               "tasks": {"observables": {"settings": {"ramp_end": 1.0}}}}
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
        load_config(tmp_path / "bad.yaml")


def test_engine_records_observables_as_failed_when_the_fit_fails(tmp_path):
    """A fit that raises (an impossible cutoff slipped past planning): the observables job is recorded failed with
    the reason, and the run itself finishes."""
    from mlffbench.engine.runner import MainJob

    cfg = _engine_config(tmp_path, ["eos"])
    run_dir = tmp_path / "fail"
    job = MainJob(cfg, run_dir)
    planned = job.plan()
    fit = next(p for p in planned if p.kind == "fit_score")
    fit.inputs["params"] = {"n_max": 4, "l_max": 2, "cutoff": -1.0}  # an impossible fit: acegp raises
    job.plan = lambda: planned
    jobs = {j.kind: j for j in job.run(progress=False)}
    assert jobs["fit_score"].status == "failed"
    assert jobs["evaluate"].status == "failed" and "could not be trained" in jobs["evaluate"].error
