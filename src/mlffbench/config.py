"""Typed, strictly validated configuration.

A config is YAML validated into dataclasses: an unknown or mistyped key, a wrong type or an impossible value
is a ``ConfigError`` whose one-line message names the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlffbench.errors import ConfigError

TM23_FRACTIONS = {"cold": 0.25, "warm": 0.75, "melt": 1.25}


@dataclass
class DataConfig:
    """TM23 data protocol (Methods IV.A); defaults are the paper's except the number of frames."""

    elements: list[str] | str = "covered"  # list of symbols, or "covered" = every TM23 metal the labeler covers
    labeler: str | dict = "lammps"
    relabel: str | dict | None = None  # optional second labeler applied to every frame
    min_length: float = 7.0  # Å, every supercell lattice vector at least this long
    temperatures: dict[str, float] = field(default_factory=lambda: dict(TM23_FRACTIONS))  # label -> x T_melt
    frames_per_temperature: int = 100  # paper: 1000
    equilibration_fs: float = 5000.0
    interval_fs: float = 50.0
    timestep_fs: float = 5.0
    thermostat_steps: float = 40.0

    def check(self, where: str) -> None:
        _positive(where, "min_length", self.min_length)
        _positive(where, "frames_per_temperature", self.frames_per_temperature)
        _positive(where, "interval_fs", self.interval_fs)
        _positive(where, "timestep_fs", self.timestep_fs)
        _positive(where, "thermostat_steps", self.thermostat_steps)
        if self.equilibration_fs < 0:
            raise ConfigError(f"{where}.equilibration_fs: must be >= 0, got {self.equilibration_fs}")
        steps = self.interval_fs / self.timestep_fs
        if abs(steps - round(steps)) > 1e-9:
            raise ConfigError(f"{where}.interval_fs: {self.interval_fs} is not a multiple of timestep_fs {self.timestep_fs}")
        if not self.temperatures:
            raise ConfigError(f"{where}.temperatures: needs at least one label: fraction of T_melt")
        for name, fraction in self.temperatures.items():
            _positive(where, f"temperatures.{name}", fraction)
        if isinstance(self.elements, str) and self.elements != "covered":
            raise ConfigError(f"{where}.elements: a list of symbols or 'covered', got '{self.elements}'")
        self.check_labelers(where)

    def reference(self) -> dict:
        """Spec of the labeler whose labels the data carry: the relabeler when there is one."""
        from mlffbench.data.labelers import labeler_spec

        return labeler_spec(self.relabel or self.labeler)

    def check_labelers(self, where: str) -> None:
        """Labelers must exist and cover every listed element (no LAMMPS is started for this)."""
        from mlffbench import elements as elements_db
        from mlffbench.data.labelers import make_labeler
        from mlffbench.errors import MlffbenchError

        labelers = {}
        for key in ("labeler", "relabel"):
            spec = getattr(self, key)
            if spec is None:
                continue
            try:
                labelers[key] = make_labeler(spec)
            except (MlffbenchError, TypeError) as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
        if isinstance(self.elements, list):
            for i, el in enumerate(self.elements):
                try:
                    elements_db.get(el)
                except MlffbenchError as exc:
                    raise ConfigError(f"{where}.elements[{i}]: {exc}") from None
                for key, labeler in labelers.items():
                    if not labeler.supports([el]):
                        raise ConfigError(f"{where}.elements[{i}]: {key} '{labeler.name}' cannot label {el}")


@dataclass
class SplitConfig:
    test_last: int | float = 0.1  # per trajectory: last N frames (int) or fraction (float) are the test set

    def check(self, where: str) -> None:
        if isinstance(self.test_last, float) and not 0 < self.test_last < 1:
            raise ConfigError(f"{where}.test_last: a fraction must lie in (0, 1), got {self.test_last}")
        if isinstance(self.test_last, int) and self.test_last < 1:
            raise ConfigError(f"{where}.test_last: a frame count must be >= 1, got {self.test_last}")


TASKS = ("accuracy", "transfer", "learning_curve", "grid", "size_extensivity", "observables")


@dataclass
class TransferConfig:
    """TM23 Figs 4-5 / Tables S9-S13: train on one temperature, test on the others."""

    train: str = "cold"
    test: list[str] = field(default_factory=lambda: ["warm", "melt"])


