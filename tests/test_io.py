"""Readers and writer of mlffbench.data.io: round trips, TM23 names, mlearn JSON units/sign/shear order, bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ase
import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import bulk

from mlffbench import frames as fr
from mlffbench.data import io
from mlffbench.data.io import parse_tm23_name, read_frames, write_frames
from mlffbench.errors import DataError
from mlffbench.units import KBAR

MLEARN = Path("/work/shared/data/mlearn")
ASE_VASP_DATA = Path(ase.__file__).parent / "test" / "testdata" / "vasp"
VOIGT = {(1, 2): 3, (0, 2): 4, (0, 1): 5}  # (i, j) of a shear -> ASE Voigt index (yz, xz, xy)


def make_frames(n: int = 3, symbol: str = "Cu") -> list:
    """Small labelled fcc frames with random labels and some metadata."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        atoms = bulk(symbol, "fcc", 3.6, cubic=True).repeat(2)
        atoms.rattle(0.05, seed=k)
        out.append(
            fr.labelled(
                atoms,
                energy=-100.0 + k,
                forces=rng.normal(size=(len(atoms), 3)),
                stress=rng.normal(size=6) * 1e-3,
                group="AIMD-NVT",
                description=f"snapshot {k} of {n}",
                temperature_label="warm",
                target_temperature=1250.0,
                frame_index=k,
            )
        )
    return out


def assert_same_frames(expected, got, check_info=True):
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        # extxyz writes per-atom columns with 8 decimals; energy, stress, cell and info at full precision
        np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-8)
        np.testing.assert_allclose(np.asarray(b.cell), np.asarray(a.cell), rtol=0, atol=1e-12)
        assert list(b.pbc) == list(a.pbc)
        assert fr.label(b, "energy") == pytest.approx(fr.label(a, "energy"), rel=0, abs=1e-12)
        np.testing.assert_allclose(fr.label(b, "forces"), fr.label(a, "forces"), rtol=0, atol=1e-8)
        np.testing.assert_allclose(fr.label(b, "stress"), fr.label(a, "stress"), rtol=1e-12, atol=0, equal_nan=True)
        if check_info:
            for key, value in a.info.items():
                assert b.info[key] == value, key


# --- extxyz -----------------------------------------------------------------------------------------------


def test_extxyz_round_trip(tmp_path):
    frames = make_frames()
    path = tmp_path / "frames.xyz"
    write_frames(path, frames)
    got = read_frames(path, require=("energy", "forces", "stress"))
    assert_same_frames(frames, got)
    assert got[0].info[fr.SOURCE] == str(path)
    assert got[0].info[fr.ELEMENTS] == "Cu"
    assert [os.path.basename(p) for p in os.listdir(tmp_path)] == ["frames.xyz"]  # no temp file left
    assert path.stat().st_mode & 0o777 == 0o666 & ~io._umask()  # a normal file, not mkstemp's 0600


def test_extxyz_index_selection(tmp_path):
    path = tmp_path / "frames.extxyz"
    write_frames(path, make_frames(4))
    assert len(read_frames(path, index="1:")) == 3
    last = read_frames(path, index=-1)
    assert len(last) == 1 and fr.label(last[0], "energy") == pytest.approx(-97.0)


def test_write_failure_leaves_old_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "frames.xyz"
    write_frames(path, make_frames(1))
    before = path.read_bytes()

    def half_write(filename, images, format=None):
        Path(filename).write_text("32\nLattice=")
        raise OSError("disk full")

    monkeypatch.setattr(ase.io, "write", half_write)
    with pytest.raises(DataError, match=str(path)):
        write_frames(path, make_frames(3))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["frames.xyz"]


def test_write_refuses_strings_that_would_not_round_trip(tmp_path):
    frames = make_frames(1)
    frames[0].info["split"] = "T"  # extxyz would read this back as True
    with pytest.raises(DataError, match="info\\['split'\\]"):
        write_frames(tmp_path / "x.xyz", frames)
    assert not (tmp_path / "x.xyz").exists()


def test_write_refuses_other_formats_and_empty(tmp_path):
    with pytest.raises(DataError, match="extended XYZ"):
        write_frames(tmp_path / "x.json", make_frames(1))
    with pytest.raises(DataError, match="no frames"):
        write_frames(tmp_path / "x.xyz", [])


