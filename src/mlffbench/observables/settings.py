"""Run lengths and thresholds of every observable, in one small dataclass (recorded with each result).

Defaults are sensible production values for 1-2 CPU cores; ``Settings.tiny()`` is a fast variant for tests.
Where a default departs from a paper protocol the field's comment says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mlffbench.elements import TM23_FRACTIONS  # not from config: config imports observables
from mlffbench.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    # --- relaxations (ase.optimize.BFGS) ---
    relax_fmax: float = 1e-3  # eV/Å, ions and (with FrechetCellFilter) cell
    relax_steps: int = 500
    # --- EOS (MS25: +-10 % volume) ---
    eos_points: int = 11
    eos_volume_range: float = 0.10  # relative volume change either side of the relaxed volume
    # --- elastic constants: finite Voigt strains, ions relaxed at every strain ---
    elastic_strains: tuple[float, ...] = (-0.01, -0.005, 0.005, 0.01)
    # --- phonons (phonopy finite displacements) ---
    phonon_min_length: float = 10.0  # Å, every supercell lattice vector at least this long
    phonon_displacement: float = 0.01  # Å
    phonon_path_points: int = 100  # q-points along the standard path (ASE special points)
    phonon_mesh: int = 16  # q-mesh per direction for the DOS
    phonon_dos_sigma: float = 0.1  # THz, Gaussian smearing of the DOS
    phonon_imaginary_tol: float = 0.05  # THz; min frequency below -tol flags imaginary modes
    # --- vacancy ---
    vacancy_min_length: float = 10.0  # Å (TM23 cells: 7 Å; larger here to limit vacancy-vacancy images)
    vacancy_fmax: float = 0.01  # eV/Å, ionic relaxation of the vacancy cells (fixed cell)
    neb_images: int = 5  # intermediate images
    neb_fmax: float = 0.02  # eV/Å (climbing image)
    neb_steps: int = 300
    # --- MD shared by rdf and stability ---
    md_min_length: float = 7.0  # Å, TM23 cell: supercell >= 7 Å with one vacancy
    md_timestep_fs: float = 2.0  # TM23 sampled with 5 fs; 2 fs keeps the crash test about the model, not dt
    md_friction: float = 0.01  # 1/fs, Langevin
    # --- RDF at each TM23 temperature ---
    rdf_temperatures: dict[str, float] = field(default_factory=lambda: dict(TM23_FRACTIONS))  # x T_melt
    rdf_equilibration_steps: int = 500
    rdf_steps: int = 1000
    rdf_interval: int = 10
    rdf_rmax: float = 6.0  # Å
    rdf_bins: int = 120
    # --- stability crash test (TEA) ---
    ramp_start: float = 0.25  # x T_melt
    ramp_end: float = 1.5  # x T_melt (issue: at least 1.5)
    ramp_steps: int = 5000
    hold_temperature: float = 1.25  # x T_melt
    hold_steps: int = 5000
    check_interval: int = 10  # steps between failure checks (and candidate last-good frames)
    max_force: float = 50.0  # eV/Å: a larger force component norm is a failure
    min_distance_fraction: float = 0.5  # of the ideal nearest-neighbour distance
    max_temperature_factor: float = 10.0  # x target temperature
    nve_temperature: float = 0.25  # x T_melt, start of the NVE drift run
    nve_steps: int = 2000
    # --- speed ---
    speed_sizes: tuple[int, ...] = (32, 108, 256, 500, 1372, 4000)  # target atom counts (actual ones recorded)
    speed_steps: int = 5  # timed MD steps per size (after one warm-up step)

    def __post_init__(self):
        positive = [f.name for f in fields(self) if isinstance(getattr(self, f.name), (int, float))
                    and not isinstance(getattr(self, f.name), bool) and f.name != "seed"]
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"observables.settings.{name}: must be > 0, got {getattr(self, name)}")
        if self.eos_points < 5:
            raise ConfigError("observables.settings.eos_points: needs at least 5 points for a 4-parameter fit")
        if any(abs(s) < 1e-6 for s in self.elastic_strains) or len(set(self.elastic_strains)) < 2:
            raise ConfigError("observables.settings.elastic_strains: at least two distinct non-zero strains")
        if self.ramp_end < 1.5:
            raise ConfigError("observables.settings.ramp_end: the crash-test ramp goes to at least 1.5 T_melt")
        if len(self.speed_sizes) < 2:
            raise ConfigError("observables.settings.speed_sizes: at least two sizes to fit a scaling exponent")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "observables.settings") -> "Settings":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}")
        for key in ("elastic_strains", "speed_sizes"):
            if key in data:
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("elastic_strains", "speed_sizes"):
            out[key] = list(out[key])
        return out

    def tiny(self, **overrides) -> "Settings":
        """Short runs for tests (minutes -> seconds); same code paths."""
        small = dict(
            eos_points=7, elastic_strains=(-0.005, 0.005), phonon_min_length=7.0, phonon_path_points=30,
            phonon_mesh=8, vacancy_min_length=7.0, neb_images=3, neb_steps=100, neb_fmax=0.05,
            rdf_temperatures={"cold": 0.25}, rdf_equilibration_steps=20, rdf_steps=40, rdf_interval=5,
            ramp_steps=200, hold_steps=100, nve_steps=100, speed_sizes=(32, 108, 256), speed_steps=2,
        )
        small.update(overrides)
        return replace(self, **small)
