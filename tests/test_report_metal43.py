"""The report over all 43 metals (Metal-43 SI Figs 1-2, TM23 SI S2-S7): the 43-metal periodic-table layout and its
automatic choice, the across-element histogram and its numbers, correlation intervals, and the surrogate-for-DFT
captions. Synthetic per-element numbers (seeded), no run: fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlffbench import elements as E
from mlffbench.data.labelers.universal import describe
from mlffbench.report import correlations as corr
from mlffbench.report import histograms, periodic
from mlffbench.report import sections as S
from mlffbench.report.collect import RunData
from mlffbench.report.figures import plt

GREY = np.array([0xd9 / 255] * 3)
SEVENNET = {"name": "universal", "model": "sevennet"}
EAM = {"name": "lammps"}


def test_metal43_layout_places_all_43_metals_at_their_group_and_period():
    cells, width, height, *_ = periodic._layout("metal43")
    assert (width, height) == (13, 5) and len(cells) == 43
    where = {s: (x, y) for s, x, y in cells}
    assert set(where) == set(E.METAL43) and len(set(where.values())) == 43  # every metal, no two on one cell
    for s, (x, y) in where.items():
        group, period = x + 1, y + 2
        assert (group, period) == (E.get(s).group, E.get(s).period)
        assert periodic.position(s) == (period, group)  # ASE's atomic numbers agree with elements.py
    assert where["Li"] == (0, 0) and where["Al"] == (12, 1) and where["Hg"] == (11, 4) and where["Tl"] == (12, 4)
    fig = periodic.heatmap({"m": {"Li": 1.0, "Hf": 2.0, "Tl": 3.0}}, layout="metal43", unit="meV/Å")
    faces = [p.get_facecolor() for p in fig.axes[0].patches]
    assert len(faces) == 43 and sum(np.allclose(f[:3], GREY) for f in faces) == 40
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(E.METAL43) <= texts and {"1.00", "2.00", "3.00"} <= texts
    plt.close(fig)


def test_layout_is_chosen_from_the_elements():
    assert periodic.choose_layout(E.TM23) == "dblock"
    assert periodic.choose_layout([*E.TM23, "Li"]) == "metal43"  # any s/p/group-3 metal -> the 43-metal table
    assert periodic.choose_layout(["Sc"]) == "metal43" and periodic.choose_layout(E.METAL43) == "metal43"
    assert periodic.choose_layout(["Cu", "Si"]) == "full"
    fig = periodic.heatmap({"m": {"Cu": 1.0, "Na": 2.0}}, layout="auto")
    assert len(fig.axes[0].patches) == 43
    plt.close(fig)
    with pytest.raises(ValueError):
        periodic.heatmap({"m": {"Cu": 1.0}}, layout="round")


def test_mean_over_models_uses_the_elements_every_model_has():
    mean = periodic.mean_over_models({"a": {"Cu": 1.0, "Li": 4.0}, "b": {"Cu": 3.0}})
    assert mean == {"Cu": 2.0}


def synthetic(models=("nep", "mace"), elements=E.METAL43, seed=0):
    """{metric: {model: {element: value}}}: energy MAE meV/atom and force MAE meV/Å, seeded."""
    rng = np.random.default_rng(seed)
    return {"energy_mae": {m: {e: float(rng.gamma(2, 2) * (i + 1)) for e in elements} for i, m in enumerate(models)},
            "force_mae": {m: {e: float(rng.gamma(3, 20) * (i + 1)) for e in elements} for i, m in enumerate(models)}}


def test_histogram_numbers_figure_and_records():
    data = synthetic()
    data["force_mae"]["mace"].pop("Hg")
    stats = histograms.distributions(data)
    nep = np.array(list(data["energy_mae"]["nep"].values()))
    assert stats["energy_mae"]["nep"]["n"] == 43 and stats["force_mae"]["mace"]["n"] == 42
    assert stats["energy_mae"]["nep"]["mean"] == pytest.approx(nep.mean())
    assert stats["energy_mae"]["nep"]["std"] == pytest.approx(nep.std(ddof=1))
    assert histograms.summary([2.0])["std"] is None and histograms.summary([])["n"] == 0
    fig = histograms.histogram_figure(data)
    assert len(fig.axes) == 2
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 2 and legend[0].startswith("nep: ") and " ± " in legend[0] and "(n=43)" in legend[0]
    assert "meV/Å" in fig.axes[1].get_xlabel() and "meV/atom" in fig.axes[0].get_xlabel()
    plt.close(fig)
    recs = histograms.records(data, "run", "metal43", {"force_mae": {"Cu": 5.0}})
    mean = [r for r in recs if r["model"] == "nep" and r["quantity"] == "energy_per_atom"
            and r["stat"] == "mae_mean_over_elements"]
    assert len(mean) == 1 and mean[0]["value"] == pytest.approx(nep.mean()) and mean[0]["unit"] == "meV_atom"
    assert {r["stat"] for r in recs} >= {"n_elements", "mae_std_over_elements", "mae_mean_over_models"}
    assert [r for r in recs if r["element"] == "Cu"][0]["unit"] == "meV_A"


def test_correlations_over_43_metals_report_n_r_and_seeded_intervals():
    rng = np.random.default_rng(1)
    table = corr.property_table(list(E.METAL43), [])
    assert set(table) >= {"t_melt", "n_d", "n_d_holes", "group", "period"} and len(table["period"]) == 43
    errs = {e: 0.01 * table["t_melt"][e] + rng.normal(0, 5) for e in E.METAL43}
    data = {"m": errs, "few": {"Cu": 1.0, "Ag": 2.0}}
    fits = corr.correlations(data, table)
    by = {(f.prop, f.model): f for f in fits}
    t = by[("t_melt", "m")]
    r = np.corrcoef([table["t_melt"][e] for e in errs], list(errs.values()))[0, 1]
    assert t.n == 43 and t.r == pytest.approx(r) and t.r2 == pytest.approx(r ** 2)
    assert t.r_lo < t.r < t.r_hi and t.r2_lo < t.r2 < t.r2_hi and 0 < t.r_lo
    again = {(f.prop, f.model): f for f in corr.correlations(data, table)}
    assert again[("t_melt", "m")].to_dict() == t.to_dict()  # seeded: the report's intervals do not move
    assert {"prop", "model", "n", "slope", "intercept", "r2"} <= set(t.to_dict())  # older readers keep working
    for prop in ("structure", "block"):
        f = by[(prop, "m")]
        assert f.n == 43 and f.r is None and f.r2 is not None and f.r2_lo <= f.r2 <= f.r2_hi
    few = by[("t_melt", "few")]
    assert few.n == 2 and few.r is None and few.r_lo is None and few.r2 is None  # too few metals: nothing printed
    assert corr.block(E.get("Li")) == "s" and corr.block(E.get("Tl")) == "p" and corr.block(E.get("Zn")) == "d"
    assert corr.ci_text(-0.3, 0.25) == "[-0.30, 0.25]" and corr.ci_text(None, 1.0) == "-"
    assert corr.property_table(["Cu", "Si"], [])["t_melt"] == {"Cu": 1358.0}  # no facts for Si: left out
    fig = corr.correlation_figure(data, table, "force % error")
    legends = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any(x.startswith("m: r=") and "[" in x for x in legends) and any("η²=" in x for x in legends)
    plt.close(fig)


def test_surrogate_and_mixed_labeler_captions():
    sentence = describe(SEVENNET)
    assert "surrogate for DFT, not DFT" in sentence and "SevenNet-0" in sentence
    mixed = {"Cu": (EAM, "lammps:Cu_mishin(eam/alloy:Cu01.eam.alloy)"), "Au": (EAM, "lammps:Au(meam:library)"),
             "Ag": (EAM, None), "Hf": (SEVENNET, None), "Mn": (SEVENNET, None)}
    caption = periodic.labels_caption(mixed)
    assert caption == (f"Labels: SevenNet-0 surrogate: Mn Hf; lammps EAM/MEAM: Cu Ag Au. "  # kinds by first Z
                       f"SevenNet-0 surrogate: {sentence}.")
    only = periodic.labels_caption({"Hf": (SEVENNET, None), "Li": (SEVENNET, None)})
    assert only == f"Reference labels: {sentence}."
    assert periodic.labels_caption({"Cu": (EAM, None), "Ag": (EAM, None)}) == ""  # one labeler, not a surrogate
    assert periodic.labeler_kind({"name": "universal", "model": "chgnet"}) == "CHGNet 0.3.0 surrogate"
    assert periodic.labeler_kind({**SEVENNET, "checkpoint": "7net-0"}) == "SevenNet-0 surrogate"
    assert periodic.labeler_kind({**SEVENNET, "checkpoint": "7net-l3i5"}) == "SevenNet-0 surrogate (7net-l3i5)"
    assert periodic.labeler_kind({"name": "emt"}) == "ASE EMT"
    assert periodic.labeler_kind({"name": "gpaw"}, "lammps:Cu(eam/alloy:x)") == "GPAW DFT"  # relabelled MD frames


def fake_run(elements, models=("nep", "mace"), surrogate=()) -> RunData:
    """A RunData as load_run builds it, with accuracy results of synthetic numbers (no store)."""
    data = synthetic(models, elements)
    datasets, results = {}, []
    for e in elements:
        datasets[e] = {"name": e, "collection": "metal43", "elements": [e], "source": "generate",
                       "reference": SEVENNET if e in surrogate else EAM,
                       "labeled_by": None if e in surrogate else f"lammps:{e}(eam/alloy:{e}.eam.alloy)"}
        for m in models:
            overall = {"energy_per_atom.mae": data["energy_mae"][m][e] / 1e3,
                       "forces.mae": data["force_mae"][m][e] / 1e3, "forces.percent": data["force_mae"][m][e] / 10}
            results.append({"task": "accuracy", "dataset": e, "element": e, "label": m, "model": m,
                            "tests": {"test": {"overall": overall}}})
    return RunData(Path("."), "fake", {}, [], {"accuracy": results}, datasets)


def test_sections_on_a_43_metal_run_with_surrogate_labels():
    run = fake_run(E.METAL43, surrogate=("Hf", "Mn"))
    assert S.heatmap_layout(run) == "metal43"
    figs = S.heatmap_figures(run)
    anchors = [a for a, _, _ in figs]
    assert "heatmap-metal43-mean-force_mae-full" in anchors and "heatmap-metal43-mean-energy_mae-full" in anchors
    sentence = describe(SEVENNET)
    for anchor, caption, fig in figs:
        assert len(fig.axes[0].patches) == 43, anchor
        assert f"SevenNet-0 surrogate: {sentence}" in caption and "; SevenNet-0 surrogate: Mn Hf." in caption
        plt.close(fig)
    numbers: dict = {}
    html = S._distribution_html(run, numbers)
    assert 'alt="histogram-metal43"' in html and sentence in html
    recs = numbers["across_elements"]
    assert {r["model"] for r in recs} == {"nep", "mace", "mean over models"}
    assert len([r for r in recs if r["model"] == "mean over models"]) == 2 * 43
    corr_html = S.correlations_section(run, None, numbers)
    assert "r 95% CI" in corr_html and "R² 95% CI" in corr_html and "SevenNet-0 surrogate" in corr_html
    assert all("r_lo" in f for f in numbers["correlations"])
    assert f"Reference labels of Hf Mn: {sentence}" in S.surrogate_note(run, ["Cu", "Hf", "Mn"])
    assert S.surrogate_note(run, ["Cu"]) == ""
    assert "SevenNet-0 surrogate (not DFT)" in S.datasets_section(run)


def test_tm23_only_run_keeps_the_d_block_and_no_labeler_caption():
    run = fake_run(E.TM23[:4])
    assert S.heatmap_layout(run) == "dblock"
    figs = S.heatmap_figures(run)
    for anchor, caption, fig in figs:
        assert len(fig.axes[0].patches) == 27 and "Labels:" not in caption and "d block" in caption
        plt.close(fig)
    assert S._distribution_html(fake_run(E.TM23[:2]), {}) == ""  # fewer than 3 metals: no histogram
