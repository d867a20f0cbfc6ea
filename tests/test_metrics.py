import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlffbench import metrics
from mlffbench.frames import GROUP, TEMPERATURE_LABEL, labelled
from mlffbench.units import GPA

PRED = np.array([1.0, 2.0, 3.0, 4.0])
REF = np.array([1.5, 2.0, 2.0, 4.0])  # errors -0.5, 0, 1, 0


def test_array_metrics_by_hand():
    assert metrics.mae(PRED, REF) == pytest.approx(0.375)
    assert metrics.rmse(PRED, REF) == pytest.approx(math.sqrt(1.25 / 4))
    assert metrics.maxae(PRED, REF) == pytest.approx(1.0)
    assert metrics.mav(REF) == pytest.approx(9.5 / 4)
    assert metrics.mav([-1.0, 3.0]) == pytest.approx(2.0)
    assert metrics.percent_error(PRED, REF) == pytest.approx(100 * 0.375 / (9.5 / 4))
    std = np.std(REF)
    assert metrics.std_normalised(PRED, REF) == pytest.approx(0.375 / std)
    assert metrics.std_normalised(PRED, REF, "rmse") == pytest.approx(math.sqrt(1.25 / 4) / std)


def test_nan_pairs_skipped_consistently():
    pred = np.array([1.0, np.nan, 3.0, 10.0])
    ref = np.array([2.0, 5.0, 3.0, np.nan])  # only pairs 0 and 2 count
    assert metrics.mae(pred, ref) == pytest.approx(0.5)
    assert metrics.maxae(pred, ref) == pytest.approx(1.0)
    assert metrics.percent_error(pred, ref) == pytest.approx(100 * 0.5 / 2.5)  # MAV over the same pairs
    stats = metrics.error_stats(pred, ref)
    assert stats.n == 2 and stats.mav == pytest.approx(2.5)
    assert metrics.mav([np.nan, -4.0]) == pytest.approx(4.0)


def test_empty_selection_is_nan():
    for f in (metrics.mae, metrics.rmse, metrics.maxae, metrics.percent_error, metrics.std_normalised):
        assert math.isnan(f([], []))
        assert math.isnan(f([np.nan], [1.0]))
    assert math.isnan(metrics.mav([]))
    stats = metrics.error_stats([], [])
    assert stats.n == 0 and all(math.isnan(v) for k, v in stats.to_dict().items() if k != "n")


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        metrics.mae([1.0, 2.0], [1.0])


def test_error_stats_to_dict():
    d = metrics.error_stats(PRED, REF).to_dict()
    assert set(d) == {"n", "mae", "rmse", "max", "mav", "percent", "mae_over_std", "rmse_over_std"}
    assert d["n"] == 4 and d["max"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- frames

CU = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)  # 32 atoms


def _ref_frames(n=4, atoms=CU, **info):
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        frames.append(
            labelled(
                atoms,
                energy=-3.5 * len(atoms) + 0.1 * i,
                forces=rng.normal(size=(len(atoms), 3)),
                stress=rng.normal(scale=0.01, size=6),
                **{k: (v[i] if isinstance(v, list) else v) for k, v in info.items()},
            )
        )
    return frames


def _shifted(frames, de_per_atom=0.0, df=0.0, ds=0.0, drop_stress=()):
    out = []
    for i, f in enumerate(frames):
        calc = f.calc.results
        stress = None if i in drop_stress else calc["stress"] + ds
        out.append(labelled(f, calc["energy"] + de_per_atom * len(f), calc["forces"] + df, stress, **f.info))
    return out


def test_score_known_offsets():
    ref = _ref_frames()
    pred = _shifted(ref, de_per_atom=0.01, df=0.02, ds=-0.001)
    s = metrics.score(pred, ref)
    assert set(s) == {"energy_per_atom", "energy_per_cell", "forces", "stress"}
    assert s["energy_per_atom"].mae == pytest.approx(0.01)
    assert s["energy_per_cell"].mae == pytest.approx(0.01 * 32)
    assert s["energy_per_atom"].n == 4 and s["forces"].n == 4 * 32 * 3 and s["stress"].n == 4 * 6
    assert s["forces"].mae == pytest.approx(0.02) and s["forces"].max == pytest.approx(0.02)
    assert s["stress"].rmse == pytest.approx(0.001)
    ref_e = np.array([f.get_potential_energy() for f in ref])
    assert s["energy_per_cell"].mav == pytest.approx(np.mean(np.abs(ref_e)))
    assert s["energy_per_atom"].percent == pytest.approx(100 * 0.01 / np.mean(np.abs(ref_e / 32)))


def test_score_skips_missing_stress_rows():
    ref = _ref_frames()
    pred = _shifted(ref, ds=0.002, drop_stress=(1,))
    s = metrics.score(pred, ref)
    assert s["stress"].n == 3 * 6 and s["stress"].mae == pytest.approx(0.002)


def test_score_masks_nan_stress_components_only():
    # mlearn Li: shear labels untrusted (NaN) but the normal components still count
    ref = _ref_frames()
    pred = _shifted(ref, ds=0.002)
    for frame in ref:
        frame.calc.results["stress"] = frame.calc.results["stress"].copy()
        frame.calc.results["stress"][3:] = np.nan
    s = metrics.score(pred, ref)
    assert s["stress"].n == 3 * len(ref) and s["stress"].mae == pytest.approx(0.002)


