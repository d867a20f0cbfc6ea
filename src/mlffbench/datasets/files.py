"""The ``files`` source: one data set from the user's labelled files (any format ``mlffbench.data.io`` reads).

Planning reads every file (so a bad frame, an ambiguous unit or a test file with elements the training files lack
is a one-line error before any job runs), assigns each frame its group and subset, and keys the data set by the
sha256 of every file and the declared units. The data job reads the files again, refuses them if they changed
since planning, and writes one canonical extended-XYZ copy (ASE units and sign) into the run directory: the run
stays self-contained and every later job reads the same frames.
"""

from __future__ import annotations

import glob
from pathlib import Path

from ase import Atoms

from mlffbench import frames as fr
from mlffbench.config import FilesConfig
from mlffbench.datasets.base import GROUP, SUBSET, DataSet, sha256, write_manifest
from mlffbench.errors import DataError

#: info keys tried in order for a frame's group when the entry declares none (then the file stem)
DEFAULT_GROUP_KEYS = ("config_type", GROUP)
FRAMES_FILE = "frames.extxyz"
REQUIRED = {"train": ("energy", "forces"), "test": ("energy",)}
#: info keys kept in the canonical copy (others are the source's own metadata, not needed to benchmark)
KEPT_INFO = (GROUP, SUBSET, fr.SOURCE, fr.TRAJECTORY, fr.FRAME_INDEX, fr.TEMPERATURE_LABEL, fr.TARGET_TEMPERATURE,
             "config_type", "description", "stress_note", "temperature", "energy_note")

#: Å searched for the shortest interatomic distance at planning (above every model cutoff in use)
SHORTEST_LIMIT = 10.0

#: the data sets shipped in the package; their files are keyed as ``pkg:<path below this folder>`` so a run's job
#: keys do not depend on where the package is installed
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
PACKAGE_PREFIX = "pkg:"


def resolve(path: str) -> Path:
    """A file path as given, or a shipped file ``pkg:<path>``."""
    return PACKAGE_DATA / path[len(PACKAGE_PREFIX):] if path.startswith(PACKAGE_PREFIX) else Path(path)


def portable(path: Path) -> str:
    """The key of a file: ``pkg:<path>`` for a shipped file, else the absolute path."""
    path = path.resolve()
    return PACKAGE_PREFIX + path.relative_to(PACKAGE_DATA).as_posix() if PACKAGE_DATA in path.parents else str(path)


def expand(patterns: list[str], key: str) -> list[Path]:
    """Paths of ``patterns`` (globs allowed), sorted per pattern, in pattern order; a pattern matching nothing or a
    directory is an error naming it."""
    out: list[Path] = []
    for pattern in patterns:
        pattern = str(resolve(pattern))
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if glob.has_magic(pattern) and not matches:
            raise DataError(f"{key}: '{pattern}' matches no file")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                raise DataError(f"{path}: is a directory; give the data files (or a glob such as {path}/*.xyz)")
            if not path.is_file():
                raise DataError(f"{path}: file not found ({key})")
            if path in out:
                raise DataError(f"{path}: listed twice ({key})")
            out.append(path)
    return out


def read(entry: FilesConfig) -> tuple[list[tuple[Path, str, list[Atoms]]], dict]:
    """[(path, subset, frames)] of every data and test file, with groups set, and the declared units."""
    from mlffbench.data.io import read_frames

    units = {"stress_unit": entry.stress_unit, "stress_convention": entry.stress_convention,
             "shear_order": entry.shear_order}
    train = expand(entry.files, f"{entry.name}: files")
    test = expand(entry.test_files, f"{entry.name}: test_files")
    both = sorted(set(train) & set(test))
    if both:
        raise DataError(f"{both[0]}: is both a data file and a test file")
    parts = []
    for subset, paths in (("train", train), ("test", test)):
        for path in paths:
            # training frames need forces; a test file may hold energies only (a reaction path, a scan)
            frames = read_frames(path, fmt=entry.format, require=REQUIRED[subset],
                                 **{k: v for k, v in units.items() if v is not None})
            if entry.energy_kind(path) == "per-atom":  # declared: per cell from here on (the canonical copy too)
                from mlffbench.data.sanity import to_per_cell

                to_per_cell(frames)
            for i, frame in enumerate(frames):
                frame.info[GROUP] = _group(frame, entry.group_key, path, i)
                frame.info[SUBSET] = subset
            parts.append((path, subset, frames))
    return parts, units