# --- TM23 names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Cu_2700cwm_train.xyz", {"element": "Cu", "temperature_label": None, "split": "train"}),
        ("W_2700cwm_test.xyz", {"element": "W", "temperature_label": None, "split": "test"}),
        ("Ni_cold_nequip_train.xyz", {"element": "Ni", "temperature_label": "cold", "split": "train"}),
        ("/some/dir/Zr_melt_nequip_test.xyz", {"element": "Zr", "temperature_label": "melt", "split": "test"}),
        ("Au_warm_nequip_test.xyz", {"element": "Au", "temperature_label": "warm", "split": "test"}),
    ],
)
def test_parse_tm23_name(name, expected):
    assert parse_tm23_name(name) == expected


@pytest.mark.parametrize(
    "name", ["Cu_hot_nequip_train.xyz", "Cu_2700cwm_val.xyz", "cu_cold_nequip_train.xyz", "Cu_cold_train.xyz", "x.xyz"]
)
def test_parse_tm23_name_rejects_other_names(name):
    assert parse_tm23_name(name) is None


def test_tm23_metadata_added_on_read(tmp_path):
    frames = make_frames(2)
    for frame in frames:
        del frame.info["temperature_label"]
    write_frames(tmp_path / "Cu_melt_nequip_test.xyz", frames)
    got = read_frames(tmp_path / "Cu_melt_nequip_test.xyz")
    assert all(f.info[fr.TEMPERATURE_LABEL] == "melt" and f.info["split"] == "test" for f in got)
    assert all(f.info[fr.ELEMENTS] == "Cu" for f in got)

    write_frames(tmp_path / "Cu_2700cwm_train.xyz", frames)
    got = read_frames(tmp_path / "Cu_2700cwm_train.xyz")
    assert all(fr.TEMPERATURE_LABEL not in f.info and f.info["split"] == "train" for f in got)


# --- ASE db -----------------------------------------------------------------------------------------------


def test_ase_db_round_trip(tmp_path):
    frames = make_frames(3)
    path = tmp_path / "frames.db"
    with ase.db.connect(path) as db:
        for frame in frames:
            db.write(frame, group=frame.info["group"], frame_index=frame.info["frame_index"])
    got = read_frames(path, require=("energy", "forces", "stress"))
    assert_same_frames(frames, got, check_info=False)
    assert [f.info["frame_index"] for f in got] == [0, 1, 2]
    assert got[0].info["group"] == "AIMD-NVT" and got[0].info[fr.SOURCE] == str(path)
    assert len(read_frames(path, index="0:2")) == 2


# --- mlearn JSON (real data) ------------------------------------------------------------------------------


def mlearn_file(element: str, split: str = "test") -> Path:
    path = MLEARN / element / f"{split}.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def test_mlearn_cu_test_loads():
    path = mlearn_file("Cu")
    frames = read_frames(path, require=("energy", "forces", "stress"))
    assert len(frames) == 31
    assert sum(len(f) for f in frames) == 3178
    entries = json.loads(path.read_text())
    for frame, entry in zip(frames, entries):
        assert fr.label(frame, "energy") == pytest.approx(entry["outputs"]["energy"])
        assert fr.label(frame, "forces").shape == (len(frame), 3)
        assert fr.label(frame, "stress").shape == (6,)
        np.testing.assert_allclose(frame.positions, [s["xyz"] for s in entry["structure"]["sites"]])
        assert frame.info[fr.GROUP] == entry["group"] and frame.info["description"] == entry["description"]
        assert frame.info[fr.ELEMENTS] == "Cu" and frame.info[fr.SOURCE] == str(path)
        assert all(frame.pbc)
    # normal components: sigma_ASE = -virial_kbar * KBAR
    np.testing.assert_allclose(
        fr.label(frames[0], "stress")[:3], -np.array(entries[0]["outputs"]["virial_stress"][:3]) * KBAR
    )


def _pure_diagonal(frame) -> bool:
    cell = np.asarray(frame.cell)
    return np.abs(cell - np.diag(np.diag(cell))).max() < 1e-6


