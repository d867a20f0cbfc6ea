"""Read and write labelled frames (see ``mlffbench.frames``) from the file formats the benchmark meets.

Formats: extended XYZ (``.xyz``/``.extxyz``, also the TM23 release files), ASE databases (``.db``), mlearn-style
JSON (``.json``, Zuo et al. 2020 and the same group's later sets; ``mlffbench.data.mlearn``) and VASP ``OUTCAR`` /
``vasprun.xml`` (all ionic steps; a cut OUTCAR gives only ASE's complete steps, a vasprun.xml without its closing
tag is refused). Stress is converted from the file's declared (or the format's own) unit and sign convention to
eV/Å³ with ASE's sign, then checked for plausibility and, where strained copies of a cell allow, for its sign.
Every frame read gets ``info['source']`` and ``info['elements']`` when it lacks them; every failure is a one-line
``DataError`` naming the file. Writing is extended XYZ only, atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.extxyz import key_val_dict_to_str, key_val_str_to_dict
from ase.io.formats import string2index
from ase.stress import full_3x3_to_voigt_6_stress

from mlffbench import frames as fr
from mlffbench.data.mlearn import ASE_SHEAR, MLEARN_SHEAR_ORDER, parse_shear_order, read_mlearn
from mlffbench.data.validate import STRESS_NOTE, check_stress_plausible, check_stress_sign, validate_frames
from mlffbench.errors import DataError
from mlffbench.units import canonical_stress_unit, stress_factor

__all__ = ["MLEARN_SHEAR_ORDER", "check_file", "detect_format", "parse_tm23_name", "read_frames",
           "stress_declaration", "write_frames"]

_TM23_NAME = re.compile(
    r"^(?P<element>[A-Z][a-z]?)_(?:2700cwm|(?P<temperature_label>cold|warm|melt)_nequip)_(?P<split>train|test)\.xyz$"
)
_FORMAT_ALIASES = {
    "extxyz": "extxyz", "xyz": "extxyz", "db": "db", "mlearn": "mlearn", "json": "mlearn",
    "vasp-out": "vasp-out", "outcar": "vasp-out", "vasp-xml": "vasp-xml", "vasprun": "vasp-xml",
}  # fmt: skip
#: (unit, convention) a format's stress is in when nothing is declared (VASP: ASE converts, nothing to declare)
_STRESS_DEFAULTS = {"mlearn": ("kbar", "compressive")}
#: a 3x3 stress may differ from its transpose by max(absolute, relative * max |σ|), eV/Å³
_ASYMMETRY_ABS, _ASYMMETRY_REL = 1e-8, 1e-6
# info keys the extxyz comment-line parser parks labels under until ``_extxyz_labels`` checks and converts them;
# stress= and virial= are renamed in the line itself, since ASE's parser refuses anything but 9 numbers for them
_PARKED = {"energy": "_mlffbench_energy", "stress": "_mlffbench_stress", "virial": "_mlffbench_virial"}
_STRESS_KEY = re.compile(r"(?<![\w-])(stress|virial)(?=\s*=)")


def read_frames(path, fmt: str | None = None, index=":", require: Sequence[str] = (), stress_unit: str | None = None,
                stress_convention: str | None = None, shear_order: str | None = None) -> list[Atoms]:
    """Read the frames of ``path`` (format from ``fmt`` or the file name) and validate them.

    ``index`` selects frames as in ``ase.io.read`` (":" all, an int, a slice or "start:stop").
    Structural checks always run; ``require`` names labels that every frame must carry.
    ``stress_unit`` (one of ``units.STRESS_UNITS``) and ``stress_convention`` ("tensile": positive under tension,
    ASE; "compressive": positive under compression, VASP / LAMMPS pressure / FitSNAP) declare how the file
    stores stress; None takes the format's own (``stress_declaration``). ``shear_order`` ("xy,yz,zx") gives the
    meaning of stress components 4-6 of a 6-number stress. Stresses come back in eV/Å³, ASE sign and order; a stress
    whose sign contradicts the energies is a ``DataError``, and so is an implausible one (> 160 GPa) when the unit
    is the format's default (undeclared): a declared unit is trusted, however high the pressure.
    """
    return _read_checked(path, fmt, index, require, {}, stress_unit, stress_convention, shear_order)


def check_file(path, require: Sequence[str] = ("energy", "forces"), fmt: str | None = None,
               stress_unit: str | None = None, stress_convention: str | None = None, shear_order: str | None = None,
               **kw) -> list[Atoms]:
    """``read_frames`` of the whole file, validated with ``validate_frames(..., require=require, **kw)``."""
    return _read_checked(path, fmt, ":", require, kw, stress_unit, stress_convention, shear_order)


def stress_declaration(path, fmt: str | None = None, stress_unit: str | None = None,
                       stress_convention: str | None = None) -> tuple[str, str]:
    """(unit, convention) the reader applies to the stress of ``path``: the declared ones, else the format's own
    (extxyz, db: eV/A3 tensile; mlearn JSON: kbar compressive). VASP outputs are converted by ASE, so declaring
    anything else for them is a ``DataError``; so is a unit or convention that is not one of the allowed names."""
    fmt = _format(Path(path), fmt)
    default_unit, default_convention = _STRESS_DEFAULTS.get(fmt, ("eV/A3", "tensile"))
    unit, convention = stress_unit or default_unit, stress_convention or default_convention
    try:
        stress_factor(unit, convention)  # names the allowed values when one is unknown
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    unit = canonical_stress_unit(unit)
    if fmt in ("vasp-out", "vasp-xml") and (unit, convention) != ("eV/A3", "tensile"):
        raise DataError(f"{path}: {fmt} files carry their own units (ASE converts VASP's kbar to eV/Å³, ASE sign); "
                        "do not declare stress_unit / stress_convention for them")
    return unit, convention


def write_frames(path, frames: Sequence[Atoms]) -> None:
    """Write ``frames`` as extended XYZ, atomically: nothing is left half-written if anything fails.

    Energy, stress, cell and info are written at full precision; per-atom columns (positions, forces)
    with ASE's 8 decimals. String info values that extxyz would read back as a bool/number are refused.
    """
    path = Path(path)
    if path.suffix not in (".xyz", ".extxyz"):
        raise DataError(f"{path}: write_frames writes extended XYZ only; use a .xyz or .extxyz name")
    if len(frames) == 0:
        raise DataError(f"{path}: no frames to write")
    for i, frame in enumerate(frames):
        _check_info_writable(frame, i, path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        import ase.io

        ase.io.write(tmp, list(frames), format="extxyz")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    except Exception as exc:
        raise DataError(f"{path}: cannot write: {_one_line(exc)}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def parse_tm23_name(path) -> dict | None:
    """Element, temperature label (cold/warm/melt, None for the mixed 2700cwm files) and split of a TM23 file.

    Returns None when the name is not a TM23 release name (``<El>_2700cwm_{train,test}.xyz`` or
    ``<El>_{cold,warm,melt}_nequip_{train,test}.xyz``).
    """
    match = _TM23_NAME.match(Path(path).name)
    return None if match is None else match.groupdict()


#: compressed files read directly (the package ships its data sets xz-compressed): extxyz and mlearn JSON
COMPRESSION = (".xz", ".gz", ".bz2")


def uncompressed_name(path) -> Path:
    """``path`` without a compression suffix (``test.json.xz`` -> ``test.json``)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix.lower() in COMPRESSION else path