def test_score_checks_counts():
    ref = _ref_frames(3)
    with pytest.raises(ValueError, match="frames"):
        metrics.score(ref[:2], ref)
    other = _ref_frames(3, atoms=bulk("Cu", "fcc", a=3.6, cubic=True))
    with pytest.raises(ValueError, match="atoms"):
        metrics.score(other, ref)


def test_score_by_key():
    ref = _ref_frames(4, **{TEMPERATURE_LABEL: ["cold", "cold", "warm", "warm"]})
    pred = _shifted(ref, df=0.0)
    pred[2] = _shifted([ref[2]], df=0.1)[0]
    pred[3] = _shifted([ref[3]], df=0.1)[0]
    by = metrics.score_by(pred, ref, TEMPERATURE_LABEL)
    assert list(by) == ["cold", "warm"]
    assert by["cold"]["forces"].mae == pytest.approx(0.0)
    assert by["warm"]["forces"].mae == pytest.approx(0.1)
    assert by["warm"]["forces"].n == 2 * 32 * 3
    assert list(metrics.score_by(pred, ref, GROUP)) == [None]


def _alloy(n_cu):
    atoms = CU.copy()
    symbols = ["Cu"] * n_cu + ["Ni"] * (len(atoms) - n_cu)
    atoms.set_chemical_symbols(symbols)
    return atoms


def test_score_by_element_and_shift_multi_element():
    shift = {"Cu": 0.3, "Ni": -0.2}  # eV/atom
    structures = [_alloy(n) for n in (32, 24, 16, 8)]
    rng = np.random.default_rng(1)
    ref, pred = [], []
    for atoms in structures:
        counts = {el: atoms.get_chemical_symbols().count(el) for el in shift}
        e = rng.normal() - 4.0 * len(atoms)
        f = rng.normal(size=(len(atoms), 3))
        df = np.where(np.array(atoms.get_chemical_symbols()) == "Ni", 0.05, 0.0)[:, None]
        ref.append(labelled(atoms, e, f, None))
        pred.append(labelled(atoms, e + sum(shift[el] * c for el, c in counts.items()), f + df, None))
    fitted = metrics.fit_energy_shift(pred, ref)
    assert fitted == pytest.approx(shift, abs=1e-10)
    s = metrics.score(pred, ref, energy_shift=fitted)
    assert s["energy_per_atom"].mae > 0.1  # unshifted still reported
    assert s["energy_per_atom_shifted"].mae == pytest.approx(0.0, abs=1e-9)
    assert s["energy_per_cell_shifted"].mae == pytest.approx(0.0, abs=1e-8)
    assert s["stress"].n == 0 and math.isnan(s["stress"].mae)

    by_el = metrics.score_by_element(pred, ref)
    assert list(by_el) == ["Cu", "Ni"]
    assert by_el["Cu"]["forces"].mae == pytest.approx(0.0)
    assert by_el["Ni"]["forces"].mae == pytest.approx(0.05)
    assert by_el["Ni"]["forces"].n == (8 + 16 + 24) * 3
    assert by_el["Cu"]["energy_per_atom"].n == 4  # every frame has Cu
    assert by_el["Ni"]["energy_per_atom"].n == 3  # the pure Cu frame has no Ni


def test_shift_single_element_is_mean_per_atom_difference():
    small = bulk("Cu", "fcc", a=3.6)  # 1 atom
    ref = _ref_frames(2) + _ref_frames(2, atoms=small)
    pred = [
        labelled(f, f.get_potential_energy() + d * len(f), f.get_forces(), f.get_stress())
        for f, d in zip(ref, (0.1, 0.2, 0.3, 0.6))
    ]
    fitted = metrics.fit_energy_shift(pred, ref)
    assert fitted["Cu"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="Cu"):
        metrics.score(pred, ref, energy_shift={"Ni": 0.0})


def test_flatten_and_table():
    ref = _ref_frames()
    pred = _shifted(ref, de_per_atom=0.002, df=0.03, ds=GPA)
    s = metrics.score(pred, ref)
    flat = metrics.flatten(s)
    assert flat["forces.mae"] == pytest.approx(0.03)
    assert "energy_per_atom.percent" in flat
    table = metrics.to_table(s)
    assert table["energy_per_atom_mae_meV_atom"] == pytest.approx(2.0)
    assert table["energy_per_cell_mae_meV"] == pytest.approx(64.0)
    assert table["forces_mae_meV_A"] == pytest.approx(30.0)
    assert table["stress_mae_GPa"] == pytest.approx(1.0)
    assert table["forces_n"] == 4 * 32 * 3 and "forces_percent" in table
    nested = metrics.flatten({"cold": s}, prefix="x.")
    assert nested["x.cold.forces.mae"] == pytest.approx(0.03)


def test_empty_frame_lists():
    s = metrics.score([], [])
    assert s["forces"].n == 0 and math.isnan(s["energy_per_atom"].mae)


def test_unlabelled_prediction_is_nan_not_error():
    ref = _ref_frames(2)
    pred = [Atoms(f) for f in ref]  # no calculator
    for p in pred:
        p.calc = None
    s = metrics.score(pred, ref)
    assert s["forces"].n == 0 and math.isnan(s["forces"].mae)