@pytest.mark.parametrize("element, split", [("Cu", "test"), ("Si", "training")])
def test_mlearn_stress_sign_is_ase(element, split):
    """An expanded Elastic cell is under tension (positive mean normal stress in ASE's sign), a compressed one not."""
    frames = [f for f in read_frames(mlearn_file(element, split)) if f.info[fr.GROUP] == "Elastic"]
    natoms = np.bincount([len(f) for f in frames]).argmax()  # the main supercell (Mo has one odd small cell)
    frames = [f for f in frames if len(f) == natoms]
    v0 = np.median([f.get_volume() for f in frames])
    expanded = [f for f in frames if _pure_diagonal(f) and f.get_volume() > 1.01 * v0]
    compressed = [f for f in frames if _pure_diagonal(f) and f.get_volume() < 0.99 * v0]
    assert expanded and compressed
    assert all(fr.label(f, "stress")[:3].mean() > 0 for f in expanded)
    assert all(fr.label(f, "stress")[:3].mean() < 0 for f in compressed)


@pytest.mark.parametrize("element", ["Cu", "Ni", "Mo", "Si", "Ge"])
def test_mlearn_shear_order(element):
    """A cell sheared in the (i, j) plane only has its shear stress in Voigt component ij, with the strain's sign."""
    checked = 0
    for frame in read_frames(mlearn_file(element)):
        cell = np.asarray(frame.cell)
        off = np.abs(cell - np.diag(np.diag(cell))) > 1e-3
        if frame.info[fr.GROUP] != "Elastic" or off.sum() != 1:
            continue
        i, j = sorted(np.argwhere(off)[0])
        shear = fr.label(frame, "stress")[3:]
        k = VOIGT[(i, j)] - 3
        assert np.argmax(np.abs(shear)) == k
        assert np.abs(np.delete(shear, k)).max() < 0.05 * abs(shear[k])
        assert np.sign(shear[k]) == np.sign(cell[off][0])  # positive shear strain -> positive ASE stress
        checked += 1
    assert checked >= 2


def test_mlearn_li_unknown_shear_is_nan_and_noted(tmp_path):
    frames = read_frames(mlearn_file("Li"))
    for frame in frames:
        stress = fr.label(frame, "stress")
        assert np.isfinite(stress[:3]).all() and np.isnan(stress[3:]).all()
        assert "Li" in frame.info["stress_note"]
    write_frames(tmp_path / "li.xyz", frames)  # NaN stress and the note survive extxyz
    assert_same_frames(frames, read_frames(tmp_path / "li.xyz"))


def test_mlearn_shear_table_is_visible():
    assert io.MLEARN_SHEAR_ORDER["Si"] == ("xy", "yz", "zx")
    assert io.MLEARN_SHEAR_ORDER["Cu"] == ("xy", "zx", "yz")


# --- mlearn JSON (synthetic bad entries) ------------------------------------------------------------------


def mlearn_entry(n: int = 2, symbol: str = "Cu") -> dict:
    positions = [[0.0, 0.0, 0.0], [1.8, 1.8, 0.0]][:n]
    return {
        "structure": {
            "lattice": {"matrix": [[3.6, 0, 0], [0, 3.6, 0], [0, 0, 3.6]]},
            "sites": [{"species": [{"element": symbol, "occu": 1}], "xyz": p} for p in positions],
        },
        "outputs": {"energy": -7.0, "forces": [[0.1, 0, 0], [-0.1, 0, 0]][:n], "virial_stress": [1, 2, 3, 4, 5, 6]},
        "num_atoms": n,
        "group": "Elastic",
        "description": "synthetic",
    }


def write_json(path: Path, entries) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_mlearn_synthetic_entry_units(tmp_path):
    (frame,) = read_frames(write_json(tmp_path / "ok.json", [mlearn_entry()]))
    # Cu order [xy, zx, yz]: 4 -> xy, 5 -> xz, 6 -> yz; ASE Voigt is (xx, yy, zz, yz, xz, xy)
    np.testing.assert_allclose(fr.label(frame, "stress"), -np.array([1, 2, 3, 6, 5, 4]) * KBAR)


def test_mlearn_forces_wrong_length(tmp_path):
    entry = mlearn_entry()
    entry["outputs"]["forces"] = [[0.0, 0.0, 0.0]] * 3
    path = write_json(tmp_path / "bad.json", [mlearn_entry(), entry])
    with pytest.raises(DataError, match=r"bad\.json: entry 1: 'outputs.forces' has shape \(3, 3\), expected \(2, 3\)"):
        read_frames(path)


