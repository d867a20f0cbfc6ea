"""The data set: the unit the engine plans over.

A data set is a name, labelled frames (``mlffbench.frames``: ``ase.Atoms`` with energy / forces / stress) with
each frame's group (``info['group']``: a TM23 temperature label, an extxyz ``config_type``, an mlearn group or the
source file) and provenance. At planning it is a ``DataSet`` (what is known before any frame exists: elements,
groups and their sizes, periodicity, the reference calculator if there is one, and the inputs of the data job
that materialises it). The data job writes the frames under ``<run>/datasets/<name>/`` with a manifest (file,
frame count, sha256 of every file, a content fingerprint); every job reads them through ``load``, which checks the
files against the manifest first, so no job ever trains or scores on a changed file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from mlffbench import frames as fr
from mlffbench.errors import DataError

GROUP = fr.GROUP  # info key of a frame's group in a loaded data set
SUBSET = "subset"  # info key: "train" / "test" for frames of a files data set (from data or test files)
MANIFEST = "manifest.json"
#: folder of every data set under a run directory
DATASETS_DIR = "datasets"


@dataclass(frozen=True)
class DataSummary:
    """What a model family needs to know to accept or refuse a data set (``Model.refuse``)."""

    name: str
    elements: tuple[str, ...]
    periodic: bool  # every frame fully periodic (else every frame non-periodic: molecules, clusters)
    has_stress: bool
    uniform: bool  # every frame has the same atoms in the same order (one molecule or one cell)
    n_frames: int
    shortest_distance: float | None = None  # Å, over every frame; None: not known at planning (generated data)
    reference: dict | None = None  # spec of the labeler that made the labels, when known


@dataclass
class DataSet:
    """A data set as planned (before its data job ran)."""

    name: str
    source: str  # generate | files | builtin
    collection: str  # the config entry it came from: data sets of one collection are compared side by side
    elements: tuple[str, ...]
    periodic: bool
    has_stress: bool
    uniform: bool
    groups: dict[str, int]  # group -> frames (planned; generated data: frames per temperature)
    data_inputs: dict  # inputs of the data job that materialises the frames (they key every job on it)
    reference: dict | None = None  # spec of the labeler that made the labels, when the data have one
    split: Any = None  # SplitConfig of this data set (None: the run's)
    metadata: list[dict] = field(default_factory=list)  # per-frame group / trajectory / subset (for split checks)
    n_test_files: int = 0  # frames from test files (files source)
    notes: list[str] = field(default_factory=list)  # units declared, deviations: printed and stored
    provenance: dict = field(default_factory=dict)  # files, level of theory, citation, licence ...
    structures: bool = False  # its data job writes reference structures (e.g. ideal alloy cells for an EOS)
    path_groups: tuple[str, ...] = ()  # groups whose frames, in file order, are a reaction path (barrier scored)
    base_split: dict | None = None  # the resolved split spec ("last" / "random" / "files"), set at planning
    entry: Any = None  # the config entry it came from (variants of generated data sets regenerate from it)
    shortest_distance: float | None = None  # Å, known at planning for files data (model cutoffs are checked on it)

    @property
    def n_frames(self) -> int:
        return sum(self.groups.values())

    @property
    def element(self) -> str | None:
        """The element of an elemental data set (periodic-table heatmaps), else None."""
        return self.elements[0] if len(self.elements) == 1 else None

    @property
    def folder(self) -> str:
        """Where the data job writes the frames, relative to the run directory."""
        return f"{DATASETS_DIR}/{self.name}"

    def summary(self) -> DataSummary:
        return DataSummary(self.name, tuple(self.elements), self.periodic, self.has_stress, self.uniform,
                           self.n_frames, self.shortest_distance, self.reference)

    def describe(self) -> dict:
        """JSON-able description stored in the run's provenance (no per-frame metadata)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("metadata", "entry", "split")}
        out["n_frames"] = self.n_frames
        return out


def resolve_split(dataset: DataSet, default) -> dict:
    """The data set's split spec: its own ``split`` entry or the run's ``default``; ``auto`` becomes ``files`` when
    it has test files, ``last`` (TM23, per trajectory) for generated data, else ``random`` (per group)."""
    from mlffbench.errors import ConfigError

    cfg = dataset.split or default
    kind = cfg.kind
    if kind == "auto":
        kind = "files" if dataset.n_test_files else "last" if dataset.source == "generate" else "random"
    if kind == "files" and not dataset.n_test_files:
        raise ConfigError(f"split.kind: 'files' needs test files, and data set '{dataset.name}' has none")
    if kind == "last":
        return {"kind": "last", "test_last": cfg.test_last}
    if kind == "random":
        return {"kind": "random", "test_fraction": cfg.test_fraction}
    return {"kind": "files"}


