"""Readers and writer of mlffbench.data.io: round trips, TM23 names, mlearn JSON units/sign/shear order, declared
stress units and sign, bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import ase
import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from mlffbench import frames as fr
from mlffbench.data import io
from mlffbench.data.io import parse_tm23_name, read_frames, write_frames
from mlffbench.errors import DataError
from mlffbench.units import BAR, GPA, KBAR, canonical_stress_unit, stress_factor

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
    with pytest.raises(DataError, match=f"{path}: frame 1: .* the file looks truncated"):
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
    with pytest.raises(DataError, match="give it with --format"):
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


# --- stress units, sign convention and shear order ---------------------------------------------------------

BAR_PER_EV_A3 = 1.0 / BAR


def emt_cells(scales=(0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03), shears=(), rattle=0.0):
    """(atoms, energy, forces, 3x3 ASE stress) of EMT Cu cells: scaled copies and copies sheared in a plane."""
    out = []
    cells = [np.eye(3) * s for s in scales]
    for (i, j), gamma in shears:
        deformation = np.eye(3)
        deformation[j, i] = gamma  # lattice vector j gains a component along axis i: shear in the (i, j) plane
        cells.append(deformation)
    for k, deformation in enumerate(cells):
        atoms = bulk("Cu", "fcc", 3.61, cubic=True)
        atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
        if rattle:
            atoms.rattle(rattle, seed=k)
        atoms.calc = EMT()
        out.append((atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)))
    return out


def write_xyz(path: Path, cells, stress=lambda s: s, key="stress", energy=None, pbc="T T T") -> Path:
    """Hand-written extended XYZ: ``key`` holds ``stress(σ_ASE 3x3)`` flattened (or any numbers it returns)."""
    lines = []
    for k, (atoms, e, forces, sigma) in enumerate(cells):
        value = np.ravel(stress(sigma))
        label = f' {key}="{" ".join(repr(float(x)) for x in value)}"' if key else ""
        lattice = " ".join(repr(float(x)) for x in atoms.cell.array.ravel())
        lines += [str(len(atoms)), f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:forces:R:3 '
                                   f'energy={energy[k] if energy else repr(float(e))}{label} pbc="{pbc}"']
        lines += [" ".join([s] + [repr(float(x)) for x in (*p, *f)])
                  for s, p, f in zip(atoms.get_chemical_symbols(), atoms.positions, forces)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_stress_factor_units_and_aliases():
    assert stress_factor("eV/A3", "tensile") == 1.0
    assert stress_factor("kbar", "compressive") == pytest.approx(-KBAR)
    assert stress_factor("gpa", "tensile") == pytest.approx(GPA)
    for alias in ("eV/Å3", "eV/Å^3", "eV/A^3", "ev/a3"):
        assert canonical_stress_unit(alias) == "eV/A3"
    assert canonical_stress_unit("psi") is None
    with pytest.raises(ValueError, match="eV/A3, GPa, kbar, bar"):
        stress_factor("psi", "tensile")


def test_fitsnap_style_bar_compressive_stress(tmp_path):
    """FitSNAP's Ta extxyz files hold stress in bar, positive = compressive: by default that is a 1e7 GPa stress."""
    cells = emt_cells()
    path = write_xyz(tmp_path / "Ta.xyz", cells, stress=lambda s: -s * BAR_PER_EV_A3)
    with pytest.raises(DataError) as err:
        read_frames(path)
    message = str(err.value)
    assert message.startswith(f"{path}: frame 0: stress component") and "GPa is implausible" in message
    for needle in ("looks like bar", "--stress-unit bar", "stress_unit: bar", "--stress-convention compressive"):
        assert needle in message
    frames = read_frames(path, stress_unit="bar", stress_convention="compressive")
    for frame, (*_, sigma) in zip(frames, cells):
        np.testing.assert_allclose(fr.label(frame, "stress"), full_3x3_to_voigt_6_stress(sigma), atol=1e-12)


