"""mlffbench.report: heatmaps, plots, correlations, claims, the self-contained HTML report (opened in headless
Chromium) and the cross-run leaderboard, on a tiny real run (ASE EMT labels, native ACE GP B1/B2)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from mlffbench.cli import main
from mlffbench.config import load_config
from mlffbench.engine.runner import MainJob
from mlffbench.report import build_report, correlations, observables, periodic, write_compare
from mlffbench.report.claims import check_claims
from mlffbench.report.collect import load_run, values
from mlffbench.report.figures import plt

ACE = {"n_max": 4}
TINY = {
    "name": "tiny-report",
    "seed": 0,
    "data": {"elements": ["Cu", "Pt"], "labeler": "emt", "frames_per_temperature": 8, "equilibration_fs": 200},
    "split": {"test_last": 0.25},
    "models": [{"name": "acegp", "label": "b1", "params": {**ACE, "descriptor": "B1", "l_max": 0}},
               {"name": "acegp", "label": "b2", "params": {**ACE, "descriptor": "B2", "l_max": 2}},
               {"name": "mean_energy"}],
    "tasks": {"transfer": {"train": "cold", "test": ["warm", "melt"]},
              "learning_curve": {"sizes": [6, 12, 18], "replicates": 1}, "checks": {},
              "calibration": {"train": "cold", "test": ["warm", "melt"]}},
    "execution": {"executor": "inprocess"},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    jobs = MainJob(load_config(path), root / "run").run(progress=False)
    assert all(j.status == "done" for j in jobs), [(j.name, j.error) for j in jobs if j.status != "done"]
    return root / "run"


@pytest.fixture(scope="module")
def report(run_dir):
    return build_report(run_dir, parity=True)


def artifacts_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MLFFBENCH_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


# ------------------------------------------------------------------------------------------ no run needed


def test_d_block_layout_and_positions():
    rows = periodic.d_block_symbols()
    assert rows[0] == ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn"]
    assert rows[2][0] == "Hf" and rows[2][-1] == "Hg" and rows[1][3] == "Tc"
    assert periodic.position("He") == (1, 18) and periodic.position("Al") == (3, 13)
    assert periodic.position("La") == (8, 3) and periodic.position("Hf") == (6, 4)


def test_heatmap_shares_one_colour_scale_prints_values_and_greys_missing():
    data = {"m1": {"Cu": 2.0, "Fe": 7.5}, "m2": {"Cu": 4.0, "W": 12.25}}
    fig = periodic.heatmap(data, layout="dblock", title="t", unit="%")
    bars = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert len(bars) == 1  # one colour bar for both model panels
    lo, hi = bars[0].get_ylim()
    assert (lo, hi) == pytest.approx((2.0, 12.25))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    for printed in ("2.00", "7.50", "4.00", "12.2"):
        assert printed in texts
    faces = [p.get_facecolor() for p in fig.axes[0].patches]
    grey = [f for f in faces if np.allclose(f[:3], [0xd9 / 255] * 3)]
    assert len(faces) == 27 and len(grey) == 25  # m1 has 2 of the 27 d-block metals
    plt.close(fig)
    full = periodic.heatmap(data, layout="full")
    assert len(full.axes[0].patches) == 103
    plt.close(full)


def test_linear_fit_and_eta_squared():
    slope, intercept, r2 = correlations.linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert (slope, intercept, r2) == pytest.approx((2.0, 1.0, 1.0))
    assert correlations.linear_fit([1, 2], [1, 2]) is None
    assert correlations.eta_squared(["a", "a", "b", "b"], [1, 1, 3, 3]) == pytest.approx(1.0)
    table = correlations.property_table(["Cu", "W"], [
        {"element": "Cu", "observables": {"elastic": {"reference": {"C12": 120.0, "C44": 75.0}}}}])
    assert table["n_d_holes"] == {"Cu": 0.0, "W": 24.0}  # (10 - N_d) N_d with W 5d4
    assert table["cauchy_pressure_GPa"] == {"Cu": 45.0}


def observables_entries() -> list[dict]:
    """Two models of one metal in the observables result shape (phonons in two path segments, with a None)."""
    q = np.linspace(0, 1, 5)
    bands = np.stack([np.sin(np.pi * q) * k for k in (3.0, 4.0, 6.0)], axis=1)
    ref_ph = {"distances": [q[:3].tolist(), q[2:].tolist()], "frequencies_THz": [bands[:3].tolist(),
              bands[2:].tolist()], "labels": ["GAMMA", "X", "L"], "label_distances": [0.0, 0.5, 1.0],
              "dos_THz": [0, 1], "dos": [0, 1], "imaginary": False, "min_frequency_THz": 0.0}
    mod_ph = {**ref_ph, "distances": q.tolist(), "frequencies_THz": (bands * 1.05).tolist(), "imaginary": True}
    mod_ph["frequencies_THz"][0][0] = None  # non-finite values are stored as null
    v = np.linspace(10, 14, 7)
    eos = {"volumes": v.tolist(), "energies": ((v - 12) ** 2 * 0.05 - 3.5).tolist(), "v0": 12.0, "e0": -3.5,
           "B_GPa": 140.0, "a0": 3.63}
    r = np.linspace(1, 6, 30)
    rdf = {"temperatures": {"warm": {"r": r.tolist(), "g_model": np.exp(-(r - 2.5) ** 2).tolist(),
                                     "g_reference": np.exp(-(r - 2.55) ** 2).tolist(), "w1": 0.02}}}
    runs = [{"protocol": "nvt", "target_K": 1000, "survived": True, "time_to_failure_ps": None,
             "reason": None, "simulated_ps": 10.0},
            {"protocol": "nvt", "target_K": 3000, "survived": False, "time_to_failure_ps": 2.5,
             "reason": "atoms closer than 0.5 Å", "simulated_ps": 2.5}]
    ok = {"status": "ok", "error": None, "wall_s": 1.0}
    a = {"phonons": {**ok, "model": mod_ph, "reference": ref_ph, "errors": {"mae_THz": 0.1}},
         "eos": {**ok, "model": eos, "reference": {**eos, "B_GPa": 150.0}, "errors": {"B_GPa": -10.0}},
         "rdf": {**ok, "model": rdf, "reference": {}, "errors": {"w1_mean": 0.02}},
         "stability": {**ok, "model": {"runs": runs, "nve_drift_meV_atom_ps": 0.3},
                       "reference": {"runs": runs[:1], "nve_drift_meV_atom_ps": 0.01}, "errors": {}}}
    b = {"phonons": {"status": "failed", "error": "model: RuntimeError: boom", "wall_s": 0.1,
                     "model": {"error": "RuntimeError: boom", "traceback": "..."}, "reference": ref_ph,
                     "errors": {}},
         "rdf": {**ok, "temperatures": rdf["temperatures"], "model": {}, "reference": {}, "errors": {}}}
    return [{"element": "Cu", "model": "acegp", "label": "m-a", "observables": a},
            {"element": "Cu", "model": "acegp", "label": "m-b", "observables": b}]


def test_observables_plots_from_result_shape():
    entries = observables_entries()
    fig = observables.phonon_figure(entries)
    ax = fig.axes[0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(dashed) == 6  # 3 reference branches x 2 path segments
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Γ", "X", "L"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "reference" in legend and "m-a (imaginary)" in legend
    assert any("boom" in t.get_text() for t in ax.texts)  # the failed model's reason is shown
    plt.close(fig)
    fig = observables.eos_figure(entries)
    assert len(fig.axes[0].lines) == 2 and "B=140 GPa" in fig.axes[0].get_legend().get_texts()[1].get_text()
    plt.close(fig)
    fig = observables.rdf_figure(entries)  # one entry at top level, one under "model"
    assert fig.axes[0].get_title() == "Cu warm" and len(fig.axes[0].lines) == 3
    plt.close(fig)
    fig = observables.stability_figure(entries)
    collections = fig.axes[0].collections
    assert len(collections) == 3  # reference survived, model survived, model failed
    failed = [c for c in collections if "failed" in c.get_label()]
    assert failed[0].get_offsets()[0][1] == pytest.approx(2.5)
    plt.close(fig)


# ---------------------------------------------------------------------------------------- on a tiny run


@pytest.mark.slow
def test_values_and_claims_come_from_the_store(run_dir):
    run = load_run(run_dir)
    assert set(run.models) == {"b1", "b2", "mean_energy"} and set(run.elements) == {"Cu", "Pt"}
    force = values(run, "force_percent", "full")
    (cu_b2,) = [r for r in run.results["accuracy"] if r["element"] == "Cu" and r["label"] == "b2"]
    assert force["b2"]["Cu"] == cu_b2["tests"]["test"]["overall"]["forces.percent"]
    assert values(run, "force_mae", "full")["b2"]["Cu"] == pytest.approx(
        1e3 * cu_b2["tests"]["test"]["overall"]["forces.mae"])
    assert force["mean_energy"]["Cu"] == pytest.approx(100.0)  # zero forces: MAE = MAV
    claims = {c.key: c for c in check_claims(run)}
    assert claims["early_harder"].status == "not tested"  # Cu and Pt are both late metals
    assert "Cu, Pt" in claims["early_harder"].evidence
    b2 = claims["b2_better"]
    assert b2.status in ("supported", "contradicted", "not enough data") and len(b2.details) == 2
    for d in b2.details:  # a comparison holds only when its interval (paired over the same frames) is above zero
        assert d["effect"] == pytest.approx(d["B1"] - d["B2"]) and d["lo"] <= d["effect"] <= d["hi"]
        assert d["holds"] == (d["lo"] > 0)
    assert b2.n == 2 and b2.lo <= b2.effect <= b2.hi
    assert b2.status == ("supported" if b2.lo > 0 else "contradicted" if b2.hi < 0 else "not enough data")
    melt = claims["melt_worse"]
    assert len(melt.details) == 4 and {d["model"] for d in melt.details} == {"b1", "b2"}  # baseline left out
    # every model worse than mean_energy on a quantity is flagged, and only those
    from mlffbench.tasks.accuracy import baseline_flags

    flags = baseline_flags(run.accuracy)
    base = {r.dataset: r for r in run.accuracy if r.family == "mean_energy"}
    worse = [(r.dataset, r.model, q) for r in run.accuracy if r.family != "mean_energy"
             for q in ("force_mae", "energy_mae", "stress_mae") if getattr(r, q) > getattr(base[r.dataset], q)]
    assert len(flags) == len(worse) and all(f"{d} {m}:" in " ".join(flags) for d, m, _ in worse)
    # checks ran on every potential; the calibration of the GP on cold frames, tested on warm and melt
    assert {(r.dataset, r.model) for r in run.checks} == {(d, m) for d in ("Cu", "Pt") for m in ("b1", "b2",
                                                                                              "mean_energy")}
    cal = [r for r in run.results["calibration"]]
    assert {r["label"] for r in cal} == {"b1", "b2"}  # mean_energy: n/a, predicts no uncertainty
    assert any(x["task"] == "calibration" and x["model"] == "mean_energy" for x in run.not_run)
    for r in cal:
        assert set(r["tests"]) == {"cold", "warm", "melt"}
        assert 0.0 <= r["tests"]["melt"]["uncertainty"]["ood_auc_vs_cold"] <= 1.0


@pytest.mark.slow
def test_parity_predictions_reproduce_the_stored_errors(run_dir):
    from mlffbench.report.predictions import parity

    run = load_run(run_dir)
    for r in run.results["accuracy"]:
        p = parity(run_dir, r, max_frames=None, max_points=None)  # the stored predictions, not thinned
        overall = r["tests"]["test"]["overall"]
        ref, pred = p.forces
        assert np.mean(np.abs(pred - ref)) == pytest.approx(1e3 * overall["forces.mae"], rel=1e-6)
        ref, pred = p.energy
        assert np.mean(np.abs(pred - ref)) == pytest.approx(1e3 * overall["energy_per_atom.mae"], rel=1e-6)


@pytest.mark.slow
def test_report_files_are_self_contained_and_hold_every_number(run_dir, report):
    text = report["html"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert links and all(x.startswith(("data:", "#")) for x in links), [x for x in links if "data:" not in x]
    assert "://" not in re.sub(r'src="data:[^"]*"', "", text)  # no external URL anywhere
    for section in ("summary", "accuracy", "transfer", "learning", "parity", "cost", "correlations", "checks",
                    "calibration"):
        assert f'id="{section}"' in text
    assert len(re.findall(r"<img ", text)) == 16  # 15 + the calibration curves
    assert "Predictions stored by each accuracy job" in text and "not tested" in text
    numbers = json.loads(report["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert {c["key"] for c in numbers["claims"]} == {"early_harder", "b2_better", "melt_worse", "hotter_harder"}
    import csv

    rows = list(csv.DictReader(report["csv"].open()))
    (cu_b2,) = [r for r in load_run(run_dir).results["accuracy"] if r["element"] == "Cu" and r["label"] == "b2"]
    hit = [r for r in rows if r["task"] == "accuracy" and r["split"] == "full" and r["element"] == "Cu"
           and r["model"] == "b2" and r["quantity"] == "forces" and r["stat"] == "mae"]
    assert len(hit) == 1 and hit[0]["unit"] == "meV_A"
    assert float(hit[0]["value"]) == pytest.approx(1e3 * cu_b2["tests"]["test"]["overall"]["forces.mae"])
    assert any(r["split"] == "cold->melt" for r in rows) and any(r["stat"] == "power_law_b" for r in rows)


@pytest.mark.slow
def test_report_and_compare_commands(run_dir, tmp_path, capsys):
    out = tmp_path / "r" / "x.html"
    assert main(["report", str(run_dir), "--out", str(out), "--no-parity"]) == 0
    assert out.is_file() and out.with_suffix(".csv").is_file() and 'id="parity"' not in out.read_text()
    assert main(["compare", str(run_dir), str(run_dir), "--out", str(tmp_path / "c.html")]) == 0
    printed = capsys.readouterr().out
    assert "b2" in printed and "mean_energy" in printed
    board = list(__import__("csv").DictReader((tmp_path / "c.csv").open()))
    assert len(board) == 6 and board[-1]["model"] == "mean_energy"  # ranked by force % error; baseline last
    text, _ = write_compare([run_dir], tmp_path / "one.html")
    assert text.splitlines()[0].split()[:3] == ["run", "model", "#"]


def test_report_of_a_non_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()


def chromium() -> str | None:
    return next((shutil.which(x) for x in ("chromium", "chromium-browser", "google-chrome") if shutil.which(x)),
                None)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("chromium not installed (scripts/install_browser.sh installs it as root)")
    url = report["html"].resolve().as_uri()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=10000"]
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    n_img = len(re.findall(r"<img ", report["html"].read_text()))
    rendered = re.search(r'data-figures-rendered="(\d+)/(\d+)"', dom.stdout)
    assert rendered, "the page's load handler did not run"
    assert rendered.groups() == (str(n_img), str(n_img)), rendered.group(0)
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console  # the page logs nothing unless something failed (JS error, broken figure)
    shot = artifacts_dir(tmp_path) / "report_top.png"
    run = subprocess.run(flags + ["--window-size=1280,1600", f"--screenshot={shot}", url], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = plt.imread(shot)
    assert pixels.shape[:2] == (1600, 1280) and float(pixels[..., :3].std()) > 0.05  # not a blank page
