"""The TM23 data protocol end to end on a small Cu config: files, metadata, labels, determinism, resume, relabel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlffbench import elements as elements_db
from mlffbench import frames as fr
from mlffbench.config import TM23_FRACTIONS, DataConfig
from mlffbench.data import sample
from mlffbench.data.io import read_frames
from mlffbench.data.labelers import make_labeler
from mlffbench.errors import MlffbenchError

LABELS = ("cold", "warm", "melt")
INFO_KEYS = (
    fr.ELEMENTS, fr.TEMPERATURE_LABEL, fr.TARGET_TEMPERATURE, fr.KINETIC_TEMPERATURE, fr.FRAME_INDEX,
    fr.TRAJECTORY, fr.LABELER,
)


def small_config(**kw) -> DataConfig:
    return DataConfig(elements=["Cu"], frames_per_temperature=5, equilibration_fs=200.0, **kw)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    calls = []
    summary = sample.generate(small_config(), out, progress=lambda el, label, sec: calls.append((el, label)))
    return out, summary, calls


def read_all(out):
    return {label: read_frames(sample.trajectory_path(out, "Cu", label)) for label in LABELS}


def test_files_and_summary(generated):
    out, summary, calls = generated
    for label in LABELS:
        assert (out / "Cu" / f"Cu_{label}.extxyz").is_file()
    assert calls == [("Cu", label) for label in LABELS]
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(on_disk) == {"Cu"} == set(summary)
    cell = json.loads((out / "Cu" / "cell.json").read_text())
    assert cell["natoms"] == 31
    assert cell["repeats"] == [2, 2, 2]
    assert cell["lattice"] == "fcc"
    assert cell["a"] == pytest.approx(3.615, abs=0.005)
    assert 0 <= cell["removed_atom"] < 32
    assert cell["labeler"] == make_labeler("lammps").provenance(["Cu"])
    for label in LABELS:
        entry = on_disk["Cu"]["trajectories"][label]
        assert entry["frames"] == 5
        assert entry["target_temperature"] == pytest.approx(TM23_FRACTIONS[label] * elements_db.get("Cu").t_melt)


def test_frames_metadata_and_labels(generated):
    out, _, _ = generated
    t_melt = elements_db.get("Cu").t_melt
    provenance = make_labeler("lammps").provenance(["Cu"])
    for label, frames in read_all(out).items():
        assert len(frames) == 5
        target = TM23_FRACTIONS[label] * t_melt
        for k, frame in enumerate(frames):
            for key in INFO_KEYS:
                assert key in frame.info, (label, key)
            assert frame.info[fr.ELEMENTS] == "Cu"
            assert frame.info[fr.TEMPERATURE_LABEL] == label
            assert frame.info[fr.TARGET_TEMPERATURE] == pytest.approx(target, rel=1e-12)
            assert frame.info[fr.FRAME_INDEX] == k
            assert frame.info[fr.TRAJECTORY] == f"Cu_{label}"
            assert frame.info[fr.LABELER] == provenance
            assert 0.2 * target < frame.info[fr.KINETIC_TEMPERATURE] < 2.5 * target
            assert len(frame) == 31
            assert all(fr.has_label(frame, name) for name in ("energy", "forces", "stress"))
        temps = [f.info[fr.KINETIC_TEMPERATURE] for f in frames]
        assert 0.4 * target < np.mean(temps) < 1.6 * target, (label, temps)


def test_hotter_trajectories_have_higher_energy(generated):
    out, _, _ = generated
    mean_energy = {label: np.mean([fr.label(f, "energy") for f in frames]) for label, frames in read_all(out).items()}
    assert mean_energy["cold"] < mean_energy["warm"] < mean_energy["melt"]


def test_stored_labels_match_the_labeler(generated):
    out, _, _ = generated
    calc = make_labeler("lammps").calculator(["Cu"])
    for frames in read_all(out).values():
        for frame in frames[:2]:
            atoms = frame.copy()
            atoms.calc = calc
            # positions are stored with 8 decimals, so the comparison is at that level
            assert atoms.get_potential_energy() == pytest.approx(fr.label(frame, "energy"), abs=1e-5)
            np.testing.assert_allclose(atoms.get_forces(), fr.label(frame, "forces"), atol=1e-5)
            np.testing.assert_allclose(atoms.get_stress(), fr.label(frame, "stress"), atol=1e-6)


def test_generate_is_deterministic(generated, tmp_path):
    out, summary, _ = generated
    other = tmp_path / "again"
    summary2 = sample.generate(small_config(), other)
    for label in LABELS:
        first = sample.trajectory_path(out, "Cu", label).read_bytes()
        second = sample.trajectory_path(other, "Cu", label).read_bytes()
        assert first == second, label
    assert (out / "Cu" / "cell.json").read_text() == (other / "Cu" / "cell.json").read_text()
    assert summary2["Cu"]["cell"] == summary["Cu"]["cell"]


def test_different_seed_gives_different_data(generated, tmp_path):
    out, _, _ = generated
    sample.generate(small_config(), tmp_path, seed=1)
    a = read_frames(sample.trajectory_path(out, "Cu", "warm"))
    b = read_frames(sample.trajectory_path(tmp_path, "Cu", "warm"))
    assert not np.allclose(a[-1].positions, b[-1].positions, atol=1e-3)


def test_second_call_reuses_files_and_resumes(tmp_path):
    cfg = small_config()
    sample.generate(cfg, tmp_path)
    paths = {label: sample.trajectory_path(tmp_path, "Cu", label) for label in LABELS}
    stamps = {label: path.stat().st_mtime_ns for label, path in paths.items()}
    contents = {label: path.read_bytes() for label, path in paths.items()}

    summary = sample.generate(cfg, tmp_path)  # nothing to do: files are reused, not rewritten
    for label, path in paths.items():
        assert path.stat().st_mtime_ns == stamps[label], label
        assert path.read_bytes() == contents[label]
    assert summary["Cu"]["trajectories"]["warm"]["frames"] == 5

    # an interrupted run: one trajectory missing -> only that one is (re)made, identically
    paths["warm"].unlink()
    sample.generate(cfg, tmp_path)
    assert paths["warm"].read_bytes() == contents["warm"]
    for label in ("cold", "melt"):
        assert paths[label].stat().st_mtime_ns == stamps[label]

    # a truncated file (fewer frames than configured) is redone, identically
    frames = read_frames(paths["cold"])[:3]
    from mlffbench.data.io import write_frames

    write_frames(paths["cold"], frames)
    summary = sample.generate(cfg, tmp_path)
    assert summary["Cu"]["trajectories"]["cold"]["frames"] == 5
    assert paths["cold"].read_bytes() == contents["cold"]


def test_changed_config_never_reuses_stale_files(tmp_path):
    cfg = small_config()
    sample.generate(cfg, tmp_path)
    before = read_frames(sample.trajectory_path(tmp_path, "Cu", "warm"))
    cfg.equilibration_fs = 400.0
    sample.generate(cfg, tmp_path)
    after = read_frames(sample.trajectory_path(tmp_path, "Cu", "warm"))
    assert len(after) == len(before)
    assert not np.allclose(after[0].positions, before[0].positions)


def test_relabel_with_emt(generated, tmp_path):
    out, _, _ = generated
    sample.generate(small_config(relabel="emt"), tmp_path)
    emt = make_labeler("emt")
    md_provenance = make_labeler("lammps").provenance(["Cu"])
    plain = read_all(out)
    relabelled = read_all(tmp_path)
    from ase.calculators.emt import EMT

    for label in LABELS:
        assert len(relabelled[label]) == 5
        for frame, md_frame in zip(relabelled[label], plain[label]):
            assert frame.info[fr.LABELER] == emt.provenance(["Cu"])
            assert frame.info["md_labeler"] == md_provenance
            assert frame.info[fr.TRAJECTORY] == f"Cu_{label}"
            assert frame.info[fr.KINETIC_TEMPERATURE] == pytest.approx(md_frame.info[fr.KINETIC_TEMPERATURE])
            # same trajectory (the MD labeler drives it), new labels
            np.testing.assert_array_equal(frame.positions, md_frame.positions)
            ref = frame.copy()
            ref.calc = EMT()
            assert fr.label(frame, "energy") == pytest.approx(ref.get_potential_energy(), abs=1e-5)
            np.testing.assert_allclose(fr.label(frame, "forces"), ref.get_forces(), atol=1e-5)
            np.testing.assert_allclose(fr.label(frame, "stress"), ref.get_stress(), atol=1e-6)
            assert abs(fr.label(frame, "energy") - fr.label(md_frame, "energy")) > 10.0  # EMT zero vs -3.5 eV/atom


def test_generate_element_directly(tmp_path):
    labeler = make_labeler("lammps")
    cfg = small_config(temperatures={"hot": 0.5})
    result = sample.generate_element("Cu", cfg, tmp_path, labeler, None, seed=0)
    assert set(result["trajectories"]) == {"hot"}
    frames = read_frames(tmp_path / "Cu" / "Cu_hot.extxyz")
    assert len(frames) == 5
    assert frames[0].info[fr.TARGET_TEMPERATURE] == pytest.approx(0.5 * elements_db.get("Cu").t_melt)
    assert frames[0].info[fr.TEMPERATURE_LABEL] == "hot"
    assert result["cell"]["natoms"] == 31


def test_element_seed_is_stable_and_distinct():
    assert sample.element_seed(0, "Cu", "warm") == sample.element_seed(0, "Cu", "warm")
    seeds = {sample.element_seed(s, el, label) for s in (0, 1) for el in ("Cu", "Ni") for label in LABELS}
    assert len(seeds) == 12
    assert all(0 <= s < 2**32 for s in seeds)


def test_element_resolution():
    lammps = make_labeler("lammps")
    emt = make_labeler("emt")
    covered = sample.covered_elements(lammps)
    assert covered == [el for el in elements_db.TM23 if el in set(covered)]  # TM23 order
    assert "Cu" in covered and "Os" not in covered and "Mn" not in covered
    assert sample.covered_elements(emt) == ["Ag", "Au", "Cu", "Ni", "Pd", "Pt"]
    assert sample.resolve_elements(DataConfig(elements="covered", labeler="emt")) == sample.covered_elements(emt)
    assert sample.resolve_elements(DataConfig(elements=["Cu", "Ni"])) == ["Cu", "Ni"]
    with pytest.raises(MlffbenchError, match="Fe"):
        sample.resolve_elements(DataConfig(elements=["Fe"], labeler="emt"))
    with pytest.raises(MlffbenchError, match="Os"):
        sample.resolve_elements(DataConfig(elements=["Os"]))


def test_generate_refuses_unlabelable_element_before_writing(tmp_path):
    with pytest.raises(MlffbenchError, match="Fe"):
        sample.generate(DataConfig(elements=["Fe"], labeler="emt", frames_per_temperature=2), tmp_path / "x")
    assert not (tmp_path / "x" / "Fe").exists()
