"""Task sections of a run config: which protocols run and their settings (see ``mlffbench.tasks``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlffbench.config.schema import positive, value_key
from mlffbench.errors import ConfigError

TASKS = ("accuracy", "transfer", "learning_curve", "grid", "size_extensivity", "observables", "crash_test", "checks",
         "calibration", "electronic")


@dataclass
class TransferConfig:
    """Group hold-out: train on every frame of the ``train`` group(s), test on every frame of each ``test`` group
    (TM23 Figs 4-5: cold -> warm, melt; MS25: CHA -> MFI; a molecule: 300 K -> 600 K). Groups are the data set's
    (generated data: the temperature labels; files: ``config_type`` or the declared group key)."""

    train: str | list[str] = "cold"
    test: list[str] = field(default_factory=lambda: ["warm", "melt"])

    def train_groups(self) -> list[str]:
        return [self.train] if isinstance(self.train, str) else list(self.train)

    def check(self, where: str) -> None:
        if not self.train_groups():
            raise ConfigError(f"{where}.train: needs at least one group to train on")
        if not self.test:
            raise ConfigError(f"{where}.test: needs at least one group to test on")
        both = sorted(set(self.train_groups()) & set(self.test))
        if both:
            raise ConfigError(f"{where}: group(s) {both} are both trained and tested on")


@dataclass
class CalibrationConfig(TransferConfig):
    """Uncertainty calibration of the models that predict one (acegp): trained on the training frames of the
    ``train`` group(s) in the data set's own split, tested on that split's test frames of those groups (in
    distribution) and on every frame of each ``test`` group (out of distribution: cold -> warm, melt)."""


@dataclass
class LearningCurveConfig:
    """Nested training subsets (frames drawn from the training set of the data set's split) x replicates;
    power-law fit. A size is a frame count (int) or a fraction of the training set (float in (0, 1])."""

    sizes: list[int | float] = field(default_factory=lambda: [30, 90, 270])
    replicates: int = 1
    sweep: dict[str, list[Any]] = field(default_factory=dict)  # model param -> values: one curve per value

    def check(self, where: str) -> None:
        bad = [n for n in self.sizes if (n < 1 if isinstance(n, int) else not 0 < n <= 1)]
        if len(self.sizes) < 2 or bad or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{where}.sizes: needs >= 2 distinct sizes, each a frame count >= 1 or a fraction in "
                              f"(0, 1], got {self.sizes}")
        positive(where, "replicates", self.replicates)
        if len(self.sweep) > 1:
            raise ConfigError(f"{where}.sweep: one swept parameter at a time, got {sorted(self.sweep)}")


GRID_SELECT = ("force_mae", "likelihood")
GRID_DATA = ("main", "large")


@dataclass
class GridConfig:
    """TM23 grid search (Methods IV.C, SI S7): every combination of ``params`` (model param -> values) trained on
    ``train_frames`` and tested on ``test_frames`` (TM23: 200 and 100); the best point per metal and model is
    chosen by ``select`` and, with ``retrain``, retrained on the full split and scored like the accuracy task.
    ``by_model`` replaces grid axes for one model label (TM23: B1 n_max 1-29 with l_max 0, B2 n_max 1-19).
    ``data: large`` runs the grid (and the retrain) on a larger-cell data set of its own instead, the finite-size
    test of TM23 Fig 8 / SI S7.C (cells >= ``large_min_length``, ``large_frames_per_temperature`` frames at the
    ``large_temperatures`` labels of data.temperatures; defaults: data.frames_per_temperature, all labels)."""

    params: dict[str, list[Any]] = field(default_factory=dict)
    by_model: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    train_frames: int = 200
    test_frames: int = 100
    select: str = "force_mae"  # force_mae: TM23's rule (max likelihood breaks ties); likelihood: max likelihood
    retrain: bool = True
    data: str = "main"  # main: the run's data set; large: a larger-cell data set (TM23 Fig 8)
    large_min_length: float = 22.0  # Å; TM23 Fig 8: a 640-atom Os cell (~22 Å), > 2 x the 10 Å longest cutoff
    large_frames_per_temperature: int | None = None
    large_temperatures: list[str] | None = None  # TM23 Fig 8: 1.25 T_melt only (melt)

    def check(self, where: str, labels: list[str]) -> None:
        if not self.params and not self.by_model:
            raise ConfigError(f"{where}.params: needs at least one model param with a list of values")
        for prefix, axes in [("params", self.params)] + [(f"by_model.{k}", v) for k, v in self.by_model.items()]:
            for name, values in axes.items():
                if not values:
                    raise ConfigError(f"{where}.{prefix}.{name}: needs at least one value")
                if len({value_key(v) for v in values}) != len(values):
                    raise ConfigError(f"{where}.{prefix}.{name}: values must be distinct, got {values}")
        for label in self.by_model:
            if label not in labels:
                raise ConfigError(f"{where}.by_model.{label}: no model with that label (labels: {', '.join(labels)})")
        positive(where, "train_frames", self.train_frames)
        positive(where, "test_frames", self.test_frames)
        if self.select not in GRID_SELECT:
            raise ConfigError(f"{where}.select: must be one of {', '.join(GRID_SELECT)}, got '{self.select}'")
        if self.data not in GRID_DATA:
            raise ConfigError(f"{where}.data: must be one of {', '.join(GRID_DATA)}, got '{self.data}'")
        positive(where, "large_min_length", self.large_min_length)
        if self.large_frames_per_temperature is not None:
            positive(where, "large_frames_per_temperature", self.large_frames_per_temperature)
        if self.large_temperatures is not None and (not self.large_temperatures
                                                    or len(set(self.large_temperatures)) != len(self.large_temperatures)):
            raise ConfigError(f"{where}.large_temperatures: needs distinct temperature labels, got {self.large_temperatures}")

    def axes(self, label: str) -> dict[str, list[Any]]:
        """The grid of one model: the shared axes with that label's replacements."""
        return {**self.params, **self.by_model.get(label, {})}


@dataclass
class ObservablesConfig:
    """Observables and crash tests of the model trained on the full split (the accuracy task's model), each
    computed with the model and with the reference labeler (MS25, TEA, TM23 Fig 7 / S4). ``names``: which ones
    (default all: eos, elastic, phonons, vacancy, rdf, stability, speed); ``settings``: run lengths and thresholds
    (``mlffbench.observables.Settings`` fields)."""

    names: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        from mlffbench import observables  # imports this module: load it only when the task is configured

        for i, name in enumerate(self.names or []):
            if name not in observables.NAMES:
                raise ConfigError(f"{where}.names[{i}]: unknown observable '{name}' "
                                  f"(known: {', '.join(observables.NAMES)})")
        try:
            observables.Settings.from_dict(self.settings, f"{where}.settings")
        except ConfigError as exc:  # Settings' own checks name 'observables.settings.<key>': give the full key
            message = str(exc)
            if message.startswith("observables.settings"):
                message = f"{where}.settings" + message.removeprefix("observables.settings")
            raise ConfigError(message) from None


@dataclass
class SizeExtensivityConfig:
    """MS25 size extensivity (System Size Cross Validation): a second data set per metal in larger supercells
    (every lattice vector >= ``large_min_length``), same protocol otherwise; one model trained on each cell size,
    both tested on the held-out frames of both sizes. Both models train on ``train_frames`` frames (default: all
    the large set's training frames), so the two directions see the same number of frames."""

    large_min_length: float = 11.0  # Å (small cells: data.min_length, TM23 7 Å)
    frames_per_temperature: int = 20
    train_frames: int | None = None

    def check(self, where: str) -> None:
        positive(where, "large_min_length", self.large_min_length)
        positive(where, "frames_per_temperature", self.frames_per_temperature)
        if self.train_frames is not None:
            positive(where, "train_frames", self.train_frames)


@dataclass
class CrashTestConfig:
    """MD crash test of every trained model (TEA Challenge 2023 MD stability), no reference calculator needed:
    Langevin NVT from ``frames`` test frames of the data set (evenly spaced) at ``temperature_K`` (default: the
    frame's ``target_temperature`` when the data carry one, else 300 K) for ``steps`` steps of ``timestep_fs``.
    A run fails at a calculator error, non-finite energy or forces, a force above ``max_force`` eV/Å, two atoms
    closer than ``min_distance_fraction`` x the shortest distance in the data set, or a temperature above
    ``max_temperature_factor`` x the target; the result is the time to failure and the last good frame."""

    frames: int = 2
    temperature_K: float | None = None
    steps: int = 2000
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.01
    check_interval: int = 20
    max_force: float = 50.0
    min_distance_fraction: float = 0.6
    max_temperature_factor: float = 3.0

    def check(self, where: str) -> None:
        for key in ("frames", "steps", "timestep_fs", "friction_per_fs", "check_interval", "max_force",
                    "min_distance_fraction", "max_temperature_factor"):
            positive(where, key, getattr(self, key))
        if self.temperature_K is not None:
            positive(where, "temperature_K", self.temperature_K)
        if self.min_distance_fraction >= 1:
            raise ConfigError(f"{where}.min_distance_fraction: must be < 1, got {self.min_distance_fraction}")


@dataclass
class ChecksConfig:
    """Verification checks of every trained or published potential (``mlffbench.verification``: forces and stress
    against finite differences, invariances, extensivity, smoothness, determinism) on ``frames`` evenly spaced
    test frames of each data set (random displacements, rotations and orders from the run's seed)."""

    frames: int = 1

    def check(self, where: str) -> None:
        positive(where, "frames", self.frames)


# gaussian = GPAW's Methfessel-Paxton order 0; methfessel-paxton = order 1
SMEARING_METHODS = ("fermi-dirac", "gaussian", "methfessel-paxton")
SENSITIVITY_STEP = 0.2  # eV: the sensitivity is |S(+step) - S(-step)| / (2 step)


@dataclass
class ElectronicConfig:
    """Metal-43 SI Figs 11-18 (``mlffbench.experiments.electronic``): per elemental data set, one GPAW SCF of the
    element's primitive ground-state cell per smearing ``methods`` at ``width_eV``, then the sum of eigenvalues
    below the Fermi level shifted over ``shifts`` ([min, max, n] eV). Plane waves ``ecut`` eV, k-points from
    ``kspacing`` (1/Å incl. 2π), ``mpi_ranks`` GPAW processes; ``lattice``: ase (ASE reference states) or gpaw
    (GPAW-relaxed volume); ``timeout_s`` per element. No model is needed."""

    methods: list[str] = field(default_factory=lambda: list(SMEARING_METHODS))
    width_eV: float = 0.1
    shifts: list[float] = field(default_factory=lambda: [-1.0, 1.0, 41])
    ecut: float = 300.0
    kspacing: float = 0.2  # 1/Å incl. 2π: fcc Al/Pt 14x14x14, bcc W 15x15x15 (the DOS at E_F needs dense k)
    mpi_ranks: int = 2
    lattice: str = "ase"
    timeout_s: float = 3600.0

    def check(self, where: str) -> None:
        if not self.methods:
            raise ConfigError(f"{where}.methods: needs at least one smearing method (known: "
                              f"{', '.join(SMEARING_METHODS)})")
        for i, name in enumerate(self.methods):
            if name not in SMEARING_METHODS:
                raise ConfigError(f"{where}.methods[{i}]: unknown smearing method '{name}' (known: "
                                  f"{', '.join(SMEARING_METHODS)})")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"{where}.methods: each method once, got {self.methods}")
        if not 0 < self.width_eV <= 2:
            raise ConfigError(f"{where}.width_eV: the smearing width must be in (0, 2] eV, got {self.width_eV}")
        if len(self.shifts) != 3:
            raise ConfigError(f"{where}.shifts: [min, max, n] (eV, eV, points), got {self.shifts}")
        lo, hi, n = self.shifts
        if not lo <= -SENSITIVITY_STEP < SENSITIVITY_STEP <= hi:
            raise ConfigError(f"{where}.shifts: needs min <= -{SENSITIVITY_STEP:g} and max >= "
                              f"{SENSITIVITY_STEP:g} eV (the sensitivity's step), got [{lo}, {hi}]")
        if n != int(n) or n < 3:
            raise ConfigError(f"{where}.shifts: the number of points (third value) must be an integer >= 3, got {n}")
        for key in ("ecut", "kspacing", "mpi_ranks", "timeout_s"):
            positive(where, key, getattr(self, key))
        if self.lattice not in ("ase", "gpaw"):
            raise ConfigError(f"{where}.lattice: must be 'ase' (ASE reference states) or 'gpaw' (GPAW-relaxed "
                              f"volume), got '{self.lattice}'")