def test_implausible_stress_suggests_the_largest_plausible_unit(tmp_path):
    path = write_xyz(tmp_path / "gpa.xyz", emt_cells(scales=(1.0,)), stress=lambda s: np.diag([50.0, 50.0, 50.0]))
    with pytest.raises(DataError, match=r"frame 0: .*looks like GPa \(or kbar\): declare it with --stress-unit GPa"):
        read_frames(path)


def test_inverted_stress_sign_is_detected(tmp_path):
    """EOS copies of a cell: read with the wrong convention, the energy runs against the stress's work."""
    cells = emt_cells()
    path = write_xyz(tmp_path / "eos.xyz", cells, stress=lambda s: -s / GPA)  # GPa, compressive-positive
    with pytest.raises(DataError, match=r"eos\.xyz: the stress sign looks inverted: in 7 strained copies .*"
                                        r"--stress-convention compressive or stress_convention: compressive"):
        read_frames(path, stress_unit="GPa")
    frames = read_frames(path, stress_unit="GPa", stress_convention="compressive")
    np.testing.assert_allclose(fr.label(frames[0], "stress"), full_3x3_to_voigt_6_stress(cells[0][3]), atol=1e-12)


def test_sign_check_never_judges_md_frames(tmp_path):
    """Rattled frames (MD-like: moving atoms, large forces) are no strained copies, whatever their volumes."""
    path = write_xyz(tmp_path / "md.xyz", emt_cells(rattle=0.1), stress=lambda s: -s)
    assert len(read_frames(path)) == 7


def test_unknown_stress_unit_or_convention_lists_the_allowed(tmp_path):
    path = write_xyz(tmp_path / "x.xyz", emt_cells(scales=(1.0,)))
    with pytest.raises(DataError, match=r"x\.xyz: unknown stress unit 'psi'; use one of eV/A3, GPa, kbar, bar"):
        read_frames(path, stress_unit="psi")
    with pytest.raises(DataError, match="unknown stress convention 'positive'; use one of tensile, compressive"):
        read_frames(path, stress_convention="positive")
    assert read_frames(path, stress_unit="eV/Å^3", stress_convention="tensile")


def test_vasp_outputs_refuse_declared_units(tmp_path):
    path = tmp_path / "OUTCAR"
    path.write_text("not read: the declaration is refused first\n")
    with pytest.raises(DataError, match="OUTCAR: vasp-out files carry their own units"):
        read_frames(path, stress_unit="kbar")
    with pytest.raises(DataError, match="do not declare shear_order"):
        read_frames(path, shear_order="xy,yz,zx")


def test_extxyz_six_number_stress_with_declared_shear_order(tmp_path):
    (cell,) = emt_cells(scales=(), shears=[((0, 1), 0.02)])
    sigma = cell[3]
    lammps_order = [sigma[0, 0], sigma[1, 1], sigma[2, 2], sigma[0, 1], sigma[0, 2], sigma[1, 2]]  # xy, xz, yz
    path = write_xyz(tmp_path / "six.xyz", [cell], stress=lambda s: lammps_order)
    (frame,) = read_frames(path, shear_order="xy,xz,yz")
    np.testing.assert_allclose(fr.label(frame, "stress"), full_3x3_to_voigt_6_stress(sigma), atol=1e-12)


def test_ase_db_declared_stress_unit(tmp_path):
    (cell,) = emt_cells(scales=(1.01,))
    atoms = cell[0].copy()
    atoms.calc = SinglePointCalculator(atoms, energy=cell[1], forces=cell[2],
                                       stress=full_3x3_to_voigt_6_stress(-cell[3] / KBAR))  # kbar, compressive
    path = tmp_path / "kbar.db"
    with ase.db.connect(path) as db:
        db.write(atoms)
    (frame,) = read_frames(path, stress_unit="kbar", stress_convention="compressive")
    np.testing.assert_allclose(fr.label(frame, "stress"), full_3x3_to_voigt_6_stress(cell[3]), atol=1e-12)