def _group(frame: Atoms, key: str | None, path: Path, i: int) -> str:
    if key is not None:
        if key not in frame.info:
            raise DataError(f"{path}: frame {i}: no info key '{key}' (the data set's group_key)")
        return str(frame.info[key])
    for candidate in DEFAULT_GROUP_KEYS:
        if frame.info.get(candidate) is not None:
            return str(frame.info[candidate])
    from mlffbench.data.io import uncompressed_name

    return uncompressed_name(path).stem


def _check_consistent(parts) -> None:
    """One data set is all periodic or all non-periodic, and the test files hold no element training lacks."""
    first = None
    for path, _, frames in parts:
        for i, frame in enumerate(frames):
            periodic = bool(frame.pbc.all())
            if not periodic and frame.pbc.any():
                raise DataError(f"{path}: frame {i}: partly periodic (pbc {frame.pbc.tolist()}); a data set is fully "
                                "periodic (bulk, slabs in a periodic cell) or non-periodic (molecules)")
            if first is None:
                first = (periodic, path, i)
            elif periodic != first[0]:
                kind = {True: "periodic", False: "non-periodic"}
                raise DataError(f"{path}: frame {i} is {kind[periodic]} but {first[1]} frame {first[2]} is "
                                f"{kind[first[0]]}: one data set cannot mix them")
    trained = {s for _, subset, frames in parts if subset == "train" for f in frames
               for s in f.get_chemical_symbols()}
    for path, subset, frames in parts:
        if subset != "test":
            continue
        for i, frame in enumerate(frames):
            missing = sorted(set(frame.get_chemical_symbols()) - trained)
            if missing:
                raise DataError(f"{path}: frame {i}: elements {missing} appear in no training file, so no model "
                                "can be trained for them")


def plan(entry: FilesConfig, seed: int, shortest: bool = False, default_split=None) -> DataSet:
    """``shortest``: find the shortest interatomic distance (a model has a cutoff to check against it).
    ``default_split``: the run's split (the data set's own ``split`` wins), for the duplicate check."""
    parts, units = read(entry)
    _check_consistent(parts)
    frames = [f for _, _, fs in parts for f in fs]
    unknown = [g for g in entry.path_groups if g not in {f.info[GROUP] for f in frames}]
    if unknown:
        raise DataError(f"{entry.name}: path_groups {unknown} are not groups of the data set")
    elements = tuple(sorted({s for f in frames for s in f.get_chemical_symbols()}))
    groups: dict[str, int] = {}
    for f in frames:
        groups[f.info[GROUP]] = groups.get(f.info[GROUP], 0) + 1
    numbers = frames[0].numbers.tolist()
    declared = [f"{k} {v}" for k, v in units.items() if v is not None]
    notes = [f"{entry.name}: declared " + ", ".join(declared)] if declared else []
    for path, subset, part in parts:
        if subset == "test" and not any(fr.has_label(f, "forces") for f in part):
            notes.append(f"{entry.name}: test file {path.name} has energies only (no forces): its frames score energy")
    n_test = sum(len(fs) for _, subset, fs in parts if subset == "test")
    shortest = fr.shortest_distance(frames, SHORTEST_LIMIT) if shortest else None
    files = [{"path": portable(path), "sha256": sha256(path), "subset": subset, "frames": len(fs)}
             for path, subset, fs in parts]
    # per-atom energies converted: the data job must convert them too (only then, so other runs keep their keys)
    converted = [portable(path) for path, _, _ in parts if entry.energy_kind(path) == "per-atom"]
    energy = {"energy": entry.energy} if converted else {}
    if converted:
        notes.append(f"{entry.name}: energies declared per atom, converted to per cell (x natoms): "
                     f"{', '.join(Path(p).name for p in converted)}")
    ds = DataSet(
        name=entry.name, source="files", collection=entry.name, elements=elements,
        periodic=bool(frames[0].pbc.all()), has_stress=any(fr.has_label(f, "stress") for f in frames),
        uniform=all(f.numbers.tolist() == numbers for f in frames), groups=groups,
        data_inputs={"source": "files", "name": entry.name, "files": files, "format": entry.format,
                     "group_key": entry.group_key, **units, **energy},
        reference=None if entry.labeler is None else _spec(entry.labeler), split=entry.split,
        metadata=[{k: f.info[k] for k in (GROUP, SUBSET, fr.TRAJECTORY, fr.FRAME_INDEX) if k in f.info}
                  for f in frames],
        n_test_files=n_test, notes=notes, path_groups=tuple(entry.path_groups),
        provenance={"files": files, "level_of_theory": entry.level_of_theory, "units_declared": units,
                    **({"energy_converted_from_per_atom": converted} if converted else {})},
        shortest_distance=shortest if shortest is not None and shortest < SHORTEST_LIMIT else None,
    )
    from mlffbench.data.sanity import check_dataset

    ds.notes += check_dataset(entry, parts, ds, default_split, seed)
    return ds


