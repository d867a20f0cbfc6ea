"""Typed, strictly validated configuration.

A config is YAML validated into dataclasses: an unknown or mistyped key, a wrong type or an impossible value
is a ``ConfigError`` whose one-line message names the file and the dotted key. ``datasets`` (data-set entries and
splits), ``tasks`` (task sections) and ``run`` (the run config and loader); ``schema`` converts YAML to dataclasses.
"""

from mlffbench.config.datasets import (
    NAME, SPLIT_KINDS, BuiltinConfig, DataConfig, DataSetEntry, FilesConfig, SplitConfig,
)
from mlffbench.config.run import (
    ExecutionConfig, ModelConfig, RunConfig, builtin_configs, check_model_params, config_from_data,
    default_config, load_config,
)
from mlffbench.config.schema import from_dict, to_dict
from mlffbench.config.tasks import (
    GRID_DATA, GRID_SELECT, TASKS, CalibrationConfig, ChecksConfig, CrashTestConfig, ElectronicConfig, GridConfig, LearningCurveConfig, ObservablesConfig,
    SizeExtensivityConfig, TasksConfig, TransferConfig,
)

from mlffbench.elements import TM23_FRACTIONS

__all__ = [
    "BuiltinConfig", "NAME", "SPLIT_KINDS", "TM23_FRACTIONS", "DataConfig", "DataSetEntry", "FilesConfig", "SplitConfig",
    "ExecutionConfig", "ModelConfig", "RunConfig", "builtin_configs", "check_model_params", "config_from_data",
    "default_config", "load_config", "from_dict", "to_dict", "GRID_DATA", "GRID_SELECT", "TASKS",
    "CalibrationConfig", "ChecksConfig", "CrashTestConfig", "ElectronicConfig", "GridConfig", "LearningCurveConfig", "ObservablesConfig", "SizeExtensivityConfig",
    "TasksConfig", "TransferConfig",
]
