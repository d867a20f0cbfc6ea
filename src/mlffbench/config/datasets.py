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


#: ``elements`` keywords of a ``generate`` entry: which metals, among those a labeler covers and we can build
ELEMENT_SETS = ("covered", "tm23", "metal43")


@dataclass
class DataConfig:
    """The ``generate`` data-set source: the TM23 data protocol (Methods IV.A), one data set per element, named by
    its symbol (``<name>-<symbol>`` when ``name`` is set). Defaults are the paper's except the number of frames.

    ``elements``: symbols, or ``covered`` (every TM23 metal a labeler covers), ``tm23`` (all 27) or ``metal43``
    (all 43). ``labeler``: one labeler, or a preference list (each element takes the first that covers it);
    ``element_labelers``: {symbol: labeler} overrides both. ``temperatures``: label -> a fraction of T_melt, or
    any form of ``mlffbench.data.temperatures`` (fraction of T_c, kelvin, a Metal-43 Table 1 column)."""

    source: str = "generate"
    name: str | None = None  # prefix of the data-set names (needed when two generate entries share elements)
    elements: list[str] | str = "covered"
    labeler: str | dict | list[str | dict] = "lammps"
    element_labelers: dict[str, str | dict] = field(default_factory=dict)
    relabel: str | dict | None = None  # optional second labeler applied to every frame
    min_length: float = 7.0  # Å, every supercell lattice vector at least this long
    temperatures: dict[str, float | str] = field(default_factory=lambda: dict(TM23_FRACTIONS))
    frames_per_temperature: int = 100  # paper: 1000
    equilibration_fs: float = 5000.0
    interval_fs: float = 50.0
    timestep_fs: float = 5.0
    thermostat_steps: float = 40.0
    split: SplitConfig | None = None  # this entry's split (default: the run's ``split``)
    # label checks this entry's labelers may fail (``mlffbench.data.labelers.checks``): they run, marked
    accept_failed_checks: list[str] = field(default_factory=list)

    #: fields that are not part of the generation protocol (they do not change the frames)
    NOT_PROTOCOL = ("source", "name", "split", "accept_failed_checks")

    def protocol(self, element: str | None = None) -> dict:
        """The fields that determine the generated frames (the data job's inputs); with ``element``, its own:
        ``labeler`` the one labeler that labels it (no preference list, no per-element map)."""
        out = {k: v for k, v in to_dict(self).items() if k not in self.NOT_PROTOCOL}
        if element is not None:
            out["labeler"] = self.labeler_for(element)
            out.pop("element_labelers")
        elif not self.element_labelers:
            out.pop("element_labelers")  # keeps the inputs (and job keys) of configs from before the field
        return out

    def check(self, where: str) -> None:
        from mlffbench.data import temperatures

        check_source(where, self.source, "generate")
        if self.name is not None:
            check_name(where, "name", self.name)
        if self.split is not None:
            self.split.check(f"{where}.split")
        _check_accept(where, self.accept_failed_checks)
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
            raise ConfigError(f"{where}.temperatures: needs at least one label: {temperatures.FORMS}")
        for name, value in self.temperatures.items():
            temperatures.check(f"{where}.temperatures.{name}", value)
        if isinstance(self.elements, list) and not self.elements:
            raise ConfigError(f"{where}.elements: an empty list; give symbols or one of {', '.join(ELEMENT_SETS)}")
        if isinstance(self.elements, str) and self.elements not in ELEMENT_SETS:
            raise ConfigError(f"{where}.elements: a list of symbols or one of {', '.join(ELEMENT_SETS)}, "
                              f"got '{self.elements}'")
        if isinstance(self.labeler, list) and not self.labeler:
            raise ConfigError(f"{where}.labeler: an empty preference list")
        self.check_labelers(where)

    def labeler_specs(self) -> list:
        """The preference list of labeler specs (one entry when ``labeler`` is a single labeler)."""
        return list(self.labeler) if isinstance(self.labeler, list) else [self.labeler]

    def labeler_for(self, element: str):
        """The labeler spec (as configured) that labels ``element``: its ``element_labelers`` entry, else the first
        of the preference list that covers it; None when none does."""
        from mlffbench.data.labelers import make_labeler

        if element in self.element_labelers:
            return self.element_labelers[element]
        return next((spec for spec in self.labeler_specs() if make_labeler(spec).supports([element])), None)

    def element_list(self) -> list[str]:
        """The configured elements: the list, or every metal of the named set that a labeler covers and whose
        ground-state prototype ``mlffbench.data.build`` can make (``covered``: the TM23 metals)."""
        from mlffbench import elements as elements_db
        from mlffbench.data import build

        if isinstance(self.elements, list):
            return list(self.elements)
        pool = elements_db.METAL43 if self.elements == "metal43" else elements_db.TM23
        return [el for el in pool if elements_db.get(el).lattice in build.BUILDABLE
                and self.labeler_for(el) is not None]

    def reference(self, element: str | None = None) -> dict:
        """Spec of the labeler whose labels the data carry: the relabeler when there is one, else the labeler of
        ``element`` (or the one labeler)."""
        from mlffbench.data.labelers import labeler_spec

        if self.relabel:
            return labeler_spec(self.relabel)
        spec = self.labeler_for(element) if element is not None else self.labeler_specs()[0]
        return labeler_spec(spec)

    def check_labelers(self, where: str) -> None:
        """Labelers must exist and cover every listed element (no LAMMPS is started for this)."""
        from mlffbench import elements as elements_db
        from mlffbench.data.labelers import make_labeler
        from mlffbench.errors import MlffbenchError

        specs = [(f"labeler[{i}]" if isinstance(self.labeler, list) else "labeler", spec)
                 for i, spec in enumerate(self.labeler_specs())]
        specs += [(f"element_labelers.{el}", spec) for el, spec in self.element_labelers.items()]
        if self.relabel is not None:
            specs.append(("relabel", self.relabel))
        for key, spec in specs:
            try:
                make_labeler(spec)
            except (MlffbenchError, TypeError) as exc:
                raise ConfigError(f"{where}.{key}: {exc}") from None
        for el in self.element_labelers:
            try:
                elements_db.get(el)
            except MlffbenchError as exc:
                raise ConfigError(f"{where}.element_labelers.{el}: {exc}") from None
        relabeler = make_labeler(self.relabel) if self.relabel is not None else None
        if isinstance(self.elements, list):
            for i, el in enumerate(self.elements):
                try:
                    elements_db.get(el)
                except MlffbenchError as exc:
                    raise ConfigError(f"{where}.elements[{i}]: {exc}") from None
                spec = self.labeler_for(el)
                if spec is None:
                    names = ", ".join(make_labeler(s).name for s in self.labeler_specs())
                    raise ConfigError(f"{where}.elements[{i}]: labeler '{names}' cannot label {el}")
                if el in self.element_labelers and not make_labeler(spec).supports([el]):
                    raise ConfigError(f"{where}.element_labelers.{el}: '{make_labeler(spec).name}' cannot label {el}")
                if relabeler is not None and not relabeler.supports([el]):
                    raise ConfigError(f"{where}.elements[{i}]: relabel '{relabeler.name}' cannot label {el}")


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
    (highest energy minus the first frame's) is scored model vs reference. ``energy``: ``per-cell`` (the
    default, and a declaration that turns the per-atom check off) or ``per-atom`` (converted to per cell on
    reading), for every file, or a mapping {path or glob: per-atom | per-cell} for a mix of files.
    ``allow_duplicates``: keep test frames that repeat training frames (refused by default: they flatter)."""

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
    accept_failed_checks: list[str] = field(default_factory=list)  # label checks ``labeler`` may fail
    energy: str | dict[str, str] | None = None  # per-cell | per-atom, or {path or glob: kind}; None: per cell
    allow_duplicates: bool = False  # test frames that repeat training frames are kept (warned) instead of refused

    def energy_kind(self, path) -> str | None:
        """The declared energy kind of one file (None: undeclared, read as per cell and checked)."""
        import fnmatch

        if not isinstance(self.energy, dict):
            return self.energy
        for pattern, kind in self.energy.items():
            if str(path) == pattern or fnmatch.fnmatch(str(path), pattern):
                return kind
        return None

    def check(self, where: str) -> None:
        from mlffbench import units
        from mlffbench.data.sanity import ENERGY_KINDS

        check_source(where, self.source, "files")
        declared = self.energy.items() if isinstance(self.energy, dict) else [(None, self.energy)]
        for pattern, kind in declared:
            key = "energy" if pattern is None else f"energy.{pattern}"
            if kind is not None and kind not in ENERGY_KINDS:
                raise ConfigError(f"{where}.{key}: '{kind}' is not one of {', '.join(ENERGY_KINDS)}")
        _check_accept(where, self.accept_failed_checks)
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
        if isinstance(self.energy, dict):  # per-file energy kinds name files like ``files`` does
            self.energy = {absolute(p): kind for p, kind in self.energy.items()}


@dataclass
class BuiltinConfig:
    """The ``builtin`` source: data sets that ship with mlffbench or that its own recipes generate with a shipped
    reference potential (``mlffbench datasets`` lists them). ``names``: data-set names or suite names (``mlearn``
    = the six mlearn elements)."""

    source: str = "builtin"
    names: list[str] = field(default_factory=list)
    split: SplitConfig | None = None
    accept_failed_checks: list[str] = field(default_factory=list)  # label checks the recipes' potentials may fail

    def check(self, where: str) -> None:
        from mlffbench.datasets import builtin

        check_source(where, self.source, "builtin")
        _check_accept(where, self.accept_failed_checks)
        if not self.names:
            raise ConfigError(f"{where}.names: needs at least one built-in data set ({', '.join(builtin.choices())})")
        for i, name in enumerate(self.names):
            if name not in builtin.choices():
                raise ConfigError(f"{where}.names[{i}]: unknown built-in data set '{name}' "
                                  f"(known: {', '.join(builtin.choices())})")
        if self.split is not None:
            self.split.check(f"{where}.split")


def _check_accept(where: str, names) -> None:
    from mlffbench.data.labelers.checks import validate_accept

    validate_accept(where, names)


DataSetEntry = DataConfig | FilesConfig | BuiltinConfig
