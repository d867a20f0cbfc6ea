"""The training evidence of epoch-trained fits (result["training"], models.training.record) in every table, the
end-of-run summary, the leaderboard, the claims and the report: a run store filled with synthetic results (no
training, no data generation)."""

from __future__ import annotations

import json

import pytest

from mlffbench.engine.store import RunStore
from mlffbench.models.training import Curve, Training, outcome, record
from mlffbench.report import build_report, write_compare
from mlffbench.report import training as T
from mlffbench.report.collect import load_run
from mlffbench.report.figures import close
from mlffbench.summary import full_text, short_summary

from cli_helpers import cli

MODELS = ("mace", "nequip", "mean_energy")


def training_record(status: str, epochs: int = 30, max_epochs: int = 30) -> dict:
    """A record as an adapter writes it: a falling curve (budget: still falling at the end), a flat tail
    (converged) or a non-finite last epoch (diverged)."""
    protocol = Training(max_epochs=max_epochs, patience=5, precision="float32")
    curve = Curve()
    for e in range(1, epochs + 1):
        if status == "budget":
            f = 100.0 * 0.95 ** e
        elif status == "converged":
            f = 100.0 * 0.8 ** min(e, 10)
        else:
            f = 50.0 / e if e < epochs else float("nan")
        curve.add(e, 6.0 * e, valid={"loss": f / 10, "forces": f, "energy": f / 20}, train={"loss": f / 11})
    stopped = {"budget": "max_epochs", "converged": "patience", "diverged": "nan"}[status]
    end = outcome(curve, protocol, stopped, wall_s=6.0 * epochs)
    assert end["status"] == status, end
    return record(protocol, curve, end, "cpu (test)", 40, 5, notes=["loss weights E/F = 1/10, test"])


def result(dataset: str, model: str, force_mev: float, rec: dict | None, task: str = "accuracy") -> dict:
    overall = {"forces.mae": force_mev / 1e3, "forces.percent": force_mev / 10, "energy_per_atom.mae": 1e-3,
               "energy_per_atom.percent": 1.0, "stress.mae": 1e-4, "stress.percent": 2.0,
               "energy_per_atom.n": 10}
    r = {"task": task, "dataset": dataset, "element": dataset, "label": model, "model": model, "params": {},
         "n_train": 40, "split": {"id": "s1"}, "tests": {"test": {"n_test": 10, "overall": overall}},
         "cost": {"fit_s": 180.0, "predict_us_per_atom": 12.0, "peak_rss_mb": 500.0,
                  "hardware": {"node": "n1", "cpus": 2, "machine": "x86_64"}}}
    if rec is not None:
        r["training"] = rec
    return r