def detect_format(path) -> str:
    """The reader for ``path`` from its name: extxyz, db, mlearn, vasp-out or vasp-xml (extxyz and mlearn JSON
    may be compressed: .xz, .gz, .bz2)."""
    compressed = Path(path).suffix.lower() in COMPRESSION
    name = uncompressed_name(path).name
    suffix = Path(name).suffix.lower()
    if compressed and suffix not in (".xyz", ".extxyz", ".json"):
        raise DataError(f"{path}: only extxyz and mlearn JSON files are read compressed; decompress it")
    if suffix in (".xyz", ".extxyz"):
        return "extxyz"
    if suffix == ".db":
        return "db"
    if suffix == ".json":
        return "mlearn"
    if name.startswith("OUTCAR"):
        return "vasp-out"
    if suffix == ".xml" and "vasprun" in name:
        return "vasp-xml"
    raise DataError(f"{path}: cannot tell the file format from the name; give it with --format (config key format, "
                    "fmt= in Python): extxyz, db, mlearn, vasp-out or vasp-xml")


# --- readers ---------------------------------------------------------------------------------------------


def open_text(path):
    """A text handle on ``path``, decompressing .xz / .gz / .bz2."""
    import bz2
    import gzip
    import lzma

    opener = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}.get(Path(path).suffix.lower(), open)
    return opener(path, "rt")


