"""Issue 27: predictions kept at scoring time (the report and new metrics read them, no model is loaded), an old run
without them still reports, ``mlffbench show`` prints a full table, and the end-of-run summary is short and names
its flags."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from test_runner import TINY, by_name, run_main

from mlffbench import predictions
from mlffbench.cli import finish_run, main
from mlffbench.engine.store import RunStore, open_existing
from mlffbench.report import build_report

#: TINY plus a model worse than the baseline on a quantity (acegp B1 stress) and verification checks
CFG = {**TINY, "name": "tiny-pred",
       "models": [*TINY["models"], {"name": "acegp", "label": "b1",
                                    "params": {"n_max": 4, "descriptor": "B1", "l_max": 0}}],
       "tasks": {**TINY["tasks"], "checks": {"frames": 1}}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pred") / "run"
    jobs, _ = run_main(CFG, run_dir)
    assert all(j.status == "done" for j in jobs), [(j.name, j.error) for j in jobs if j.status != "done"]
    return run_dir, by_name(jobs)


def copy_run(finished, tmp_path):
    shutil.copytree(finished[0], tmp_path / "run")
    return tmp_path / "run"


def test_fit_job_stores_its_predictions_and_the_report_reads_them_without_the_model(finished, tmp_path, capsys):
    run_dir = copy_run(finished, tmp_path)
    job = finished[1]["accuracy:Cu:b1"]
    rel = predictions.relpath(job.inputs["job_id"])
    assert rel in job.result["artefacts"]  # recorded with its sha256 like the potential
    (test,) = predictions.load(run_dir / rel).values()
    store = open_existing(run_dir)
    split = store.split(job.result["split"]["id"])
    store.close()
    assert list(test.index) == list(split["tests"]["test"])  # the split's own indices
    overall = job.result["tests"]["test"]["overall"]
    assert predictions.score(test, "mae")["forces"] == pytest.approx(1e3 * overall["forces.mae"], rel=1e-9)
    for path in run_dir.glob("models/*/potential.json"):
        path.unlink()  # no model to load: the parity plots still draw from the stored predictions
    text = build_report(run_dir, out=tmp_path / "r.html")["html"].read_text()
    assert 'parity-Cu-forces' in text and "Not plotted" not in text
    assert "warning" not in capsys.readouterr().err
    assert main(["rescore", str(run_dir), "--metric", "median", "--task", "accuracy"]) == 0
    out = capsys.readouterr().out
    assert "F median" in out and " b1 " in out and "cold" in out  # overall and per group


def test_a_job_in_another_interpreter_stores_its_predictions_too(finished, tmp_path):
    """Family environments run the same job body through ``python -m mlffbench.worker``: it writes the file too."""
    import sys

    from mlffbench.engine import artefacts
    from mlffbench.engine.executors import run_in_subprocess

    run_dir = copy_run(finished, tmp_path)
    job = finished[1]["accuracy:Cu:mean_energy"]
    result = run_in_subprocess(sys.executable, "fit_score", {**job.inputs, "job_id": "in-a-worker"}, str(run_dir))
    rel = predictions.relpath("in-a-worker")
    assert rel in result["artefacts"] and not artefacts.problems(run_dir, result["artefacts"])
    mine = predictions.load(run_dir / rel)["test"]
    theirs = predictions.load(run_dir / predictions.relpath(job.inputs["job_id"]))["test"]
    assert np.array_equal(mine.forces_pred, theirs.forces_pred) and np.array_equal(mine.index, theirs.index)


def test_old_run_without_stored_predictions_reports_with_a_note(finished, tmp_path, capsys):
    run_dir = copy_run(finished, tmp_path)
    store = RunStore(run_dir)
    for job in store.jobs("fit_score"):  # as a run made before predictions were kept
        (run_dir / predictions.relpath(job.inputs["job_id"])).unlink()
        result = {**job.result, "artefacts": {k: v for k, v in job.result["artefacts"].items()
                                              if not k.endswith(predictions.FILE)}}
        store.finish(job.key, result, job.wall_s or 0.0)
    store.close()
    text = build_report(run_dir, out=tmp_path / "r.html")["html"].read_text()
    assert 'parity-Cu-forces' not in text
    note = "Not plotted (3): Cu labeler, Cu mean_energy, Cu b1: no stored predictions (the job ran before " \
           "mlffbench kept them"
    assert note in text
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]  # said once
    assert note in warning


def test_show_prints_a_full_table_from_the_store(finished, capsys):
    assert main(["show", str(finished[0]), "--task", "accuracy", "--dataset", "Cu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Accuracy") and "95% CI" in out and "b1" in out and "Verification" not in out
    assert main(["show", str(finished[0]), "--task", "nope"]) == 2


def test_summary_is_short_names_its_flags_and_the_b1_note_appears_once(finished, tmp_path):
    run_dir = copy_run(finished, tmp_path)
    store = open_existing(run_dir)
    jobs = list(store.jobs())
    store.close()
    text = finish_run(jobs, run_dir, [], ["a deviation"], report=False)
    lines = text.splitlines()
    assert len(lines) <= 30 and max(len(line) for line in lines if str(run_dir) not in line) <= 120, text
    (cu,) = [line for line in lines if line.startswith("Cu ")]
    assert " 2!< " in cu  # b1: second, fails the dimer check and is worse than the baseline on stress
    assert "Failed verification checks: 1" in text and "b1 smoothness_dimer on 1 (Cu)" in text
    assert "Worse than the baseline (mean_energy): 1" in text and "b1 stress MAE on 1 (Cu)" in text
    assert "Budget-limited fits: 0" in text and str(run_dir / "summary.txt") in text
    full = (run_dir / "summary.txt").read_text()
    from mlffbench.tasks.accuracy import B1_NOTE

    assert "Accuracy: each data set's split" in full and full.count(B1_NOTE) == 1 and "B1_NOTE" in text
