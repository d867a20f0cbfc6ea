"""mlearn-style JSON: a list of entries with ``structure`` (a pymatgen Structure dict), ``outputs`` and ``group``.

Two generations of the Materials Virtual Lab's data use it. mlearn (Zuo et al. 2020; six elements) stores the
stress as ``outputs.virial_stress``; the later SNAP data sets store it as ``outputs.stress``, e.g. NbMoTaW (Li,
Chen, Zheng, Ong 2020; materialsvirtuallab/snap, NbMoTaW/training/*.json, commit 30b5f76c): in Mo_Elastic.json a
cell compressed 10 % along x has stress [621.5, 236.5, 236.5, 0, 0, 0] and one stretched 3 % along x
[-129.9, -42.0, -42.0, 0, 0, 0], so it is kbar (C11 of Mo is ~470 GPa) with VASP's sign (positive = compressive),
like mlearn. Both keys are read with that default (a declared unit / convention overrides it).

The order of the three shear numbers is not fixed: per element in mlearn (``MLEARN_SHEAR_ORDER``), and per file
in the SNAP sets (NbMoTaW Mo/Nb/Ta/W_Elastic and Ni-Mo Ni4Mo_Elastic: [xy, yz, zx]; Ni-Mo Ni3Mo_Elastic:
[xy, zx, yz]; mlearn Mo: [xy, zx, yz]). So it is taken from, in order: the declared ``shear_order``; the mlearn
table (``virial_stress`` of the six mlearn elements only); detection from the file's own sheared cells
(``detect_shear_order``); else the shear components are NaN and ``info['stress_note']`` says why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlffbench import frames as fr
from mlffbench.data.validate import STRESS_NOTE, strained_copies
from mlffbench.errors import DataError

#: Order of the three shear numbers after [xx, yy, zz] in mlearn ``virial_stress``, per element.
#: Determined from the Elastic group: a cell with a single off-diagonal element (pure shear in one plane)
#: has exactly one nonzero shear number, at the position given here (see /work/shared/data/README.md).
#: Li (2-atom Elastic cells): the nonzero number sits where Si/Ge put it, but in all three planes the value
#: flips sign between 1 % and 2 % shear (raw +0.94 then -0.40 kbar times the strain's sign), which no
#: elastic response does, so no Li shear number is trusted: all three become NaN (metrics skip them) and the
#: frame gets ``info['stress_note']``.
MLEARN_SHEAR_ORDER: dict[str, tuple[str | None, str | None, str | None]] = {
    "Si": ("xy", "yz", "zx"),
    "Ge": ("xy", "yz", "zx"),
    "Cu": ("xy", "zx", "yz"),
    "Ni": ("xy", "zx", "yz"),
    "Mo": ("xy", "zx", "yz"),
    "Li": (None, None, None),
}
#: info keys: the shear order used (e.g. "xy,yz,zx") and where it came from (declared, mlearn table, detected)
SHEAR_ORDER = "shear_order"
SHEAR_ORDER_SOURCE = "shear_order_source"
#: ASE's Voigt order of the shear components (yz, xz, xy), as Voigt indices
ASE_SHEAR = (3, 4, 5)
_VOIGT = {"yz": 3, "zy": 3, "xz": 4, "zx": 4, "xy": 5, "yx": 5}
_NAMES = {3: "yz", 4: "zx", 5: "xy"}
_STRESS_KEYS = ("virial_stress", "stress")
_FORMULA = re.compile(r"(?:[A-Z][a-z]?\d*(?:\.\d+)?)+")

# A cell counts as sheared in one plane when its lattice vectors lie along x, y, z (each within ~25°) and exactly
# one pair of them is off a right angle: |cos| between 0.005 and 0.2 (about 0.25-10 % shear strain), the other
# two pairs under a tenth of that. Its stress must show one shear number at least 5x the other two.
_MIN_SHEAR, _MAX_SHEAR, _OTHER_SHEAR, _DOMINANCE = 0.005, 0.2, 0.1, 5.0
_MIN_COPIES, _COPY_SHIFT = 3, 0.02


def parse_shear_order(text) -> tuple[int, int, int]:
    """Voigt indices (3 yz, 4 xz, 5 xy) of stress components 4-6 from "xy,yz,zx" (or a sequence of names).

    Raises ValueError unless the three names are yz, xz and xy (any spelling order: zy, zx, yx) once each."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    order = tuple(_VOIGT.get(n) for n in names)
    if len(order) != 3 or set(order) != set(ASE_SHEAR):
        raise ValueError(f"shear_order '{text}' must name yz, xz and xy once each (components 4-6), "
                         "e.g. 'xy,yz,zx'")
    return order  # type: ignore[return-value]


def shear_order_text(order: tuple[int, int, int]) -> str:
    return ",".join(_NAMES[k] for k in order)