def _read_checked(path, fmt, index, require, validate_kw: dict, stress_unit, stress_convention, shear_order):
    """Read, validate the frames, then check the stress is plausible and has the right sign."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    unit, convention = stress_declaration(path, fmt, stress_unit, stress_convention)
    frames = _read(path, fmt, index, stress_factor(unit, convention), _shear_order(path, fmt, shear_order))
    frames = validate_frames(frames, str(path), require=require, **validate_kw)
    # The magnitude guard catches a unit nobody stated (bar read as eV/Å³ is 1.6e6 x). A declared unit is the
    # user's word and is not second-guessed: equation-of-state groups of real training sets reach 1000s of GPa.
    # VASP outputs carry their unit and ASE converts it, so there is nothing to misread there either.
    if stress_unit is None and _format(path, fmt) not in ("vasp-out", "vasp-xml"):
        check_stress_plausible(frames, str(path), unit, convention)
    check_stress_sign(frames, str(path), convention)
    return frames


def _format(path: Path, fmt: str | None) -> str:
    if fmt is None:
        return detect_format(path)
    name = _FORMAT_ALIASES.get(fmt.lower())
    if name is None:
        raise DataError(f"{path}: unknown format; use one of {sorted(set(_FORMAT_ALIASES.values()))}")
    return name


def _shear_order(path, fmt: str | None, shear_order) -> tuple[int, int, int] | None:
    if shear_order is None:
        return None
    try:
        order = parse_shear_order(shear_order)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    if _format(Path(path), fmt) in ("vasp-out", "vasp-xml") and order != ASE_SHEAR:
        raise DataError(f"{path}: VASP files are read by ASE in ASE's order; do not declare shear_order")
    return order


def _read(path: Path, fmt: str | None, index, factor: float, order: tuple[int, int, int] | None) -> list[Atoms]:
    """Read with stress times ``factor`` in ASE order (raw components 4-6 mean ``order``) and add metadata."""
    fmt = _format(path, fmt)
    try:
        frames = _READERS[fmt](path, index, factor, order)
    except DataError:
        raise
    except Exception as exc:  # ase/sqlite/xml raise many kinds; the user needs the file and the reason
        raise DataError(f"{path}: cannot read as {fmt}: {_one_line(exc)}") from exc
    _add_metadata(frames, path)
    return frames


def _read_ase(path: Path, index, fmt: str, **kw) -> list[Atoms]:
    import io as _io

    import ase.io

    source = path
    if path.suffix.lower() in COMPRESSION:  # ASE seeks in the stream: quadratic in a compressed file, so inflate
        with open_text(path) as fh:
            source = _io.StringIO(fh.read())
    result = ase.io.read(source, index=index, format=fmt, **kw)
    return [result] if isinstance(result, Atoms) else list(result)


def _read_extxyz(path: Path, index, factor: float, order) -> list[Atoms]:
    """Extended XYZ with energy / stress / virial checked and converted here rather than trusted to ASE (which
    takes a string energy as is and silently keeps one triangle of a non-symmetric 3x3 stress)."""
    from mlffbench.data.truncation import check_extxyz

    check_extxyz(path)  # a file cut mid-frame or mid-number: refused naming the frame (ASE reads the latter as valid)
    frames = _read_ase(path, index, "extxyz", properties_parser=_park_labels)
    for i, frame in enumerate(frames):
        _extxyz_labels(frame, f"{path}: frame {i}", factor, order)
    return frames


def _park_labels(line: str) -> dict:
    """ASE's comment-line parser, with energy / stress / virial moved out of ASE's reach (see ``_PARKED``)."""
    info = key_val_str_to_dict(_STRESS_KEY.sub(r"_mlffbench_\1", line))
    if "energy" in info:
        info[_PARKED["energy"]] = info.pop("energy")
    return info


def _extxyz_labels(frame: Atoms, where: str, factor: float, order) -> None:
    """Check the parked energy; convert the parked stress (or, without one, the virial) onto the calculator."""
    results = dict(frame.calc.results) if frame.calc is not None else {}
    energy = frame.info.pop(_PARKED["energy"], None)
    if energy is not None:
        if isinstance(energy, (bool, np.bool_)) or not isinstance(energy, (int, float, np.integer, np.floating)):
            raise DataError(f"{where}: energy is not a number: {energy!r}")
        results["energy"] = float(energy)
    stress = frame.info.pop(_PARKED["stress"], None)
    virial = frame.info.pop(_PARKED["virial"], None)
    if stress is not None:
        results["stress"] = _stress_voigt(stress, where, factor, order, "stress")
        if virial is not None:
            frame.info["virial"] = virial  # metadata beside the stress label
    elif virial is not None:
        if factor != 1.0 or order not in (None, ASE_SHEAR):
            raise DataError(f"{where}: the stress comes from virial= (eV; σ = -virial/volume), to which the declared "
                            "stress_unit / stress_convention / shear_order do not apply; convert it to stress=")
        results["stress"] = -_stress_voigt(virial, where, 1.0, None, "virial") / frame.get_volume()
        frame.info[STRESS_NOTE] = "stress from virial= as -virial/volume"
    if results:
        frame.calc = SinglePointCalculator(frame, **results)


def _stress_voigt(raw, where: str, factor: float, order, key: str) -> np.ndarray:
    """A 6- or 9-number ``key`` times ``factor`` as an ASE Voigt 6-vector; a non-symmetric 3x3 is an error."""
    try:
        values = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key} is not numeric: {raw!r}") from None
    if values.size == 6:
        voigt = factor * values.reshape(6)
        if order is not None:
            voigt[list(order)] = voigt[3:].copy()
        return voigt
    if values.size != 9:
        raise DataError(f"{where}: {key} has {values.size} numbers, expected 6 (Voigt) or 9 (3x3)")
    if order not in (None, ASE_SHEAR):
        raise DataError(f"{where}: {key} is a full 3x3 tensor; shear_order applies to 6-number stresses only")
    tensor = factor * values.reshape(3, 3, order="F")  # ASE's extxyz order (the same for a symmetric tensor)
    asymmetry = np.abs(tensor - tensor.T)
    finite = np.isfinite(asymmetry)
    largest = np.abs(tensor[np.isfinite(tensor)]).max(initial=0.0)
    if finite.any() and asymmetry[finite].max() > max(_ASYMMETRY_ABS, _ASYMMETRY_REL * largest):
        raise DataError(f"{where}: {key} is not symmetric (|σ - σᵀ| up to {asymmetry[finite].max():.3g} vs "
                        f"|σ| up to {largest:.3g}, in eV/Å³ after conversion); a stress tensor is symmetric: check "
                        "what the 9 numbers are")
    return full_3x3_to_voigt_6_stress(0.5 * (tensor + tensor.T))


def _read_vasprun(path: Path, index, factor: float, order) -> list[Atoms]:
    """vasprun.xml; refused without its closing tag, where ASE would quietly return the steps before the cut."""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 4096))
        if b"</modeling>" not in fh.read():
            raise DataError(f"{path}: truncated vasprun.xml (no closing </modeling>: run unfinished or file cut)")
    return _read_ase(path, index, "vasp-xml")


def _read_db(path: Path, index, factor: float, order) -> list[Atoms]:
    """Every row of an ASE database; key_value_pairs go into info."""
    import ase.db

    frames = []
    with ase.db.connect(path) as db:
        for k, row in enumerate(db.select()):
            atoms = row.toatoms()  # labels (energy, forces, stress) on a SinglePointCalculator
            atoms.info.update(row.key_value_pairs)
            if atoms.calc is not None and atoms.calc.results.get("stress") is not None:
                atoms.calc.results["stress"] = _stress_voigt(atoms.calc.results["stress"], f"{path}: frame {k}",
                                                             factor, order, "stress")
            frames.append(atoms)
    return _select(frames, index)


def _read_mlearn_json(path: Path, index, factor: float, order) -> list[Atoms]:
    return _select(read_mlearn(path, factor, order), index)


_READERS = {
    "extxyz": _read_extxyz,
    "vasp-out": lambda p, i, factor, order: _read_ase(p, i, "vasp-out"),
    "vasp-xml": _read_vasprun,
    "db": _read_db,
    "mlearn": _read_mlearn_json,
}


# --- helpers ---------------------------------------------------------------------------------------------


def _add_metadata(frames: list[Atoms], path: Path) -> None:
    """Fill in source, elements and (for TM23 names) temperature label and split, keeping what the file has."""
    tm23 = parse_tm23_name(path) or {}
    for frame in frames:
        frame.info.setdefault(fr.SOURCE, str(path))
        frame.info.setdefault(fr.ELEMENTS, fr.element_key(frame.get_chemical_symbols()))
        if tm23.get("temperature_label"):
            frame.info.setdefault(fr.TEMPERATURE_LABEL, tm23["temperature_label"])
        if tm23:
            frame.info.setdefault("split", tm23["split"])


def _select(items: list, index) -> list:
    """Apply an ase.io-style index (":", "2:5", "-1", an int or a slice) to a list."""
    if isinstance(index, str):
        index = string2index(index)
    if isinstance(index, int):
        return [items[index]]
    return items[index]


def _check_info_writable(frame: Atoms, i: int, path: Path) -> None:
    """Extended XYZ writes short strings unquoted, so 'T' or '300' would come back as a bool or a number."""
    for key, value in frame.info.items():
        if isinstance(value, str):
            text = key_val_dict_to_str({key: value})
            if key_val_str_to_dict(text).get(key) != value:
                raise DataError(
                    f"{path}: frame {i}: info[{key!r}] = {value!r} would be read back as a non-string; rename it"
                )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"