def test_mlearn_missing_energy_key(tmp_path):
    entry = mlearn_entry()
    del entry["outputs"]["energy"]
    path = write_json(tmp_path / "bad.json", [entry])
    with pytest.raises(DataError, match=r"bad\.json: entry 0: missing key 'outputs.energy'"):
        read_frames(path)


def test_mlearn_unknown_element(tmp_path):
    path = write_json(tmp_path / "bad.json", [mlearn_entry(symbol="Qq")])
    with pytest.raises(DataError, match=r"bad\.json: entry 0: unknown element"):
        read_frames(path)


def test_mlearn_num_atoms_mismatch(tmp_path):
    entry = mlearn_entry()
    entry["num_atoms"] = 5
    with pytest.raises(DataError, match="num_atoms"):
        read_frames(write_json(tmp_path / "bad.json", [entry]))


def test_malformed_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([mlearn_entry()])[:-20])
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON"):
        read_frames(path)


def test_json_not_a_list(tmp_path):
    with pytest.raises(DataError, match="expected a JSON list"):
        read_frames(write_json(tmp_path / "bad.json", {"structure": {}}))


# --- bad files in general ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.xyz", "empty.json", "empty.db", "OUTCAR", "vasprun.xml"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.touch()
    with pytest.raises(DataError, match=f"{path}: empty file"):
        read_frames(path)


def test_truncated_extxyz(tmp_path):
    path = tmp_path / "frames.xyz"
    write_frames(path, make_frames(3))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # the cut falls inside the second frame
    with pytest.raises(DataError, match=f"{path}: cannot read as extxyz"):
        read_frames(path)


def test_garbled_db(tmp_path):
    path = tmp_path / "x.db"
    path.write_text("not an sqlite file")
    with pytest.raises(DataError, match=f"{path}: cannot read as db"):
        read_frames(path)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_frames(tmp_path / "nope.xyz")
    (tmp_path / "data.cfg").write_text("x")
    with pytest.raises(DataError, match="pass fmt="):
        read_frames(tmp_path / "data.cfg")
    with pytest.raises(DataError, match="unknown format"):
        read_frames(tmp_path / "data.cfg", fmt="lammps-dump")


def test_missing_energy_when_required(tmp_path):
    frames = make_frames(2)
    frames[1].calc.results.pop("energy")
    path = tmp_path / "frames.xyz"
    write_frames(path, frames)
    assert len(read_frames(path)) == 2  # structural checks only by default
    with pytest.raises(DataError, match=f"{path}: frame 1: missing label\\(s\\) energy"):
        read_frames(path, require=("energy", "forces"))


# --- VASP (ASE's own test outputs, when installed) --------------------------------------------------------


def ase_vasp_file(name: str) -> Path:
    path = ASE_VASP_DATA / name
    if not path.is_file():
        pytest.skip(f"ASE test data {name} not installed")
    return path


def test_outcar(tmp_path):
    src = ase_vasp_file("OUTCAR_example_1")
    path = tmp_path / "OUTCAR"
    path.write_bytes(src.read_bytes())
    frames = read_frames(path, require=("energy", "forces", "stress"))
    assert len(frames) >= 1 and frames[0].info[fr.ELEMENTS] == "Ni"
    assert fr.label(frames[0], "forces").shape == (len(frames[0]), 3)


def test_truncated_outcar(tmp_path):
    text = ase_vasp_file("OUTCAR_example_1").read_text()
    path = tmp_path / "OUTCAR"
    path.write_text(text[: len(text) // 2])  # cut before the first complete ionic step
    with pytest.raises(DataError, match=f"{path}: no frames"):
        read_frames(path)


def test_vasprun(tmp_path):
    src = ase_vasp_file("vasprun_pstress.xml")
    path = tmp_path / "vasprun.xml"
    path.write_bytes(src.read_bytes())
    frames = read_frames(path, require=("energy", "forces", "stress"))
    assert frames[0].info[fr.ELEMENTS] == "C"
    text = src.read_text()
    path.write_text(text[: len(text) // 2])  # ASE alone would return the steps before the cut
    with pytest.raises(DataError, match=f"{path}: truncated vasprun.xml"):
        read_frames(path)


def test_mlearn_energy_not_a_number(tmp_path):
    entry = mlearn_entry()
    entry["outputs"]["energy"] = "-7.0"
    with pytest.raises(DataError, match=r"entry 0: 'outputs.energy' is not a number"):
        read_frames(write_json(tmp_path / "bad.json", [entry]))
