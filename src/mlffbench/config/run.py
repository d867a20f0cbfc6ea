"""The run config: data sets, models, tasks and execution, loaded from YAML and validated before anything runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlffbench.config.datasets import DataConfig, DataSetEntry, FilesConfig, SplitConfig
from mlffbench.config.schema import from_dict
from mlffbench.config.tasks import TASKS, TasksConfig
from mlffbench.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


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
    #: overrides of the run's training protocol for this model (epoch-trained families only)
    training: dict[str, Any] | None = None

    def check(self, where: str) -> None:
        from mlffbench.models.registry import model_names

        if self.name not in model_names():
            raise ConfigError(f"{where}.name: unknown model '{self.name}' (known: {', '.join(model_names())})")
        for i, task in enumerate(self.tasks or []):
            if task not in TASKS:
                raise ConfigError(f"{where}.tasks[{i}]: unknown task '{task}' (known: {', '.join(TASKS)})")
        check_model_params(self.name, self.params, f"{where}.params")
        if self.training is not None:
            from mlffbench.models.registry import get_model_class

            if not get_model_class(self.name).epoch_trained:
                raise ConfigError(f"{where}.training: {self.name} is not trained by epochs, so it has no training "
                                  "protocol (remove the block; its fit is set by its params)")


@dataclass
class RunConfig:
    """A run: data sets (``datasets`` entries of any source; ``data`` is the shorthand for one ``generate``
    entry, the TM23 protocol, and the default when no data set is named), the default ``split`` of every data set,
    models, tasks and where jobs run."""

    name: str = "quick"
    seed: int = 0
    data: DataConfig | None = None
    datasets: list[DataSetEntry] = field(default_factory=list)
    split: SplitConfig = field(default_factory=SplitConfig)
    models: list[ModelConfig] = field(
        default_factory=lambda: [ModelConfig("labeler"), ModelConfig("mean_energy")]
    )
    tasks: TasksConfig = field(default_factory=TasksConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    #: the training protocol of every epoch-trained family (``mlffbench.models.training.Training``: max_epochs,
    #: max_minutes, patience, min_delta, validation_fraction, device, precision); ``models[i].training`` overrides
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.data is None and not self.datasets:
            self.data = DataConfig()

    def entries(self) -> list[tuple[str, DataSetEntry]]:
        """(config key, entry) of every data-set entry, ``data`` first."""
        out = [("data", self.data)] if self.data is not None else []
        return out + [(f"datasets[{i}]", d) for i, d in enumerate(self.datasets)]

    def check(self, where: str) -> None:
        for key, entry in self.entries():
            entry.check(f"{where}{key}")
        self.split.check(f"{where}split")
        labels = [m.label or m.name for m in self.models]
        self.tasks.check(f"{where}tasks", labels)
        self.execution.check(f"{where}execution")
        for i, model in enumerate(self.models):
            model.check(f"{where}models[{i}]")
        base = self.training_protocol(None, where)
        for i, model in enumerate(self.models):
            if model.training is not None:
                self.training_protocol(model, f"{where}models[{i}].", base)
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{where}models: model labels must be unique, got {labels}")

    def training_protocol(self, model: "ModelConfig | None", where: str = "", base=None):
        """The training protocol of ``model`` (the run's, with the model's overrides; None: the run's), checked:
        an impossible one is a ConfigError naming the key."""
        from mlffbench.models.training import Training, TrainingError

        try:
            base = base or Training.from_dict(self.training)
        except TrainingError as exc:
            raise ConfigError(f"{where if model is None else ''}training.{exc}") from None
        if model is None or not model.training:
            return base
        try:
            unknown = sorted(set(model.training) - set(Training.keys()))
            if unknown:
                raise TrainingError(f"{unknown[0]}: unknown key (known: {', '.join(Training.keys())})")
            return base.merged(model.training)
        except TrainingError as exc:
            raise ConfigError(f"{where}training.{exc}") from None
        except TypeError as exc:
            raise ConfigError(f"{where}training: {exc}") from None

    def check_trains(self, where: str = "") -> None:
        """A run must train or score something: ``models: []`` would make the data and nothing else, a run that
        benchmarks nothing. Checked when a run is planned, not at loading, so that ``mlffbench generate`` still
        takes a data-only config. (Every task, the model-free ``electronic`` too, is planned through the models.)"""
        if not self.models:
            raise ConfigError(f"{where}models: an empty list, so this run would make data and train nothing; name "
                              "at least one model (e.g. acegp, mean_energy; docs/models.md), or make the data only "
                              "with 'mlffbench generate CONFIG --out DIR'")


def check_model_params(model_name: str, params: dict, where: str) -> None:
    """The model family's own params check, its ConfigError prefixed with ``where``."""
    from mlffbench.models.registry import get_model_class

    try:
        get_model_class(model_name).check_params(params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_from_data(data, where: str, base: Path) -> RunConfig:
    """A checked RunConfig from parsed YAML ``data``; relative data paths resolve against ``base``. Errors are
    prefixed with ``where`` (the file)."""
    if data is None or data == {}:
        raise ConfigError(f"{where}: the config is empty (name data sets and models; built-in configs: "
                          f"{', '.join(builtin_configs())})")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    try:
        config = from_dict(RunConfig, data)
        for _, entry in config.entries():
            if isinstance(entry, FilesConfig):
                entry.resolve_paths(base)
        config.check("")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping, at any depth. YAML requires unique keys, but
    PyYAML silently keeps the last one, so ``seed: 0`` ... ``seed: 1`` would run seed 1 without a word."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:  # before merge keys (<<) are flattened: overriding a merged key is fine
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base constructor says so
                    continue
                if first is not None:
                    raise ConfigError(f"{key}: duplicate key (line {first} and line {line}); YAML keys must be "
                                      "unique, keep one")
                seen[key] = line
        return super().construct_mapping(node, deep)


def load_config(path: str | Path | None) -> RunConfig:
    """Read and validate a run config (``None`` = the built-in ``quick`` default; a bare name = a built-in)."""
    if path is None:
        return default_config()
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.is_file():
        builtin = CONFIG_DIR / f"{path.name}.yaml"
        if builtin.is_file():
            path = builtin
        else:
            raise ConfigError(f"{path}: no such config file (built-in configs: {', '.join(builtin_configs())})")
    try:
        data = yaml.load(path.read_text(), Loader=UniqueKeyLoader)
    except ConfigError as exc:  # a duplicate key
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    return config_from_data(data, str(path), path.resolve().parent)


def builtin_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def default_config() -> RunConfig:
    return load_config(CONFIG_DIR / "quick.yaml")
