"""The electronic-structure experiment (Metal-43 SI Figs 11-18): the band-sum math on synthetic eigenvalues, the
config checks, planning (one job per data set, refusals), the report's correlation, and one real GPAW run of
primitive Al at a tiny setting (skipped only when Debian's gpaw is not installed: scripts/install_gpaw.sh)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from scipy.integrate import quad

from mlffbench.config import load_config
from mlffbench.config.schema import from_dict
from mlffbench.config.tasks import ElectronicConfig, TasksConfig
from mlffbench.errors import ConfigError, MlffbenchError
from mlffbench.experiments import electronic as ex
from mlffbench.report.electronic import correlation, curves_figure
from mlffbench.tasks import electronic as task

METHODS = ("fermi-dirac", "gaussian", "methfessel-paxton")


def synthetic(seed: int = 0, nk: int = 40, nb: int = 12):
    """Random positive band energies (eV) and k-weights: a stand-in band structure."""
    rng = np.random.default_rng(seed)
    eps = np.sort(rng.uniform(1.0, 15.0, size=(nk, nb)), axis=1)
    weights = rng.uniform(0.5, 1.5, size=nk)
    return eps, weights / weights.sum()


# ---------------------------------------------------------------------------------------------- the math


@pytest.mark.parametrize("method", METHODS)
def test_occupation_is_a_smeared_step(method):
    f, d = ex.occupation(method, np.array([-30.0, 0.0, 30.0]))
    assert f[0] == pytest.approx(1.0) and f[2] == pytest.approx(0.0, abs=1e-12) and f[1] == pytest.approx(0.5)
    # -df/dx integrates to 1, and f(x) is the integral of it from x to infinity
    d = lambda x: ex.occupation(method, x)[1]  # noqa: E731
    assert quad(d, -40, 40, points=[0], limit=200)[0] == pytest.approx(1.0, abs=1e-9)
    assert quad(d, 0.37, 40, limit=200)[0] == pytest.approx(float(ex.occupation(method, 0.37)[0]))


def test_methfessel_paxton_order_one_has_gpaw_coefficients():
    # GPAW 22.8: f = erfc(x)/2 + A1 H1(x) e^{-x²}, A1 = -1/(4√π), H1 = 2x
    x = np.linspace(-3, 3, 13)
    f, _ = ex.occupation("methfessel-paxton", x)
    g, _ = ex.occupation("gaussian", x)
    assert np.allclose(f - g, -1 / (4 * math.sqrt(math.pi)) * 2 * x * np.exp(-x * x))


def test_fermi_dirac_at_tiny_width_is_the_hard_sum_below_the_shifted_level():
    eps, w = synthetic()
    eps = np.round(eps, 2) + 0.005  # on a 0.01 eV lattice offset by 0.005: no level below falls on an eigenvalue
    fermi, n_atoms = 8.0, 2
    shifts = np.linspace(-1, 1, 9)
    out = ex.analyse(eps, w, fermi, 1e-4, "fermi-dirac", n_atoms, shifts)
    below = lambda level: float((2 * w[:, None] * np.where(eps < level, eps, 0.0)).sum() / n_atoms)  # noqa: E731
    assert min(np.abs(eps - fermi - s).min() for s in shifts) > 4e-3
    hard = [below(fermi + s) - below(fermi) for s in shifts]
    assert np.allclose(out["S_minus_S0"], hard, atol=1e-9)
    assert out["S0"] == pytest.approx(below(fermi))


@pytest.mark.parametrize("method", ("fermi-dirac", "gaussian"))
def test_band_sum_rises_with_the_shift_and_slope_and_dos_are_its_derivatives(method):
    eps, w = synthetic(1)
    shifts = np.linspace(-1, 1, 41)
    out = ex.analyse(eps, w, 8.0, 0.1, method, 1, shifts)
    assert np.all(np.diff(out["S_minus_S0"]) > 0)  # positive eigenvalues, non-negative -df/dx
    assert np.all(np.diff(out["N_minus_N0"]) > 0)
    h = 1e-5
    s_plus, n_plus = ex.band_sum(eps, w, 8.0 + h, 0.1, method, 1)
    s_minus, n_minus = ex.band_sum(eps, w, 8.0 - h, 0.1, method, 1)
    assert out["slope_0"] == pytest.approx((s_plus - s_minus) / (2 * h), rel=1e-6)
    assert out["dos_ef"] == pytest.approx((n_plus - n_minus) / (2 * h), rel=1e-6)
    # the E_F-referenced curve is the absolute one less E_F times the change of the electron count
    assert np.allclose(out["S_ef_minus_S0"], np.array(out["S_minus_S0"]) - 8.0 * np.array(out["N_minus_N0"]))
    i = list(np.round(shifts, 6)).index(0.2), list(np.round(shifts, 6)).index(-0.2)
    assert out["sensitivity"] == pytest.approx(abs(out["S_minus_S0"][i[0]] - out["S_minus_S0"][i[1]]) / 0.4)


def test_primitive_cells_of_the_prototypes():
    sizes = {}
    for symbol in ("Al", "W", "Zn", "Ti", "Hg"):
        lattice = ex.elements_db.get(symbol).lattice
        a, c, source = ex.reference_lattice(symbol, lattice)
        sizes[symbol] = len(ex.primitive_cell(symbol, lattice, a, c))
        assert source
    assert sizes == {"Al": 1, "W": 1, "Zn": 2, "Ti": 3, "Hg": 1}
    # Hg: ASE's reference state is rhombohedral; its volume per atom is kept in the simple hexagonal prototype
    a, c, source = ex.reference_lattice("Hg", "simple_hexagonal")
    hg = ex.primitive_cell("Hg", "simple_hexagonal", a, c)
    assert hg.get_volume() == pytest.approx(22.98, abs=0.01) and "rhombohedral" in source


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("section, needle", [
    ({"methods": ["fermi-dirac", "cold"]}, "tasks.electronic.methods[1]: unknown smearing method 'cold'"),
    ({"methods": []}, "tasks.electronic.methods: needs at least one"),
    ({"methods": ["gaussian", "gaussian"]}, "tasks.electronic.methods: each method once"),
    ({"width_eV": 0}, "tasks.electronic.width_eV:"),
    ({"shifts": [-1, 1]}, "tasks.electronic.shifts: [min, max, n]"),
    ({"shifts": [0.1, 1, 21]}, "tasks.electronic.shifts: needs min <= -0.2"),
    ({"shifts": [-1, 1, 20.5]}, "tasks.electronic.shifts: the number of points"),
    ({"ecut": -300}, "tasks.electronic.ecut: must be > 0"),
    ({"kspacing": 0}, "tasks.electronic.kspacing: must be > 0"),
    ({"mpi_ranks": 0}, "tasks.electronic.mpi_ranks: must be > 0"),
    ({"mpi_ranks": 1.5}, "tasks.electronic.mpi_ranks: expected an integer"),
    ({"lattice": "vasp"}, "tasks.electronic.lattice: must be 'ase'"),
    ({"smearing": 0.1}, "tasks.electronic.smearing: unknown key"),
])
def test_config_errors_name_the_key(section, needle):
    with pytest.raises(ConfigError) as err:
        from_dict(TasksConfig, {"electronic": section}, "tasks").check("tasks", [])
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_defaults_are_valid():
    cfg = from_dict(TasksConfig, {"electronic": {}}, "tasks")
    cfg.check("tasks", [])
    assert cfg.electronic == ElectronicConfig() and "electronic" in cfg.enabled()
    assert ex.grid(cfg.electronic).tolist()[20] == 0.0 and len(ex.grid(cfg.electronic)) == 41


# ---------------------------------------------------------------------------------------------- planning


def plan(tmp_path, data, models=None):
    cfg = {"name": "el", "seed": 0, "data": data, "split": {"test_last": 0.25},
           "models": models or [{"name": "mean_energy", "tasks": ["accuracy"]}, {"name": "acegp", "label": "a"},
                                {"name": "acegp", "label": "b"}],
           "tasks": {"accuracy": True, "electronic": {}}, "execution": {"executor": "inprocess"}}
    path = tmp_path / "el.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from mlffbench.engine.runner import MainJob

    main = MainJob(load_config(path), tmp_path / "run")
    return main, main.plan()


def test_one_model_free_job_per_data_set(tmp_path):
    main, jobs = plan(tmp_path, {"elements": ["Al", "Cu"], "labeler": "emt", "frames_per_temperature": 4})
    electronic = [j for j in jobs if j.inputs.get("task") == "electronic"]
    assert sorted(j.name for j in electronic) == ["electronic:Al:a", "electronic:Cu:a"]  # the first that runs it
    assert all(j.kind == "evaluate" and j.inputs["settings"] == vars(ElectronicConfig()) for j in electronic)
    assert all(j.inputs["model"] is None and j.inputs["params"] == {} for j in electronic)  # no model's environment
    # the job key does not depend on the models: another model list plans the same jobs
    _, other = plan(tmp_path, {"elements": ["Al", "Cu"], "labeler": "emt", "frames_per_temperature": 4},
                    [{"name": "mean_energy"}])
    assert {j.key for j in other if j.inputs.get("task") == "electronic"} == {j.key for j in electronic}


def test_gpaw_missing_or_no_setup_is_na_at_planning(tmp_path, monkeypatch):
    if ex.gpaw_info() is None:
        pytest.skip("GPAW not installed: the refusal is the normal path")
    monkeypatch.setattr(ex, "gpaw_info", lambda symbols=(): None)  # the installation, not the physics
    main, jobs = plan(tmp_path, {"elements": ["Al"], "labeler": "emt", "frames_per_temperature": 4})
    assert not [j for j in jobs if j.inputs.get("task") == "electronic"]
    assert [x["reason"] for x in main.not_run if x["task"] == "electronic"] == [ex.NOT_INSTALLED]


def test_refusals_name_the_reason():
    class DS:
        def __init__(self, elements, periodic=True):
            self.name, self.elements, self.periodic = "-".join(elements), tuple(elements), periodic

        @property
        def element(self):
            return self.elements[0] if len(self.elements) == 1 else None

    assert "needs an elemental data set" in task.refuse(None, DS(["Cu", "Ni"]))
    assert "periodic" in task.refuse(None, DS(["Cu"], periodic=False))
    assert "not one of the 43 metals" in task.refuse(None, DS(["Si"]))
    if ex.gpaw_info() is not None:
        assert task.refuse(None, DS(["Tc"])) == "no GPAW PBE PAW setup for Tc in gpaw-data (/usr/share/gpaw-setups)"
        assert task.refuse(None, DS(["Al"])) is None


# ---------------------------------------------------------------------------------------------- report


def test_correlation_and_its_bootstrap_interval():
    x = np.arange(8.0)
    c = correlation(x, 2 * x + 1, seed=3)
    assert c["pearson"] == pytest.approx(1.0) and c["spearman"] == pytest.approx(1.0) and c["n"] == 8
    assert c["pearson_lo"] == pytest.approx(1.0) and c["pearson_hi"] <= 1.0
    noisy = correlation(x, np.array([3, 1, 4, 1, 5, 9, 2, 6.0]), seed=3)
    assert noisy["pearson_lo"] < noisy["pearson"] < noisy["pearson_hi"]
    assert noisy == correlation(x, np.array([3, 1, 4, 1, 5, 9, 2, 6.0]), seed=3)  # seeded
    assert correlation([1, 2], [2, 1])["status"] == "not enough data"


# ---------------------------------------------------------------------------------------------- real GPAW


@pytest.mark.skipif(ex.gpaw_info() is None, reason=ex.NOT_INSTALLED)
def test_real_gpaw_aluminium(tmp_path, monkeypatch):
    """Primitive fcc Al, 200 eV, 5x5x5 k-points: three SCFs in a few seconds, then the cached rerun."""
    monkeypatch.setenv("MLFFBENCH_GPAW_CACHE", str(tmp_path / "cache"))
    settings = ElectronicConfig(ecut=200, kspacing=0.6, shifts=[-1.0, 1.0, 11])
    r = ex.run_element("Al", settings)
    assert r["n_atoms"] == 1 and r["kpts"] == [5, 5, 5] and r["spin_polarised"] is False
    for method in METHODS:
        m = r["methods"][method]
        assert m["status"] == "ok" and m["bands_cover"] and not m["cached"]
        assert m["occupation_error"] < 1e-6  # our occupation function is GPAW's, at GPAW's own Fermi level
        assert abs(m["electron_error"]) < 1e-6  # 3 valence electrons per atom below E_F
        assert 5 < m["fermi_level"] < 10 and 0 < m["dos_ef"] < 10  # 5x5x5 k-points: a rough DOS
        assert m["S_minus_S0"][5] == 0.0 and m["S_minus_S0"][0] < 0 < m["S_minus_S0"][-1]
    again = ex.run_element("Al", settings)
    assert all(m["cached"] for m in again["methods"].values())
    assert again["methods"]["gaussian"]["sensitivity"] == r["methods"]["gaussian"]["sensitivity"]
    curves_figure([r])  # the report's panel draws from it
    with pytest.raises(MlffbenchError, match="no GPAW PBE PAW setup for Tc"):
        ex.run_element("Tc", settings)


@pytest.mark.skipif(ex.gpaw_info() is None, reason=ex.NOT_INSTALLED)
def test_timeout_kills_the_driver_and_names_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFFBENCH_GPAW_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MlffbenchError, match=r"timed out after 1 s \(tasks.electronic.timeout_s\)"):
        ex.run_element("Al", ElectronicConfig(ecut=200, kspacing=0.3, timeout_s=1))
    assert not list((tmp_path / "cache" / "electronic").glob("*/*.json"))  # nothing half-done is cached