@dataclass
class TasksConfig:
    """Which protocols run (TM23: accuracy, transfer, learning curve, grid search; MS25: size extensivity). A
    config that names no tasks gets accuracy only; ``transfer: {}`` / ``learning_curve: {}`` /
    ``size_extensivity: {}`` switch those on with their defaults; null switches off. ``grid`` needs its params."""

    accuracy: bool = True
    transfer: TransferConfig | None = None
    learning_curve: LearningCurveConfig | None = None
    grid: GridConfig | None = None
    size_extensivity: SizeExtensivityConfig | None = None
    observables: ObservablesConfig | None = None
    crash_test: CrashTestConfig | None = None
    checks: ChecksConfig | None = None
    calibration: CalibrationConfig | None = None
    electronic: ElectronicConfig | None = None

    def check(self, where: str, labels: list[str]) -> None:
        """Checks that need no data; the data-set dependent ones (groups, sizes) run at planning."""
        if self.grid is not None:
            self.grid.check(f"{where}.grid", labels)
        if self.size_extensivity is not None:
            self.size_extensivity.check(f"{where}.size_extensivity")
        if self.observables is not None:
            self.observables.check(f"{where}.observables")
        if self.transfer is not None:
            self.transfer.check(f"{where}.transfer")
        if self.learning_curve is not None:
            self.learning_curve.check(f"{where}.learning_curve")
        if self.crash_test is not None:
            self.crash_test.check(f"{where}.crash_test")
        if self.checks is not None:
            self.checks.check(f"{where}.checks")
        if self.calibration is not None:
            self.calibration.check(f"{where}.calibration")
        if self.electronic is not None:
            self.electronic.check(f"{where}.electronic")

    def enabled(self) -> list[str]:
        return [t for t in TASKS if getattr(self, t) not in (None, False)]