# --- bad extxyz labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("energy", ["abc", '"-7.0 eV"', "T"])
def test_extxyz_energy_not_a_number(tmp_path, energy):
    cells = emt_cells(scales=(1.0, 1.0))
    path = write_xyz(tmp_path / "e.xyz", cells, energy=["-7.0", energy])
    with pytest.raises(DataError) as err:
        read_frames(path)
    assert str(err.value).startswith(f"{path}: frame 1: energy is not a number: ")
    assert "\n" not in str(err.value)


def test_extxyz_non_symmetric_stress(tmp_path):
    asymmetric = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) * 1e-3
    path = write_xyz(tmp_path / "s.xyz", emt_cells(scales=(1.0,)), stress=lambda s: asymmetric)
    with pytest.raises(DataError, match=r"s\.xyz: frame 0: stress is not symmetric"):
        read_frames(path)
    nearly = np.diag([1.0, 2.0, 3.0]) * 1e-2 + np.triu(np.full((3, 3), 1e-10), 1)  # rounding-size asymmetry passes
    path = write_xyz(tmp_path / "ok.xyz", emt_cells(scales=(1.0,)), stress=lambda s: nearly)
    np.testing.assert_allclose(fr.label(read_frames(path)[0], "stress")[:3], [1e-2, 2e-2, 3e-2])


def test_extxyz_stress_of_wrong_length(tmp_path):
    path = write_xyz(tmp_path / "s.xyz", emt_cells(scales=(1.0,)), stress=lambda s: [1e-3] * 4)
    with pytest.raises(DataError, match=r"frame 0: stress has 4 numbers, expected 6 \(Voigt\) or 9 \(3x3\)"):
        read_frames(path)


def test_extxyz_virial_becomes_stress(tmp_path):
    cells = emt_cells(scales=(0.99, 1.01))
    path = write_xyz(tmp_path / "v.xyz", cells, key="virial", stress=lambda s: -s * 3.61**3)  # virial = -V σ
    frames = read_frames(path, require=("stress",))
    for frame, (atoms, *_, sigma) in zip(frames, cells):
        expected = full_3x3_to_voigt_6_stress(sigma) * 3.61**3 / atoms.get_volume()
        np.testing.assert_allclose(fr.label(frame, "stress"), expected, atol=1e-12)
        assert "virial" in frame.info["stress_note"]
    with pytest.raises(DataError, match="frame 0: the stress comes from virial="):
        read_frames(path, stress_unit="GPa")


def test_mixed_periodic_and_non_periodic_frames(tmp_path):
    frames = make_frames(3)
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
    frames[2] = fr.labelled(molecule, -1.0, np.zeros((2, 3)), None)
    path = tmp_path / "mixed.xyz"
    write_frames(path, frames)
    with pytest.raises(DataError, match=r"mixed\.xyz: frame 2: pbc F F F differs from frame 0's T T T"):
        read_frames(path)


def test_directory_given_as_file(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}: is a directory"):
        read_frames(tmp_path)


# --- mlearn-style JSON: outputs.stress, shear order, group --------------------------------------------------


def mlearn_json(path: Path, cells, order=("xy", "yz", "zx"), key="stress", group=None) -> Path:
    """Cells as mlearn-style entries: stress in kbar, positive = compressive, shear numbers in ``order``."""
    entries = []
    for atoms, energy, forces, sigma in cells:
        kbar = -sigma / KBAR
        index = {"xy": (0, 1), "yz": (1, 2), "zx": (0, 2)}
        raw = [kbar[0, 0], kbar[1, 1], kbar[2, 2]] + [kbar[index[name]] for name in order]
        entry = {"structure": {"lattice": {"matrix": atoms.cell.array.tolist()},
                               "sites": [{"species": [{"element": s, "occu": 1}], "xyz": p.tolist()}
                                         for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]},
                 "num_atoms": len(atoms), "outputs": {"energy": energy, "forces": forces.tolist(), key: raw}}
        if group is not None:
            entry["group"] = group
        entries.append(entry)
    return write_json(path, entries)