def read_mlearn(path: Path, factor: float, declared_order: tuple[int, int, int] | None) -> list[Atoms]:
    """Every entry of an mlearn-style JSON file; stress times ``factor`` (to eV/Å³, ASE sign), in ASE order."""
    from mlffbench.data.io import open_text

    try:
        with open_text(path) as fh:
            entries = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a JSON list of mlearn entries, got {type(entries).__name__}")
    parsed = [_parse_entry(entry, path, i) for i, entry in enumerate(entries)]
    six = [(atoms, raw) for atoms, _, _, (_, raw), _ in parsed if raw is not None and raw.shape == (6,)]
    detected = None  # (order or None, how), found on first need
    frames = []
    for atoms, energy, forces, (key, raw), info in parsed:
        if raw is not None and raw.shape == (6,):  # a full 3x3 tensor needs no shear order
            element = fr.element_key(atoms.get_chemical_symbols())
            in_table = key == "virial_stress" and element in MLEARN_SHEAR_ORDER
            if declared_order is not None:
                order, source = declared_order, "declared"
            elif in_table:
                order, source = _table_order(element), "mlearn table"
            else:
                detected = detected or detect_shear_order(six, factor)
                order, source = detected
            raw = _ase_order(raw, order)
            if order is not None and None not in order:
                info[SHEAR_ORDER], info[SHEAR_ORDER_SOURCE] = shear_order_text(order), source
            elif in_table:
                info[STRESS_NOTE] = f"mlearn shear stress of {element} not trusted: 3 shear components set to NaN"
            else:
                info[STRESS_NOTE] = (f"shear order of outputs.{key} unknown ({source}): shear components set to "
                                     "NaN; declare it (e.g. --shear-order xy,yz,zx or shear_order: xy,yz,zx)")
        frames.append(fr.labelled(atoms, energy, forces, None if raw is None else factor * raw, **info))
    return frames


def _ase_order(raw: np.ndarray, order: tuple | None) -> np.ndarray:
    """[xx, yy, zz, s4, s5, s6] as an ASE Voigt vector: s4-s6 go to the Voigt indices in ``order``; NaN where that
    is None (unknown)."""
    voigt = np.full(6, np.nan)
    voigt[:3] = raw[:3]
    for value, k in zip(raw[3:], order or (None,) * 3):
        if k is not None:
            voigt[k] = value
    return voigt


def detect_shear_order(cells: list[tuple[Atoms, np.ndarray]], factor: float) -> tuple[tuple | None, str]:
    """The shear order of raw 6-vectors (``cells``: (atoms, raw stress) pairs), from the cells sheared in one plane.

    A cell counts when it is sheared in a single plane (``_shear_plane``) and is one of at least _MIN_COPIES
    strained copies in the file (same atoms at the same fractional coordinates within _COPY_SHIFT: an elastic set,
    not a surface slab whose cell merely leans); if its stress has one dominant shear number, that number's
    position votes for the plane. The order is used only when every vote agrees, at least two planes are sampled
    (the third takes the remaining position) and at least 3/4 of the dominant numbers have the sign elasticity
    gives (stress along the shear strain, after ``factor``); otherwise (None, why)."""
    copies = {i: len(family) for family in strained_copies([atoms for atoms, _ in cells], _COPY_SHIFT)
              for i in family}
    votes: dict[int, set[int]] = {}
    agree = []
    for i, (atoms, raw) in enumerate(cells):
        plane = _shear_plane(atoms.cell.array)
        shear = np.abs(raw[3:])
        k = int(np.argmax(shear))
        if (plane is None or not shear[k] > _DOMINANCE * np.delete(shear, k).max(initial=0.0)
                or copies[i] < _MIN_COPIES):
            continue
        votes.setdefault(plane[0], set()).add(k)
        agree.append(np.sign(factor * raw[3 + k]) == np.sign(plane[1]))
    if not votes:
        return None, "no strained copy of a cell in the file is sheared in a single plane"
    positions = [k for ks in votes.values() for k in ks]
    if len(positions) != len(votes) or len(set(positions)) != len(votes):
        return None, "the sheared cells of the file disagree on it"
    if len(votes) < 2:
        return None, f"only cells sheared in the {_NAMES[next(iter(votes))]} plane"
    if np.mean(agree) < 0.75:
        return None, (f"the shear stresses of {len(agree) - sum(agree)} of {len(agree)} sheared cells oppose their "
                      "strain (is the stress sign convention right?)")
    order: list[int | None] = [None, None, None]
    for plane, (k,) in votes.items():
        order[k] = plane
    if None in order:
        order[order.index(None)] = (set(ASE_SHEAR) - set(votes)).pop()
    return tuple(order), f"detected from {len(agree)} sheared cells"  # type: ignore[return-value]


