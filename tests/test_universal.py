"""The universal-potential labeler (a surrogate for DFT), temperatures per label, per-element labelers, the
complex ground states and the built-in tm23-all / metal43 configs."""

from __future__ import annotations

import numpy as np
import pytest

from mlffbench import elements as elements_db
from mlffbench.config import load_config
from mlffbench.config.datasets import DataConfig
from mlffbench.data import build, temperatures
from mlffbench.datasets.base import DataSummary
from mlffbench.engine.runner import MainJob, _data_env
from mlffbench.errors import ConfigError
from mlffbench.models.adapters.zeroshot import ChgnetModel, SevennetModel

UNIVERSAL = {"name": "universal", "model": "sevennet", "checkpoint": "7net-0"}


def test_temperature_forms_per_element():
    assert temperatures.kelvin(0.25, "Cu") == pytest.approx(0.25 * 1358)
    assert temperatures.kelvin("1.25 T_melt", "Cu") == pytest.approx(1.25 * 1358)
    assert temperatures.kelvin("300 K", "W") == 300
    assert temperatures.kelvin("0.5 T_c", "Cu") == pytest.approx(679.0)  # exact fraction of T_c
    assert temperatures.kelvin("metal43 0.5T_c", "Cu") == 678  # as printed in SI Table 1 (1358 / 2 = 679)
    assert temperatures.kelvin("metal43 1.2T_c", "Ni") == 2138  # printed (1.2 x 1728 = 2073.6): kept, noted
    assert temperatures.kelvin("0.5 T_c", "K") == pytest.approx(0.5 * 403 / 1.2)  # blank T_c: 1.2T_c / 1.2
    assert temperatures.kelvin("0.5 T_c", "Hg") is None  # no T_c at all
    # blank cells: no MD there, as in the paper
    metal43 = {"300K": "metal43 300K", "half": "metal43 0.5T_c", "tc": "metal43 T_c", "hot": "metal43 1.2T_c"}
    assert list(temperatures.for_element(metal43, "K")) == ["300K", "hot"]
    assert list(temperatures.for_element(metal43, "Hg")) == ["300K"]
    assert list(temperatures.for_element(metal43, "Be")) == ["300K", "half", "tc", "hot"]
    for bad, message in [("hot", "is not a temperature"), ("metal43 2T_c", "has columns"), (-0.1, "positive"),
                         ("0 K", "positive")]:
        with pytest.raises(ConfigError, match=f"data.temperatures.x: .*{message}"):
            temperatures.check("data.temperatures.x", bad)


def test_labeler_preference_list_and_per_element_override():
    cfg = DataConfig(elements=["Cu", "Hf"], labeler=["lammps", UNIVERSAL], element_labelers={"W": "emt"})
    assert cfg.labeler_for("Cu") == "lammps" and cfg.labeler_for("Hf") == UNIVERSAL  # no EAM for Hf in the wheel
    assert cfg.protocol("Hf")["labeler"] == UNIVERSAL and "element_labelers" not in cfg.protocol("Hf")
    assert cfg.reference("Cu") == {"name": "lammps"}
    with pytest.raises(ConfigError, match=r"data.element_labelers.W: 'emt' cannot label W"):
        DataConfig(elements=["W"], labeler="lammps", element_labelers={"W": "emt"}).check("data")
    with pytest.raises(ConfigError, match=r"data.elements\[1\]: labeler 'lammps' cannot label Hf"):
        DataConfig(elements=["Cu", "Hf"], labeler="lammps").check("data")
    with pytest.raises(ConfigError, match=r"data.labeler\[1\]: universal labeler: model 'mace'"):
        DataConfig(elements=["Cu"], labeler=["lammps", {"name": "universal", "model": "mace"}]).check("data")
    with pytest.raises(ConfigError, match="does not ship in the sevenn wheel"):
        DataConfig(elements=["Cu"], labeler={"name": "universal", "checkpoint": "7net-omni"}).check("data")
    # configs from before the new fields keep their data-job inputs (so their job keys)
    assert "element_labelers" not in DataConfig().protocol()


def test_complex_ground_states_build():
    mn = build.prototype("Mn", "alpha_Mn", 8.6)
    ga = build.prototype("Ga", "Cmce", 4.5)
    assert len(mn) == 58 and len(ga) == 8
    assert mn.cell.lengths() == pytest.approx([8.6] * 3)
    for atoms, nearest in ((mn, 2.18), (ga, 2.45)):  # experimental shortest bonds, scaled
        d = atoms.get_all_distances(mic=True)
        assert np.min(d[d > 0]) == pytest.approx(nearest, abs=0.05)
    assert all(elements_db.get(el).lattice in build.BUILDABLE for el in elements_db.METAL43)


