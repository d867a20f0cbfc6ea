"""Data-set entries of a run config: where labelled frames come from and how they are split.

Every entry has a ``source``: ``generate`` (the TM23 data protocol, one data set per element) or ``files`` (the
user's own labelled files: extxyz, ASE db, mlearn JSON, OUTCAR / vasprun.xml). Built-in data sets are a third
source (``mlffbench.datasets``). The planner turns entries into data sets (``mlffbench.datasets.plan``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mlffbench.config.schema import positive, to_dict
from mlffbench.elements import TM23_FRACTIONS
from mlffbench.errors import ConfigError

#: data-set names name folders and jobs (``task:name:model``): no ':' '/' or spaces; '@' marks variants
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def check_name(where: str, key: str, name: str) -> None:
    if not NAME.match(name or ""):
        raise ConfigError(f"{where}.{key}: '{name}' is not a usable data-set name (letters, digits, _ . + -; "
                          "starting with a letter or digit)")


def check_source(where: str, source: str, expected: str) -> None:
    if source != expected:  # the tagged union picked this class by its source; a direct construction may not
        raise ConfigError(f"{where}.source: expected '{expected}', got '{source}'")


SPLIT_KINDS = ("auto", "last", "random", "files")


@dataclass
class SplitConfig:
    """How a data set is split into training and test frames (seeded by the run's ``seed``):
    ``last`` (TM23: per trajectory the last ``test_last`` frames, a count or a fraction), ``random`` (a seeded
    ``test_fraction`` of each group), ``files`` (the frames of a ``files`` entry's ``test_files`` are the test
    set) or ``auto``: ``files`` when the data set has test files, ``last`` for generated trajectories, else
    ``random``."""

    kind: str = "auto"
    test_last: int | float = 0.1  # last: per trajectory, last N frames (int) or fraction (float)
    test_fraction: float = 0.1  # random: fraction of every group (stratified)

    def check(self, where: str) -> None:
        if self.kind not in SPLIT_KINDS:
            raise ConfigError(f"{where}.kind: must be one of {', '.join(SPLIT_KINDS)}, got '{self.kind}'")
        if isinstance(self.test_last, float) and not 0 < self.test_last < 1:
            raise ConfigError(f"{where}.test_last: a fraction must lie in (0, 1), got {self.test_last}")
        if isinstance(self.test_last, int) and self.test_last < 1:
            raise ConfigError(f"{where}.test_last: a frame count must be >= 1, got {self.test_last}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"{where}.test_fraction: must lie in (0, 1), got {self.test_fraction}")


@dataclass
class DataConfig:
    """The ``generate`` data-set source: the TM23 data protocol (Methods IV.A), one data set per element, named by
    its symbol (``<name>-<symbol>`` when ``name`` is set). Defaults are the paper's except the number of frames."""

    source: str = "generate"
    name: str | None = None  # prefix of the data-set names (needed when two generate entries share elements)
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
    split: SplitConfig | None = None  # this entry's split (default: the run's ``split``)

    #: fields that are not part of the generation protocol (they do not change the frames)
    NOT_PROTOCOL = ("source", "name", "split")

    def protocol(self) -> dict:
        """The fields that determine the generated frames (the data job's inputs)."""
        return {k: v for k, v in to_dict(self).items() if k not in self.NOT_PROTOCOL}

    def check(self, where: str) -> None:
        check_source(where, self.source, "generate")
        if self.name is not None:
            check_name(where, "name", self.name)
        if self.split is not None:
            self.split.check(f"{where}.split")
        positive(where, "min_length", self.min_length)
        positive(where, "frames_per_temperature", self.frames_per_temperature)
        positive(where, "interval_fs", self.interval_fs)
        positive(where, "timestep_fs", self.timestep_fs)
        positive(where, "thermostat_steps", self.thermostat_steps)
        if self.equilibration_fs < 0:
            raise ConfigError(f"{where}.equilibration_fs: must be >= 0, got {self.equilibration_fs}")
        steps = self.interval_fs / self.timestep_fs
        if abs(steps - round(steps)) > 1e-9:
            raise ConfigError(f"{where}.interval_fs: {self.interval_fs} is not a multiple of timestep_fs {self.timestep_fs}")
        if not self.temperatures:
            raise ConfigError(f"{where}.temperatures: needs at least one label: fraction of T_melt")
        for name, fraction in self.temperatures.items():
            positive(where, f"temperatures.{name}", fraction)
        if isinstance(self.elements, list) and not self.elements:
            raise ConfigError(f"{where}.elements: an empty list; give symbols or 'covered'")
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
class FilesConfig:
    """The ``files`` source: one data set from the user's labelled files (paths or globs, relative to the config
    file). ``test_files``: frames that form the test set (split ``files``). ``group_key``: the frame info key
    whose value is each frame's group (default: extxyz ``config_type``, else the mlearn ``group``, else the file
    stem). Energies are per cell. Ambiguous units are declared: ``stress_unit`` (eV/A3, GPa, kbar, bar) and
    ``stress_convention`` (tensile = positive under tension, ASE; compressive = positive under compression,
    VASP / LAMMPS pressure); ``shear_order`` for mlearn-style JSON (e.g. "xy,yz,zx"). ``labeler``: the
    reference calculator that made the labels, when there is one (then observables can run on this data set).
    ``path_groups``: groups whose frames, in file order, are a reaction path (e.g. NEB images): the barrier
    (highest energy minus the first frame's) is scored model vs reference."""

    source: str = "files"
    name: str = ""
    files: list[str] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    format: str | None = None
    group_key: str | None = None
    stress_unit: str | None = None
    stress_convention: str | None = None
    shear_order: str | None = None
    labeler: str | dict | None = None
    level_of_theory: str | None = None
    path_groups: list[str] = field(default_factory=list)  # groups that are a reaction path: barrier scored
    split: SplitConfig | None = None

    def check(self, where: str) -> None:
        from mlffbench import units

        check_source(where, self.source, "files")
        check_name(where, "name", self.name)
        if not self.files:
            raise ConfigError(f"{where}.files: needs at least one path or glob")
        for key in ("files", "test_files"):
            for i, pattern in enumerate(getattr(self, key)):
                if not pattern.strip():
                    raise ConfigError(f"{where}.{key}[{i}]: an empty path")
        if self.stress_unit is not None and units.canonical_stress_unit(self.stress_unit) is None:
            raise ConfigError(f"{where}.stress_unit: '{self.stress_unit}' is not one of "
                              f"{', '.join(units.STRESS_UNITS)}")
        if self.stress_convention is not None and self.stress_convention not in units.STRESS_CONVENTIONS:
            raise ConfigError(f"{where}.stress_convention: '{self.stress_convention}' is not one of "
                              f"{', '.join(units.STRESS_CONVENTIONS)}")
        if self.split is not None:
            self.split.check(f"{where}.split")
        if self.labeler is not None:
            from mlffbench.data.labelers import make_labeler
            from mlffbench.errors import MlffbenchError

            try:
                make_labeler(self.labeler)
            except (MlffbenchError, TypeError) as exc:
                raise ConfigError(f"{where}.labeler: {exc}") from None

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths and globs absolute against ``base`` (the config file's folder)."""
        def absolute(p: str) -> str:
            return p if Path(p).is_absolute() or p.startswith("pkg:") else str(base / p)  # pkg: a shipped file

        self.files = [absolute(p) for p in self.files]
        self.test_files = [absolute(p) for p in self.test_files]


@dataclass
class BuiltinConfig:
    """The ``builtin`` source: data sets that ship with mlffbench or that its own recipes generate with a shipped
    reference potential (``mlffbench datasets`` lists them). ``names``: data-set names or suite names (``mlearn``
    = the six mlearn elements)."""

    source: str = "builtin"
    names: list[str] = field(default_factory=list)
    split: SplitConfig | None = None

    def check(self, where: str) -> None:
        from mlffbench.datasets import builtin

        check_source(where, self.source, "builtin")
        if not self.names:
            raise ConfigError(f"{where}.names: needs at least one built-in data set ({', '.join(builtin.choices())})")
        for i, name in enumerate(self.names):
            if name not in builtin.choices():
                raise ConfigError(f"{where}.names[{i}]: unknown built-in data set '{name}' "
                                  f"(known: {', '.join(builtin.choices())})")
        if self.split is not None:
            self.split.check(f"{where}.split")


DataSetEntry = DataConfig | FilesConfig | BuiltinConfig
