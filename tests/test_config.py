"""Configuration loading and strict validation (mlffbench.config)."""

from __future__ import annotations

import pytest
import yaml

from mlffbench.config import (
    DataConfig, FilesConfig, ModelConfig, RunConfig, SplitConfig, builtin_configs, from_dict, load_config, to_dict,
)
from mlffbench.errors import ConfigError


def test_default_is_quick():
    config = load_config(None)
    assert config.name == "quick" and config.seed == 0
    assert config.data.elements == "covered" and config.data.labeler == "lammps"
    assert config.data.frames_per_temperature == 100
    assert config.data.temperatures == {"cold": 0.25, "warm": 0.75, "melt": 1.25}
    assert (config.data.equilibration_fs, config.data.interval_fs, config.data.timestep_fs) == (5000, 50, 5)
    assert config.data.min_length == 7.0
    assert config.split.test_last == 0.1 and isinstance(config.split.test_last, float)
    assert [m.label or m.name for m in config.models] == ["ace-B1", "ace-B2", "mean_energy"]
    assert config.tasks.enabled() == ["accuracy", "transfer", "learning_curve", "checks", "calibration"]
    assert to_dict(load_config("quick")) == to_dict(config)


def test_builtin_configs_load():
    assert {"quick", "tm23"} <= set(builtin_configs())
    tm23 = load_config("tm23")
    assert tm23.name == "tm23"
    assert tm23.data.frames_per_temperature == 1000
    assert tm23.split.test_last == 100 and isinstance(tm23.split.test_last, int)


def test_file_config_and_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "name": "mine", "seed": 3,
        "data": {"elements": ["Cu", "Ni"], "equilibration_fs": 200, "min_length": 7,
                 "labeler": {"name": "emt"}, "temperatures": {"hot": 2}},
        "split": {"test_last": 0.2},
        "models": [{"name": "acegp", "label": "me", "params": {"train_on": ["energy", "forces"]}}],
    }))
    config = load_config(path)
    assert config.name == "mine" and config.seed == 3
    assert config.data.elements == ["Cu", "Ni"]
    assert config.data.min_length == 7.0 and isinstance(config.data.min_length, float)  # int -> float
    assert config.data.labeler == {"name": "emt"}
    assert config.data.temperatures == {"hot": 2.0}
    assert config.data.frames_per_temperature == 100  # unspecified keys take defaults
    assert config.models == [ModelConfig("acegp", "me", {"train_on": ["energy", "forces"]})]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_config_is_an_error_not_the_default_run(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"empty\.yaml: the config is empty"):
        load_config(path)


def test_datasets_entries_are_tagged_by_source_and_paths_resolve(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "datasets": [{"source": "files", "name": "mine", "files": ["data/*.xyz"], "test_files": ["/abs/t.xyz"],
                      "stress_unit": "GPa", "split": {"kind": "random", "test_fraction": 0.2}},
                     {"source": "generate", "name": "emt", "elements": ["Cu"], "labeler": "emt"}],
        "models": [{"name": "mean_energy"}],
    }))
    config = load_config(path)
    assert config.data is None  # no 'data' shorthand: only the named entries
    files, generated = config.datasets
    assert isinstance(files, FilesConfig) and isinstance(generated, DataConfig)
    assert files.files == [str(tmp_path / "data/*.xyz")] and files.test_files == ["/abs/t.xyz"]
    assert files.split.kind == "random" and files.split.test_fraction == 0.2
    assert [k for k, _ in config.entries()] == ["datasets[0]", "datasets[1]"]