def test_builtin_configs_plan_every_metal():
    tm23 = MainJob(load_config("tm23-all"), "/nonexistent/tm23-all")
    tm23.plan()
    assert sorted(d.name for d in tm23.datasets) == sorted(elements_db.TM23)
    metal43 = MainJob(load_config("metal43"), "/nonexistent/metal43")
    jobs = metal43.plan()
    by_name = {d.name: d for d in metal43.datasets}
    assert sorted(by_name) == sorted(elements_db.METAL43)
    assert list(by_name["K"].groups) == ["300K", "1.2Tc"] and list(by_name["Hg"].groups) == ["300K"]
    assert by_name["Hf"].reference == UNIVERSAL
    data_jobs = [j for j in jobs if j.kind == "data"]
    assert {_data_env(j) for j in data_jobs} == {"env:sevenn"}  # the MD and labels run in SevenNet's environment
    assert not any(j.kind == "data" for j in MainJob(load_config("quick"), "/x").plan() if _data_env(j))


def test_zero_shot_model_that_made_the_labels_is_refused():
    summary = DataSummary("Hf", ("Hf",), True, True, True, 10, None, UNIVERSAL)
    assert "circular" in SevennetModel.refuse(summary, {})
    assert SevennetModel.refuse(summary, {"kwargs": {"model": "7net-l3i5"}}) is None  # another checkpoint
    assert ChgnetModel.refuse(summary, {}) is None
    chgnet_labels = DataSummary("Hf", ("Hf",), True, True, True, 10, None, {"name": "universal", "model": "chgnet"})
    assert "circular" in ChgnetModel.refuse(chgnet_labels, {})


def test_universal_labeler_generates_in_its_environment(tmp_path):
    """A tiny generated data set labelled by SevenNet-0: the data job runs in the sevenn environment, every frame
    says 'surrogate for DFT', the same model reached from here (through a pipe) reproduces a label, and the zero-shot
    SevenNet-0 is refused as circular while the run goes on."""
    from mlffbench.config import from_dict
    from mlffbench.config.run import RunConfig
    from mlffbench.data.io import read_frames
    from mlffbench.data.labelers import make_labeler
    from mlffbench.envs import EnvBuildError, python_of_env

    try:
        python_of_env("sevenn", quiet=True)
    except EnvBuildError as exc:
        pytest.skip(f"sevenn environment unavailable: {exc}")
    cfg = from_dict(RunConfig, {
        "name": "universal", "seed": 0,
        "data": {"elements": ["Al"], "labeler": {**UNIVERSAL, "threads": 1}, "temperatures": {"room": "300 K"},
                 "frames_per_temperature": 3, "equilibration_fs": 10, "interval_fs": 10, "timestep_fs": 5,
                 "min_length": 3.0},
        "split": {"test_last": 1},
        "models": [{"name": "mean_energy"}, {"name": "sevennet"}],
        "tasks": {"accuracy": True, "transfer": None, "learning_curve": None},
        "execution": {"executor": "inprocess", "retries": 0}})
    job = MainJob(cfg, tmp_path / "run")
    jobs = {j.name: j for j in job.run(progress=False)}
    assert jobs["data:Al"].status == "done", jobs["data:Al"].error
    assert any(p.name.startswith("data-") for p in (tmp_path / "run" / "jobs").iterdir())  # ran in the env's worker
    frames = read_frames(next((tmp_path / "run").rglob("Al_room.extxyz")))
    assert len(frames) == 3 and all("surrogate for DFT" in f.info["labeler"] for f in frames)
    assert all(np.isfinite(f.info["energy"] if "energy" in f.info else f.get_potential_energy()) for f in frames)
    remote = make_labeler(UNIVERSAL).calculator(["Al"])  # main venv: RemotePotential into the sevenn env
    atoms = frames[0].copy()
    atoms.calc = remote
    assert atoms.get_potential_energy() == pytest.approx(frames[0].get_potential_energy(), abs=1e-3)
    remote.close()
    assert jobs["accuracy:Al:mean_energy"].status == "done"
    assert any("circular" in n["reason"] for n in job.not_run if n["model"] == "sevennet")