def make_run(path, statuses: dict) -> list:
    """A run directory whose store holds finished accuracy jobs: ``statuses`` {(data set, model): status or
    None (no training record)}."""
    store = RunStore(path)
    datasets = sorted({d for d, _ in statuses})
    store.set_provenance({"config": {"name": "training-report"},
                          "datasets": {d: {"name": d, "elements": [d], "collection": "t", "source": "generate",
                                           "fingerprint": f"fp-{d}"}
                                       for d in datasets}})
    force = {"mace": 20.0, "nequip": 25.0, "mean_energy": 400.0}
    for (d, m), status in statuses.items():
        key = f"accuracy:{d}:{m}"
        store.add_job(key, "fit_score", key, {"dataset": {"name": d}})
        store.start(key)
        store.finish(key, result(d, m, force[m], None if status is None else training_record(status)), 1.0)
    jobs = list(store.jobs())
    store.close()
    return jobs


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Cu: MACE budget-limited, NequIP converged; Pt: MACE converged, NequIP diverged; the baseline has no
    training record (not epoch-trained)."""
    path = tmp_path_factory.mktemp("training") / "run"
    jobs = make_run(path, {("Cu", "mace"): "budget", ("Cu", "nequip"): "converged", ("Cu", "mean_energy"): None,
                           ("Pt", "mace"): "converged", ("Pt", "nequip"): "diverged",
                           ("Pt", "mean_energy"): None})
    return path, jobs


def _row(text: str, *words: str) -> str:
    lines = [ln for ln in text.splitlines() if all(w in ln.split() for w in words)]
    assert lines, (words, text)
    return lines[0]


def test_budget_fit_is_marked_and_converged_is_not(mixed):
    path, jobs = mixed
    text = full_text(jobs, run_dir=path)
    acc = text.split("Cost per task")[0]
    assert _row(acc, "Cu", "mace").split()[2].endswith(T.BUDGET_MARK)  # the rank column: "1†"
    for d, m in (("Cu", "nequip"), ("Pt", "mace"), ("Cu", "mean_energy")):
        assert T.BUDGET_MARK not in _row(acc, d, m) and T.DIVERGED_MARK not in _row(acc, d, m)
    assert _row(acc, "Pt", "nequip").split()[2].endswith(T.DIVERGED_MARK)
    note = _row(acc, T.BUDGET_MARK, "Cu", "mace:")
    assert "max_epochs, 30/30 epochs" in note and "still improving" in note
    rec = training_record("budget")
    assert f"{100 * rec['improvement_last_10_epochs']:.1f} % per 10 epochs" in note

    summary = short_summary(jobs, path)
    ranking = summary.split("Accuracy ranking")[1].split("Training of")[0]
    cu, pt = _row(ranking, "Cu"), _row(ranking, "Pt")
    assert cu.split()[1] == "1=†" and pt.split()[1] == "1="  # MACE marked where budget-limited only
    nequip = [x for x in cu.split() + pt.split() if x.startswith("1=")]
    assert nequip == ["1=†", "1=", "1=", "1=", "1=×", "1="]  # NequIP: converged on Cu, diverged on Pt
    assert "Budget-limited fits: 1: training stopped by its budget while still improving: accuracy Cu mace" in \
        " ".join(summary.split())
    assert "Diverged fits" in summary and "accuracy Pt nequip" in summary


def test_training_table_rows(mixed):
    path, jobs = mixed
    for text in (full_text(jobs, run_dir=path), short_summary(jobs, path)):
        table = text.split("Training of the epoch-trained fits")[1]
        cu = _row(table, "Cu", "mace")
        assert cu.split()[:8] == ["Cu", "mace", "accuracy", "budget†", "max_epochs", "30/30", "30",
                                  f"{100 * 0.95 ** 30:.2f}"]
        assert "3.0" in cu.split()  # wall minutes: 30 epochs x 6 s
        assert "float32" in cu.split() and "40/5" in cu.split() and "cpu (test)" in cu
        assert _row(table, "Cu", "nequip").split()[3:5] == ["converged", "patience"]
        assert _row(table, "Pt", "nequip").split()[3:5] == ["diverged×", "non-finite"]
        assert not [ln for ln in table.splitlines() if "mean_energy" in ln.split()[:2]]  # not epoch-trained
    from mlffbench.summary import show

    assert _row(show(path, task="training"), "Cu", "mace").split()[3] == "budget†"  # mlffbench show --task training
    cost = full_text(jobs, run_dir=path).split("Cost per task")[1].split("Training of")[0]
    assert "cpu (test) float32" in _row(cost, "accuracy", "mace") and "cpu (test)" not in \
        _row(cost, "accuracy", "mean_energy")


def test_older_run_without_training_records_shows_nothing_new(tmp_path):
    jobs = make_run(tmp_path / "run", {("Cu", "mace"): None, ("Cu", "mean_energy"): None})
    text = full_text(jobs, run_dir=tmp_path / "run")
    assert "Training of the epoch-trained" not in text and T.BUDGET_MARK not in text.split("flags")[-1]
    assert "Training of the epoch-trained" not in short_summary(jobs, tmp_path / "run")
    paths = build_report(tmp_path / "run", parity=False)
    assert 'id="training"' not in paths["html"].read_text(encoding="utf-8")


def test_report_draws_the_training_curves_and_marks(mixed, tmp_path):
    path, _ = mixed
    run = load_run(path)
    fig = T.figure(T.curve_results(run))
    assert fig is not None and len(fig.axes) == 4  # Cu and Pt, each vs wall time and vs epoch
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert {line.get_label() for line in fig.axes[0].lines} == {"mace†", "nequip"}
    assert len(fig.axes[1].lines[0].get_xdata()) == 30
    close(fig)
    out = tmp_path / "report.html"
    paths = build_report(path, out, parity=False)
    html = out.read_text(encoding="utf-8")
    assert 'alt="training-curves"' in html and "budget†" in html and "diverged×" in html
    numbers = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert {(t["dataset"], t["model"], t["status"]) for t in numbers["training"]} == {
        ("Cu", "mace", "budget"), ("Cu", "nequip", "converged"), ("Pt", "mace", "converged"),
        ("Pt", "nequip", "diverged")}


def test_training_section_empty_state_without_curves(mixed):
    path, _ = mixed
    run = load_run(path)
    for rs in run.results.values():
        for r in rs:
            if r.get("training"):
                r["training"] = {**r["training"], "curve": []}
    assert T.figure(T.curve_results(run)) is None
    html = T.section(run, {})
    assert "No training curves" in html and "budget†" in html


def test_compare_and_claims_say_a_row_is_budget_limited(mixed, tmp_path):
    path, _ = mixed
    text, _ = write_compare([path], tmp_path / "compare.html")
    mace = _row(text, "training-report", "mace")
    assert "†" in mace.split()[2] and "Cu: training stopped by its budget" in mace
    assert "†" not in _row(text, "training-report", "mean_energy")
    r = cli("compare", path, "--out", tmp_path / "c2.html")
    assert r.returncode == 0 and "† Cu: training stopped by its budget" in r.stdout, r.stderr
    from mlffbench.report.claims import Claim, _marked_fits, rests_on_text

    claim = Claim("x", "a claim", "supported", "", details=[{"model": "mace", "dataset": "Cu", "effect": 1.0}],
                  datasets=["Cu", "Pt"])
    claim.training = _marked_fits(load_run(path), claim)
    assert list(claim.training) == ["† Cu mace"]  # Pt mace converged; NequIP is not in the comparisons
    assert "budget-limited or diverged fits among the comparisons: † Cu mace (training stopped" in \
        rests_on_text(claim)