@dataclass
class LearningCurveConfig:
    """Nested training subsets (frames drawn from the full-split training set) x replicates; power-law fit."""

    sizes: list[int] = field(default_factory=lambda: [30, 90, 270])
    replicates: int = 1
    sweep: dict[str, list[Any]] = field(default_factory=dict)  # model param -> values: one curve per value

    def check(self, where: str) -> None:
        if len(self.sizes) < 2 or any(n < 1 for n in self.sizes) or len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{where}.sizes: needs >= 2 distinct positive frame counts, got {self.sizes}")
        _positive(where, "replicates", self.replicates)
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
                if len({_value_key(v) for v in values}) != len(values):
                    raise ConfigError(f"{where}.{prefix}.{name}: values must be distinct, got {values}")
        for label in self.by_model:
            if label not in labels:
                raise ConfigError(f"{where}.by_model.{label}: no model with that label (labels: {', '.join(labels)})")
        _positive(where, "train_frames", self.train_frames)
        _positive(where, "test_frames", self.test_frames)
        if self.select not in GRID_SELECT:
            raise ConfigError(f"{where}.select: must be one of {', '.join(GRID_SELECT)}, got '{self.select}'")
        if self.data not in GRID_DATA:
            raise ConfigError(f"{where}.data: must be one of {', '.join(GRID_DATA)}, got '{self.data}'")
        _positive(where, "large_min_length", self.large_min_length)
        if self.large_frames_per_temperature is not None:
            _positive(where, "large_frames_per_temperature", self.large_frames_per_temperature)
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

    def check(self, where: str, small_min_length: float) -> None:
        if not self.large_min_length > small_min_length:
            raise ConfigError(f"{where}.large_min_length: must exceed data.min_length {small_min_length:g}, "
                              f"got {self.large_min_length:g}")
        _positive(where, "frames_per_temperature", self.frames_per_temperature)
        if self.train_frames is not None:
            _positive(where, "train_frames", self.train_frames)


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

    def check(self, where: str, temperatures: dict[str, float], labels: list[str], min_length: float) -> None:
        if self.grid is not None:
            self.grid.check(f"{where}.grid", labels)
        if self.size_extensivity is not None:
            self.size_extensivity.check(f"{where}.size_extensivity", min_length)
        if self.observables is not None:
            self.observables.check(f"{where}.observables")
        if self.transfer is not None:
            if not self.transfer.test:
                raise ConfigError(f"{where}.transfer.test: needs at least one temperature to test on")
            for key, label in [("train", self.transfer.train)] + [(f"test[{i}]", t) for i, t in enumerate(self.transfer.test)]:
                if label not in temperatures:
                    raise ConfigError(f"{where}.transfer.{key}: '{label}' is not a data temperature "
                                      f"({', '.join(temperatures)})")
        if self.learning_curve is not None:
            self.learning_curve.check(f"{where}.learning_curve")

    def enabled(self) -> list[str]:
        return [t for t in TASKS if getattr(self, t) not in (None, False)]


@dataclass
class ExecutionConfig:
    """Where jobs run: ``inprocess`` (one after another, for debugging) or ``dask`` (a LocalCluster of
    ``workers`` processes, or the cluster at ``scheduler``). A failing job is retried ``retries`` times."""

    executor: str = "dask"
    workers: int = 0  # 0 = one per CPU core
    scheduler: str | None = None  # address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786
    retries: int = 1

    def check(self, where: str) -> None:
        if self.executor not in ("inprocess", "dask"):
            raise ConfigError(f"{where}.executor: must be 'inprocess' or 'dask', got '{self.executor}'")
        if self.workers < 0:
            raise ConfigError(f"{where}.workers: must be >= 0, got {self.workers}")
        if self.retries < 0:
            raise ConfigError(f"{where}.retries: must be >= 0, got {self.retries}")


@dataclass
class ModelConfig:
    name: str
    label: str | None = None  # display name; defaults to name
    params: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] | None = None  # subset of the run's tasks for this model (default: all of them)
    python: str | None = None  # run this model's jobs with another interpreter (python -m mlffbench.worker)

    def check(self, where: str) -> None:
        from mlffbench.models.registry import model_names

        if self.name not in model_names():
            raise ConfigError(f"{where}.name: unknown model '{self.name}' (known: {', '.join(model_names())})")
        for i, task in enumerate(self.tasks or []):
            if task not in TASKS:
                raise ConfigError(f"{where}.tasks[{i}]: unknown task '{task}' (known: {', '.join(TASKS)})")
        check_model_params(self.name, self.params, f"{where}.params")


@dataclass
class RunConfig:
    name: str = "quick"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    models: list[ModelConfig] = field(
        default_factory=lambda: [ModelConfig("labeler"), ModelConfig("mean_energy")]
    )
    tasks: TasksConfig = field(default_factory=TasksConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def check(self, where: str) -> None:
        self.data.check(f"{where}data")
        self.split.check(f"{where}split")
        labels = [m.label or m.name for m in self.models]
        self.tasks.check(f"{where}tasks", self.data.temperatures, labels, self.data.min_length)
        self.execution.check(f"{where}execution")
        for i, model in enumerate(self.models):
            model.check(f"{where}models[{i}]")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{where}models: model labels must be unique, got {labels}")


def check_model_params(model_name: str, params: dict, where: str) -> None:
    """The model family's own params check, its ConfigError prefixed with ``where``."""
    from mlffbench.models.registry import get_model_class

    try:
        get_model_class(model_name).check_params(params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _value_key(value):
    """A hashable form of a config value for duplicate checks (3 and 3.0 are the same number)."""
    import json

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return json.dumps(value, sort_keys=True, default=str)


def _positive(where: str, key: str, value) -> None:
    if not value > 0:
        raise ConfigError(f"{where}.{key}: must be > 0, got {value}")


def _convert(tp, value, key: str):
    """Convert ``value`` to the annotated type ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:  # X | None: the inner error names the inner key (e.g. tasks.grid.retrain)
            raise ConfigError(errors[0])
        names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        raise ConfigError(f"{key}: expected {names}, got {type(value).__name__} {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp in (str, bool, dict):
        if not isinstance(value, tp):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - programming error


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(known))})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{prefix}{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{f.name}: required key is missing")
    return cls(**kwargs)


def load_config(path: str | Path | None) -> RunConfig:
    """Read and validate a run config (``None`` = the built-in ``quick`` default)."""
    if path is None:
        return default_config()
    path = Path(path)
    if not path.is_file():
        builtin = Path(__file__).parent / "configs" / f"{path.name}.yaml"
        if builtin.is_file():
            path = builtin
        else:
            raise ConfigError(f"{path}: no such config file (built-in configs: {', '.join(builtin_configs())})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        config = from_dict(RunConfig, data)
        config.check("")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def builtin_configs() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.yaml"))


def default_config() -> RunConfig:
    return load_config(Path(__file__).parent / "configs" / "quick.yaml")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