SHEARS = [((0, 1), 0.02), ((0, 1), -0.01), ((1, 2), 0.02), ((0, 2), -0.02)]


def test_mlearn_outputs_stress_with_detected_shear_order(tmp_path):
    """The NbMoTaW-style key, no group, an order found from the cells sheared in one plane."""
    cells = emt_cells(shears=SHEARS)
    frames = read_frames(mlearn_json(tmp_path / "Cu_Elastic.json", cells, order=("xy", "zx", "yz")))
    for frame, (*_, sigma) in zip(frames, cells):
        np.testing.assert_allclose(fr.label(frame, "stress"), full_3x3_to_voigt_6_stress(sigma), atol=1e-12)
        assert frame.info["shear_order"] == "xy,zx,yz"
        assert frame.info["shear_order_source"] == "detected from 4 sheared cells"
        assert frame.info[fr.GROUP] == "Cu_Elastic"  # the file stem, not a composition label


def test_mlearn_shear_order_not_detectable_is_nan_and_noted(tmp_path):
    frames = read_frames(mlearn_json(tmp_path / "eos.json", emt_cells()))
    for frame in frames:
        assert np.isfinite(fr.label(frame, "stress")[:3]).all() and np.isnan(fr.label(frame, "stress")[3:]).all()
        assert "no strained copy of a cell in the file is sheared in a single plane" in frame.info["stress_note"]
        assert "shear_order" in frame.info["stress_note"]


def test_mlearn_declared_shear_order(tmp_path):
    cells = emt_cells(scales=(1.0,), shears=SHEARS[:1])
    frames = read_frames(mlearn_json(tmp_path / "d.json", cells, order=("yz", "xy", "zx")), shear_order="yz,xy,zx")
    np.testing.assert_allclose(fr.label(frames[1], "stress"), full_3x3_to_voigt_6_stress(cells[1][3]), atol=1e-12)
    assert frames[1].info["shear_order_source"] == "declared"
    with pytest.raises(DataError, match=r"d\.json: shear_order 'xy,xy,zx' must name yz, xz and xy once each"):
        read_frames(tmp_path / "d.json", shear_order="xy,xy,zx")


@pytest.mark.parametrize("element", ["Cu", "Si"])
def test_mlearn_shear_detection_agrees_with_the_table(tmp_path, element):
    """The real mlearn data with its stress under outputs.stress: the order detected is the table's."""
    entries = json.loads(mlearn_file(element).read_text())
    for entry in entries:
        entry["outputs"]["stress"] = entry["outputs"].pop("virial_stress")
    detected = read_frames(write_json(tmp_path / "renamed.json", entries))
    assert detected[0].info["shear_order_source"].startswith("detected from")
    for frame, table in zip(detected, read_frames(mlearn_file(element))):
        np.testing.assert_array_equal(fr.label(frame, "stress"), fr.label(table, "stress"))


@pytest.mark.parametrize("group, expected", [("Ta-Mo", "g"), ("Ni3Mo", "g"), ("Cu", "g"), (None, "g"),
                                             ("Elastic", "Elastic"), ("AIMD-NVT", "AIMD-NVT")])
def test_mlearn_group_is_never_a_composition_label(tmp_path, group, expected):
    (frame,) = read_frames(mlearn_json(tmp_path / "g.json", emt_cells(scales=(1.0,)), group=group))
    assert frame.info[fr.GROUP] == expected


def test_mlearn_unknown_stress_key_is_not_dropped(tmp_path):
    entry = mlearn_entry()
    entry["outputs"]["virial"] = entry["outputs"].pop("virial_stress")
    with pytest.raises(DataError, match=r"entry 0: unknown stress key 'outputs.virial'"):
        read_frames(write_json(tmp_path / "bad.json", [entry]))