def _round_trips(key: str, value) -> bool:
    """Whether extended XYZ reads ``value`` back as written (a string '300' would come back as a number)."""
    from ase.io.extxyz import key_val_dict_to_str, key_val_str_to_dict

    if not isinstance(value, str):
        return True
    return key_val_str_to_dict(key_val_dict_to_str({key: value})).get(key) == value


def _spec(labeler) -> dict:
    from mlffbench.data.labelers import labeler_spec

    return labeler_spec(labeler)


def materialise(inputs: dict, folder: Path) -> dict:
    """Data job body: the planned files, unchanged, as one canonical extxyz with groups and subsets."""
    from mlffbench.data.io import write_frames

    for f in inputs["files"]:
        if not resolve(f["path"]).is_file():
            raise DataError(f"{f['path']}: data file missing since the run was planned")
        if sha256(resolve(f["path"])) != f["sha256"]:
            raise DataError(f"{f['path']}: changed since the run was planned; re-run to plan with the new file")
    entry = FilesConfig(name=inputs["name"], files=[f["path"] for f in inputs["files"] if f["subset"] == "train"],
                        test_files=[f["path"] for f in inputs["files"] if f["subset"] == "test"],
                        format=inputs["format"], group_key=inputs["group_key"], stress_unit=inputs["stress_unit"],
                        stress_convention=inputs["stress_convention"], shear_order=inputs["shear_order"],
                        energy=inputs.get("energy"))
    parts, _ = read(entry)
    frames = [frame for _, _, part in parts for frame in part]
    frame_groups = [frame.info[GROUP] for frame in frames]  # in the manifest: a group '300' stays a string
    for frame in frames:
        frame.info = {k: v for k, v in frame.info.items() if k in KEPT_INFO and k != GROUP and _round_trips(k, v)}
    folder.mkdir(parents=True, exist_ok=True)
    write_frames(folder / FRAMES_FILE, frames)
    manifest = write_manifest(folder, inputs["name"], [(FRAMES_FILE, len(frames))], GROUP, frame_groups)
    groups: dict[str, int] = {}
    for g in frame_groups:
        groups[g] = groups.get(g, 0) + 1
    return {"fingerprint": manifest["fingerprint"], "n_frames": len(frames), "groups": groups,
            "n_atoms": sum(len(f) for f in frames)}