@pytest.mark.parametrize(
    "entry, needle",
    [
        ({"source": "nope", "name": "x"}, r"datasets\[0\]\.source: must be one of generate, files"),
        ({"source": "files", "name": "x"}, r"datasets\[0\]\.files: needs at least one"),
        ({"source": "files", "name": "a b", "files": ["f.xyz"]}, r"datasets\[0\]\.name: 'a b' is not a usable"),
        ({"source": "files", "name": "x", "files": ["f.xyz"], "stress_unit": "psi"}, r"stress_unit: 'psi'"),
        ({"source": "files", "name": "x", "files": ["f.xyz"], "stress_convention": "up"}, r"stress_convention"),
        ({"source": "files", "name": "x", "files": ["f.xyz"], "split": {"kind": "k"}}, r"split\.kind: must be"),
        ({"source": "generate", "elements": []}, r"datasets\[0\]\.elements: an empty list"),
    ],
)
def test_dataset_entry_errors_name_the_key(tmp_path, entry, needle):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"datasets": [entry], "models": [{"name": "mean_energy"}]}))
    with pytest.raises(ConfigError, match=needle):
        load_config(path)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"framez": 1}, "framez"),
        ({"data": {"framez": 1}}, "data.framez"),
        ({"split": {"test_lst": 1}}, "split.test_lst"),
        ({"models": [{"name": "labeler", "parms": {}}]}, "models[0].parms"),
        ({"models": [{"name": "labeler"}, {"name": "mean_energy", "lable": "x"}]}, "models[1].lable"),
    ],
)
def test_from_dict_rejects_unknown_keys_with_dotted_path(data, key):
    with pytest.raises(ConfigError) as info:
        from_dict(RunConfig, data)
    message = str(info.value)
    assert message.startswith(f"{key}: unknown key"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    "data, key",
    [
        ({"data": {"frames_per_temperature": "many"}}, "data.frames_per_temperature"),
        ({"data": {"frames_per_temperature": 1.5}}, "data.frames_per_temperature"),
        ({"data": {"frames_per_temperature": True}}, "data.frames_per_temperature"),  # bool is not an int
        ({"data": {"min_length": "7"}}, "data.min_length"),
        ({"data": {"elements": 5}}, "data.elements"),
        ({"seed": "0"}, "seed"),
        ({"models": {"name": "labeler"}}, "models"),
        ({"models": [{"label": "x"}]}, "models[0].name"),  # required key missing
        ({"split": {"test_last": "all"}}, "split.test_last"),
    ],
)
def test_from_dict_rejects_wrong_types(data, key):
    with pytest.raises(ConfigError) as info:
        from_dict(RunConfig, data)
    assert str(info.value).startswith(f"{key}:"), str(info.value)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"data": {"min_length": -1}}, "data.min_length"),
        ({"data": {"frames_per_temperature": 0}}, "data.frames_per_temperature"),
        ({"data": {"equilibration_fs": -5}}, "data.equilibration_fs"),
        ({"data": {"interval_fs": 12}}, "data.interval_fs"),
        ({"data": {"temperatures": {}}}, "data.temperatures"),
        ({"data": {"temperatures": {"cold": 0}}}, "data.temperatures.cold"),
        ({"data": {"temperatures": {"cold": "x"}}}, "data.temperatures.cold"),  # a string, but no temperature
        ({"data": {"elements": "all"}}, "data.elements"),
        ({"split": {"test_last": 1.0}}, "split.test_last"),
        ({"split": {"test_last": 0}}, "split.test_last"),
        ({"models": [{"name": "nope"}]}, "models[0].name"),
        ({"models": [{"name": "labeler"}, {"name": "mean_energy", "label": "labeler"}]}, "models"),
    ],
)
def test_check_rejects_impossible_values(data, key):
    config = from_dict(RunConfig, data)
    with pytest.raises(ConfigError) as info:
        config.check("")
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  interval_fs: 7\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: data\.interval_fs: .*not a multiple"):
        load_config(path)
    path.write_text("data: {elements: [Cu\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_sections_can_be_built_directly():
    assert from_dict(SplitConfig, {"test_last": 5}).test_last == 5
    data = from_dict(DataConfig, {"elements": ["Cu"]}, "data")
    data.check("data")
    with pytest.raises(ConfigError, match=r"^data\.bogus: unknown key"):
        from_dict(DataConfig, {"bogus": 1}, "data")