def describe_split(spec: dict | None) -> str:
    """A split spec in words (tables, the report)."""
    if not spec:
        return "-"
    kind = spec.get("kind")
    if kind == "last":
        t = spec["test_last"]
        return f"last {t:g} of each trajectory" if isinstance(t, int) else f"last {100 * t:g} % of each trajectory"
    if kind == "random":
        return f"random {100 * spec['test_fraction']:g} % of each group"
    if kind == "files":
        return "the given test files"
    return str(spec)


def ref(dataset: DataSet, data_key: str) -> dict:
    """What a job gets to load a data set: its name, folder and the key of the data job that wrote it."""
    out = {"name": dataset.name, "folder": dataset.folder, "data_key": data_key, "source": dataset.source,
           "elements": list(dataset.elements), "periodic": dataset.periodic}
    if dataset.path_groups:
        out["path_groups"] = list(dataset.path_groups)
    return out


# --------------------------------------------------------------------------------------------- manifest


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, name: str, files: list[tuple[str, int]], group_key: str,
                   frame_groups: list[str] | None = None, structures: str | None = None) -> dict:
    """Record the data set's files (relative to ``folder``, in frame order) with frame counts and hashes, and the
    content fingerprint (a hash of the file hashes and groups: equal frames give equal fingerprints in any run).
    Each frame's group is ``info[group_key]``, or ``frame_groups`` when given (kept here, exact as strings)."""
    entries = [{"file": rel, "frames": n, "sha256": sha256(folder / rel)} for rel, n in files]
    manifest = {"name": name, "group_key": group_key, "files": entries, "n_frames": sum(n for _, n in files)}
    content = "".join(e["sha256"] for e in entries)
    if frame_groups is not None:
        names = list(dict.fromkeys(frame_groups))
        manifest["groups"] = names
        manifest["frame_groups"] = [names.index(g) for g in frame_groups]
        content += json.dumps(frame_groups)
    manifest["fingerprint"] = hashlib.sha256(content.encode()).hexdigest()[:16]
    if structures is not None:  # reference structures of the data set (e.g. ideal alloy cells for the EOS)
        manifest["structures"] = {"file": structures, "sha256": sha256(folder / structures)}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)
    return manifest


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing (the data job of this data set has not finished)") from None
    except ValueError as exc:
        raise DataError(f"{path}: unreadable ({exc}); re-run to regenerate the data set") from None


def load_structures(dataset_ref: dict, run_dir: str | os.PathLike) -> list[Atoms] | None:
    """The data set's reference structures (manifest ``structures``, checked like the frames), or None."""
    from mlffbench.data.io import read_frames

    folder = Path(run_dir) / dataset_ref["folder"]
    entry = read_manifest(folder).get("structures")
    if entry is None:
        return None
    path = folder / entry["file"]
    if not path.is_file() or sha256(path) != entry["sha256"]:
        raise DataError(f"{path}: reference structures missing or changed since the data job wrote them")
    return read_frames(path)


def load(dataset_ref: dict, run_dir: str | os.PathLike) -> list[Atoms]:
    """The frames of a data set, in manifest order, each with ``info['group']``; every file is checked against the
    manifest first (a changed, cut or missing file is a DataError naming it, never a silent result)."""
    from mlffbench.data.io import read_frames

    folder = Path(run_dir) / dataset_ref["folder"]
    manifest = read_manifest(folder)
    frames: list[Atoms] = []
    for entry in manifest["files"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise DataError(f"{path}: data file of data set '{manifest['name']}' is missing")
        if sha256(path) != entry["sha256"]:
            raise DataError(f"{path}: changed since its data job wrote it (sha256 differs from {MANIFEST}); "
                            "the results would not belong to these frames")
        # the canonical copy is in eV/Å³ by construction: declared, so the magnitude guard (meant for files whose
        # unit nobody stated) does not refuse the high-pressure frames the user declared
        part = read_frames(path, require=("energy",), stress_unit="eV/A3")
        if len(part) != entry["frames"]:
            raise DataError(f"{path}: {len(part)} frames, the manifest recorded {entry['frames']}")
        frames += part
    if "frame_groups" in manifest:
        for frame, g in zip(frames, manifest["frame_groups"]):
            frame.info[GROUP] = manifest["groups"][g]
    else:
        key = manifest["group_key"]
        for frame in frames:
            frame.info[GROUP] = str(frame.info.get(key, ""))
    return frames