def _shear_plane(cell: np.ndarray) -> tuple[int, float] | None:
    """(Voigt index, cosine) of the one plane a cell is sheared in, or None (see the thresholds above)."""
    lengths = np.linalg.norm(cell, axis=1)
    if not (np.diag(cell) > 0.9 * lengths).all():
        return None
    gram = cell @ cell.T / np.outer(lengths, lengths)
    cos = np.array([gram[1, 2], gram[0, 2], gram[0, 1]])  # planes yz, xz, xy
    j = int(np.argmax(np.abs(cos)))
    size = abs(cos[j])
    if not _MIN_SHEAR <= size <= _MAX_SHEAR or np.delete(np.abs(cos), j).max() > _OTHER_SHEAR * size:
        return None
    return 3 + j, float(cos[j])


def _table_order(element: str) -> tuple:
    return tuple(None if name is None else _VOIGT[name] for name in MLEARN_SHEAR_ORDER[element])


def _parse_entry(entry, path: Path, i: int):
    """(atoms, energy, forces, (stress key, raw stress or None), info) of one entry."""
    where = f"{path}: entry {i}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
    cell = _array(entry, "structure.lattice.matrix", where, (3, 3))
    sites = _get(entry, "structure.sites", where)
    try:
        symbols = [site["species"][0]["element"] for site in sites]
        positions = np.array([site["xyz"] for site in sites], dtype=float).reshape(len(sites), 3)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: bad 'structure.sites' (need species[0].element and xyz): "
                        f"{type(exc).__name__}: {exc}") from exc
    try:
        atoms = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)
    except (KeyError, ValueError) as exc:
        raise DataError(f"{where}: unknown element in 'structure.sites': {type(exc).__name__}: {exc}") from exc
    n = len(atoms)
    if "num_atoms" in entry and entry["num_atoms"] != n:
        raise DataError(f"{where}: 'num_atoms' is {entry['num_atoms']} but 'structure.sites' has {n} sites")
    energy = _get(entry, "outputs.energy", where)
    if isinstance(energy, bool) or not isinstance(energy, (int, float)):
        raise DataError(f"{where}: 'outputs.energy' is not a number: {energy!r}")
    forces = _array(entry, "outputs.forces", where, (n, 3))
    info = {fr.SOURCE: str(path), fr.GROUP: _group(entry.get(fr.GROUP), path)}
    if "description" in entry:
        info["description"] = str(entry["description"])
    return atoms, energy, forces, _raw_stress(entry["outputs"], where), info


def _raw_stress(outputs: dict, where: str) -> tuple[str | None, np.ndarray | None]:
    """(key, 6-vector or 3x3) of the stress in ``outputs``; a stress-like key we do not know is an error, not a
    silent drop."""
    unknown = [k for k in outputs if k not in _STRESS_KEYS and ("stress" in k.lower() or "virial" in k.lower())]
    if unknown:
        raise DataError(f"{where}: unknown stress key 'outputs.{unknown[0]}' (known: "
                        f"{', '.join('outputs.' + k for k in _STRESS_KEYS)}); convert the file")
    found = [k for k in _STRESS_KEYS if outputs.get(k) is not None]
    if not found:
        return None, None
    if len(found) == 2 and outputs[found[0]] != outputs[found[1]]:
        raise DataError(f"{where}: 'outputs.virial_stress' and 'outputs.stress' differ; keep one")
    key = found[0]
    try:
        raw = np.asarray(outputs[key], dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: 'outputs.{key}' is not a numeric array") from exc
    if raw.shape not in ((6,), (3, 3)):
        raise DataError(f"{where}: 'outputs.{key}' has shape {raw.shape}, expected (6,) or (3, 3)")
    return key, raw


def _group(group, path: Path) -> str:
    """The entry's group, or the file stem when it has none or it only names a composition ("Mo", "Ta-W",
    "Ni3Mo": the SNAP data sets' group field), which says nothing about the kind of structure."""
    text = "" if group is None else str(group).strip()
    compact = text.replace("-", "")
    if not text or (_FORMULA.fullmatch(compact)
                    and all(s in chemical_symbols for s in re.findall(r"[A-Z][a-z]?", compact))):
        return path.stem
    return text


def _get(entry: dict, dotted: str, where: str):
    value = entry
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise DataError(f"{where}: missing key '{dotted}'")
        value = value[key]
    return value


def _array(entry: dict, dotted: str, where: str, shape: tuple[int, ...]) -> np.ndarray:
    value = _get(entry, dotted, where)
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: '{dotted}' is not a numeric array") from exc
    if array.shape != shape:
        raise DataError(f"{where}: '{dotted}' has shape {array.shape}, expected {shape}")
    return array
