"""Built-in data sets: the shipped real DFT (mlearn, acac) as listed, published potentials scored like models,
and the generated MS25-style sets (HEA, amorphous SiO2): same seed, same frames; an interrupted generation
resumes without redoing finished files."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mlffbench import datasets
from mlffbench.config import BuiltinConfig, load_config
from mlffbench.data.io import read_frames
from mlffbench.data.recipes import hea, silica
from mlffbench.datasets import builtin
from mlffbench.engine.runner import MainJob

TINY_HEA = {"compositions": 2, "frames": 2, "repeat": 2, "equilibration_ps": 0.1, "interval_ps": 0.05}
TINY_SILICA = {"units": 8, "replicas": 1, "randomize_ps": 0.05, "melt_ps": 0.05, "quench_ps": 0.1, "glass_ps": 0.05,
               "frames": {"melt": 2, "quench": 2, "glass": 2}}


@pytest.mark.parametrize("name", ["mlearn-Li", "acac"])
def test_shipped_data_sets_are_what_the_listing_says(name):
    b = builtin.REGISTRY[name]
    (ds,) = builtin.plan(BuiltinConfig(names=[name]), seed=0)
    assert ds.source == "builtin" and ds.elements == b.elements and ds.periodic == b.periodic
    assert (ds.n_frames - ds.n_test_files, ds.n_test_files) == b.frames
    assert set(ds.groups) == set(b.groups)
    assert all(f["path"].startswith("pkg:") for f in ds.data_inputs["files"])  # keys independent of the install
    assert ds.provenance["licence"] == b.licence and ds.provenance["citation"] == b.citation


def test_datasets_command_lists_every_built_in():
    out = subprocess.run([sys.executable, "-m", "mlffbench", "datasets"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in builtin.REGISTRY:
        assert name in out.stdout
    assert "BSD-3-Clause" in out.stdout and "MIT" in out.stdout and "J. Phys. Chem. A 124, 731" in out.stdout


def test_published_snap_is_scored_like_a_model_with_its_citation(tmp_path):
    """Zuo et al.'s SNAP on the mlearn Li test set through the engine equals the reference scorer's numbers."""
    from mlffbench.reference_scores import score_frames, snap_calculator

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": [{"source": "builtin", "names": ["mlearn-Li"]}],
                                   "models": [{"name": "published", "label": "snap",
                                               "params": {"potential": "zuo-snap"}}],
                                   "execution": {"executor": "inprocess"}}))
    (job,) = [j for j in MainJob(load_config(cfg), tmp_path / "run").run(progress=False) if j.kind == "fit_score"]
    assert job.status == "done", job.error
    r = job.result
    assert r["model_info"]["published"] and "J. Phys. Chem. A 124, 731" in r["model_info"]["citation"]
    test = [f for f in datasets.load(job.inputs["dataset"], tmp_path / "run") if f.info["subset"] == "test"]
    ref = score_frames(snap_calculator("Li", "snap"), test, model="snap", element="Li", split="test")
    o = r["tests"]["test"]["overall"]
    assert 1e3 * o["energy_per_atom.mae"] == pytest.approx(ref.energy_mae, rel=1e-9)
    assert o["forces.mae"] == pytest.approx(ref.force_mae, rel=1e-9)


def test_published_potential_refuses_elements_it_does_not_cover(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"datasets": [{"source": "builtin", "names": ["acac"]}],
                                   "models": [{"name": "published", "params": {"potential": "zuo-qsnap"}},
                                              {"name": "mean_energy"}]}))
    job = MainJob(load_config(cfg), tmp_path / "never")
    assert {j.name for j in job.plan()} == {"data:acac", "accuracy:acac:mean_energy"}
    (refused,) = job.not_run
    assert "does not cover C, H, O" in refused["reason"]


@pytest.mark.parametrize("recipe, name, params", [(hea, "hea-AlCoCrFeNi", TINY_HEA),
                                                  (silica, "silica", TINY_SILICA)])
def test_generated_sets_are_reproducible_and_resume(tmp_path, recipe, name, params):
    b = dataclasses.replace(builtin.REGISTRY[name], recipe_params=params)
    ds = recipe.plan(b, None, seed=0)
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        result = recipe.materialise(ds.data_inputs, folder)
    files = sorted(p.name for p in first.glob("*.extxyz"))
    assert files and all((first / f).read_bytes() == (second / f).read_bytes() for f in files)  # same seed, same frames
    assert result["n_frames"] == ds.n_frames and set(result["groups"]) == set(ds.groups)
    frames = datasets.load({"folder": "."}, first)
    assert len(frames) == ds.n_frames and all(np.isfinite(f.get_forces()).all() for f in frames)
    if recipe is hea:  # every element at least 10 %, the NPT cell moved off the ideal one
        for f in frames:
            counts = [f.get_chemical_symbols().count(el) for el in ds.elements]
            assert min(counts) >= 0.1 * len(f) and set(f.get_chemical_symbols()) == set(ds.elements)
        assert read_frames(first / hea.STRUCTURES, require=())[0].info["lattice"] == "fcc"
    # an interrupted generation: one file gone; only it is made again, identical
    victim, kept = first / files[-1], first / files[0]
    stamp = kept.stat().st_mtime_ns
    before = victim.read_bytes()
    victim.unlink()
    recipe.materialise(ds.data_inputs, first)
    assert victim.read_bytes() == before and (kept.stat().st_mtime_ns == stamp or kept == victim)
