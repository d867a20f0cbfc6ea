"""Checks across frames and files for labels that are valid one by one but silently flatter (or ruin) a benchmark.

``validate`` checks each frame on its own; these look at many frames at once, before any job runs:

- **duplicates** (``duplicates``): a test frame that is a training frame again (same species in the same order,
  the same cell within ``DUPLICATE_TOL`` Å per component, every atom within ``DUPLICATE_TOL`` Å after wrapping
  into the cell) scores the model on what it was fitted to. Candidates are found from a few random projections of
  sin/cos 2π s of the fractional coordinates s (blind to wrapping), sorted, within a window bounded by how far
  the tolerance can move them, then confirmed atom by atom (no
  rounding, so no near-duplicate is missed at a rounding edge).
- **per-atom energies** (``energy_scale``): a file whose energies are per atom reads as an absurdly good energy
  fit. Two rules, both conservative (see their docstrings); a data set where every frame has the same number of
  atoms cannot show a per-atom energy by itself, and energies near zero per atom (formation energies, EMT)
  cannot show it at all, so neither is judged.
- **force sums** (``force_sum_frames``): in a periodic cell the forces of a translation-invariant calculator sum
  to zero (DFT: up to a drift of ~0.01 eV/Å); a large sum means forces that do not belong to these atoms.
- **force magnitudes** (``force_unit_hint``): forces far larger than any material shows in most frames of a file
  are a unit misread (kcal/mol/Å read as eV/Å is 23x): a warning naming the likely unit, never an error.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
from ase import Atoms

from mlffbench import frames as fr

#: Å: two frames are duplicates when cells and every atom agree within this (after wrapping into the cell)
DUPLICATE_TOL = 1e-6
#: random projections per frame used to find candidate duplicates before the atom-by-atom comparison
_PROJECTIONS = 4

#: eV/Å: a periodic frame's |Σ F| is "far from zero" above max(FORCE_SUM_ABS, FORCE_SUM_REL x rms|F| x sqrt(N)):
#: the first is ~50x a DFT drift, the second a tenth of the sum N random forces of that size would have
FORCE_SUM_ABS, FORCE_SUM_REL = 0.5, 0.1
#: eV/Å: a frame whose largest force exceeds this is implausible for a material; the warning needs it in more
#: than half the frames of a file (a few compressed or close-contact frames are real data)
MAX_PLAUSIBLE_FORCE = 50.0
#: (name, eV/Å per unit) of force units a file may really be in when its numbers were read as eV/Å
FORCE_UNITS = (("kcal/mol/Å", 0.0433641), ("kJ/mol/Å", 0.0103643))
#: eV/Å: range of the largest force per frame that a converted file must fall in to be suggested
_PLAUSIBLE_FORCE = (0.05, 20.0)

ENERGY_KINDS = ("per-cell", "per-atom")
#: within one file: the intensive fit must beat the extensive one by this factor (rms residual) ...
_INTENSIVE_BETTER = 4.0
#: ... and sizes must span this ratio (max N / min N)
_SIZE_SPAN = 1.5
#: eV/atom: across files, a file's E matches the other files' E/N within this while its own E/N misses by more
#: than _MIX_FAR
_MIX_CLOSE, _MIX_FAR = 1.0, 4.0
_MIX_MIN_ATOMS = 4

_printed: set[str] = set()


def warn(message: str) -> None:
    """Print a warning to stderr once per process (planning runs more than once per command)."""
    if message not in _printed:
        _printed.add(message)
        print(f"mlffbench: warning: {message}", file=sys.stderr, flush=True)


# --- duplicates -----------------------------------------------------------------------------------------


def _projections(n: int) -> np.ndarray:
    """Fixed random weights (n atoms x 3 axes x 2 (sin, cos) x _PROJECTIONS), the same for every frame of n atoms."""
    return np.random.default_rng([n, 0xD0B1]).standard_normal((n, 3, 2, _PROJECTIONS)) / np.sqrt(n)


def _features(frame: Atoms) -> tuple[np.ndarray, float]:
    """(random projections of the wrapped positions, the most they move when every atom and cell component
    moves by DUPLICATE_TOL Å). Periodic: projections of sin and cos of 2π x the fractional coordinates, which do
    not see wrapping; molecules: of the positions."""
    weights = _projections(len(frame))
    if frame.pbc.all():
        phase = 2 * np.pi * frame.cell.scaled_positions(frame.positions)
        feats = np.stack([np.sin(phase), np.cos(phase)], axis=-1)
        # a DUPLICATE_TOL move shifts a fractional coordinate by <= tol / (thinnest cell height), and the cell's own
        # change as much again: twice that, times 2π, bounds each sin / cos change
        heights = frame.cell.volume / np.linalg.norm(np.cross(frame.cell[[1, 2, 0]], frame.cell[[2, 0, 1]]), axis=1)
        step = 2 * 2 * np.pi * DUPLICATE_TOL / heights.min()
    else:  # molecules (and partly periodic frames, not wrapped): the positions, in both slots
        feats = np.stack([frame.positions, frame.positions], axis=-1)
        step = DUPLICATE_TOL
    return np.einsum("ijk,ijkp->p", feats, weights), float(np.abs(weights).sum(axis=(0, 1, 2)).max() * step)


def same_frame(a: Atoms, b: Atoms, tol: float = DUPLICATE_TOL) -> bool:
    """Same species in the same order, the same cell and every atom within ``tol`` Å (periodic: after wrapping)."""
    if len(a) != len(b) or not np.array_equal(a.numbers, b.numbers) or not np.array_equal(a.pbc, b.pbc):
        return False
    if np.abs(np.asarray(a.cell) - np.asarray(b.cell)).max() > tol:
        return False
    if a.pbc.all():
        ds = a.cell.scaled_positions(a.positions) - a.cell.scaled_positions(b.positions)
        delta = (ds - np.round(ds)) @ np.asarray(a.cell)
    else:
        delta = a.positions - b.positions
    return bool(np.sqrt((delta ** 2).sum(axis=1)).max() <= tol)


class _Index:
    """Frames sorted per species sequence by their first projection: a look-up scans the window of frames whose
    projections can agree within the tolerance, filters on every projection and the cell, then compares atoms."""

    def __init__(self, frames: Sequence[Atoms], features: Sequence | None = None):
        self.frames = frames
        self.features = list(features) if features is not None else [_features(f) for f in frames]
        groups: dict[bytes, list[int]] = defaultdict(list)
        self.feats = [f for f, _ in self.features]
        self.slack = [s for _, s in self.features]
        for i, frame in enumerate(frames):
            groups[self._species(frame)].append(i)
        self.groups = {}
        for key, idx in groups.items():
            idx = np.array(idx)
            feats = np.array([self.feats[i] for i in idx])
            order = np.argsort(feats[:, 0])
            cells = np.array([np.asarray(frames[i].cell).ravel() for i in idx[order]])
            self.groups[key] = (idx[order], feats[order], cells, max(self.slack[i] for i in idx))

    @staticmethod
    def _species(frame: Atoms) -> bytes:
        return frame.numbers.tobytes() + frame.pbc.tobytes()

    def find(self, frame: Atoms, skip: int | None = None, features=None) -> int | None:
        """Index of a frame equal to ``frame`` (not ``skip``), or None; ``features``: its ``_features``."""
        group = self.groups.get(self._species(frame))
        if group is None:
            return None
        idx, feats, cells, slack = group
        f, own = features if features is not None else _features(frame)
        width = slack + own
        lo, hi = np.searchsorted(feats[:, 0], [f[0] - width, f[0] + width])
        near = np.flatnonzero((np.abs(feats[lo:hi] - f) <= width).all(axis=1)
                              & (np.abs(cells[lo:hi] - np.asarray(frame.cell).ravel()) <= DUPLICATE_TOL).all(axis=1))
        for k in near:
            j = int(idx[lo + k])
            if j != skip and same_frame(frame, self.frames[j]):
                return j
        return None


def duplicates(train: Sequence[Atoms], test: Sequence[Atoms], index: _Index | None = None,
               features: Sequence | None = None) -> list[tuple[int, int]]:
    """(test index, training index) of every test frame that repeats a training frame (``index``: of ``train``;
    ``features``: of ``test``, when already known)."""
    index = index or _Index(train)
    features = features if features is not None else [None] * len(test)
    return [(i, j) for i, (frame, f) in enumerate(zip(test, features)) if (j := index.find(frame, None, f)) is not None]


def repeats(frames: Sequence[Atoms], index: _Index | None = None) -> list[tuple[int, int]]:
    """(later index, earlier index) of every frame that repeats an earlier frame of the same list."""
    index = index or _Index(frames)
    out = []
    for i, frame in enumerate(frames):
        j = index.find(frame, skip=i, features=index.features[i])
        if j is not None and j < i:
            out.append((i, j))
    return out


def _by_group(frames: Sequence[Atoms], indices) -> str:
    counts = Counter(str(frames[i].info.get(fr.GROUP, "-")) for i in indices)
    return ", ".join(f"{g} {n}" for g, n in sorted(counts.items()))


def copied_files(frames: Sequence[Atoms], index: _Index | None = None) -> list[str]:
    """'every frame of B repeats A' for each file B (``info['source']``) all of whose frames repeat frames of one
    earlier file A: a copy under another name, byte-identical or rewritten."""
    sources = [f.info.get(fr.SOURCE) for f in frames]
    size = Counter(sources)
    matched = Counter((sources[i], sources[j]) for i, j in repeats(frames, index) if sources[i] != sources[j])
    return [f"every frame of {b} repeats {a}" for (b, a), n in matched.items() if b and a and n == size[b]]


def check_duplicates(name: str, frames: Sequence[Atoms], train_idx, test_idx, allow: bool) -> list[str]:
    """Refuse (DataError, one line) test frames that repeat training frames unless ``allow``; return warnings
    for those (when allowed) and for repeats inside the training set."""
    from mlffbench.errors import DataError

    everything = _Index(frames)  # features once per frame, shared by the three look-ups below
    train = [frames[i] for i in train_idx]
    test = [frames[i] for i in test_idx]
    train_index = _Index(train, [everything.features[i] for i in train_idx])
    notes = []
    pairs = duplicates(train, test, train_index, [everything.features[i] for i in test_idx])
    if pairs:
        what = (f"{name}: {len(pairs)} of {len(test)} test frames repeat training frames (same species, cell and "
                f"positions within {DUPLICATE_TOL:g} Å after wrapping), by group: "
                f"{_by_group(test, [i for i, _ in pairs])}")
        files = copied_files(frames, everything)
        if files:
            what += f"; {'; '.join(files)}"
        if not allow:
            raise DataError(f"{what}; their scores would flatter every model: remove them, or pass --allow-duplicates "
                            "(allow_duplicates: true on the files entry) to keep them")
        notes.append(f"{what} (kept: allow_duplicates)")
    inside = repeats(train, train_index)
    if inside:
        files = [] if pairs else copied_files(frames, everything)
        notes.append(f"{name}: {len(inside)} training frames repeat other training frames (they weigh twice in "
                     f"training), by group: {_by_group(train, [i for i, _ in inside])}"
                     + "".join(f"; {f}" for f in files))
    return notes


# --- energies per atom or per cell ----------------------------------------------------------------------


def _energies(frames: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray, list[Atoms]]:
    labelled = [f for f in frames if fr.label(f, "energy") is not None]
    return (np.array([fr.label(f, "energy") for f in labelled], dtype=float),
            np.array([len(f) for f in labelled], dtype=float), labelled)


def looks_per_atom(frames: Sequence[Atoms]) -> str | None:
    """Why the energies of one file look per atom, or None.

    Rule: with sizes spanning at least ``_SIZE_SPAN`` (max N / min N) and at least 3 labelled frames, fit the
    energies both ways by least squares on the per-element atom counts: extensive (per cell: E = Σ n_el μ_el) and
    intensive (per atom: E = Σ (n_el / N) μ_el). Per-atom energies are called only when the intensive fit's rms
    residual is ``_INTENSIVE_BETTER`` times smaller. Per-cell energies of anything (bulk, surfaces, clusters,
    molecules, isolated atoms) are extensive, so they fit the extensive form far better; energies near zero per
    atom (formation energies) fit both alike and are not judged."""
    energies, sizes, labelled = _energies(frames)
    if len(energies) < 3 or sizes.max() < _SIZE_SPAN * sizes.min():
        return None
    species = sorted({s for f in labelled for s in f.get_chemical_symbols()})
    counts = np.array([[f.get_chemical_symbols().count(s) for s in species] for f in labelled], dtype=float)

    def rms(design):
        coef = np.linalg.lstsq(design, energies, rcond=None)[0]
        return float(np.sqrt(np.mean((design @ coef - energies) ** 2)))

    extensive, intensive = rms(counts), rms(counts / sizes[:, None])
    if intensive * _INTENSIVE_BETTER < extensive:
        return (f"with {sizes.min():.0f} to {sizes.max():.0f} atoms per frame the energies fit a per-atom form "
                f"(rms {intensive:.3g} eV) far better than a per-cell one (rms {extensive:.3g} eV)")
    return None


def per_atom_files(parts: Sequence[tuple[str, Sequence[Atoms]]],
                   fixed: frozenset = frozenset()) -> list[tuple[str, str, bool]]:
    """(file, why, beside per-cell files) of the files whose energies look per atom, alone (``looks_per_atom``)
    or beside the other files.

    Across files (a mix): a file of cells with a median of at least ``_MIX_MIN_ATOMS`` atoms whose median E
    matches the median E/N of another file with the same elements within ``_MIX_CLOSE`` eV/atom, while its own
    median E/N misses that by more than ``_MIX_FAR`` eV/atom, holds per-atom energies beside per-cell ones. (Per
    cell, that would need its atoms to be bound 4x less than the other file's: small clusters, the one real case,
    have fewer atoms than ``_MIX_MIN_ATOMS``; energies near zero per atom never match.) Files in ``fixed``
    (energy kind declared) are references, never flagged."""
    out = []
    stats = {}
    for source, frames in parts:
        energies, sizes, labelled = _energies(frames)
        if len(energies):
            elements = frozenset(s for f in labelled for s in f.get_chemical_symbols())
            stats[source] = (elements, float(np.median(energies / sizes)), float(np.median(energies)),
                             float(np.median(sizes)))
        why = None if source in fixed else looks_per_atom(frames)
        if why:
            out.append((source, why, False))
    flagged = {s for s, _, _ in out}
    for source, (elements, per_atom, whole, size) in stats.items():
        if source in flagged or source in fixed or size < _MIX_MIN_ATOMS:
            continue
        for other, (e, reference, _, _) in stats.items():
            if other != source and other not in flagged and e == elements \
                    and abs(whole - reference) <= _MIX_CLOSE and abs(per_atom - reference) > _MIX_FAR:
                out.append((source, f"its energies ({whole:.3g} eV per frame) match the energy per atom of {other} "
                                    f"({reference:.3g} eV/atom), while its own energy per atom is {per_atom:.3g}",
                            True))
                break
    return out


def check_energy_scale(parts: Sequence[tuple[str, Sequence[Atoms]]], fixed: frozenset = frozenset()) -> None:
    """DataError (one line) naming the first file whose energies look per atom (``per_atom_files``)."""
    from mlffbench.errors import DataError

    found = per_atom_files(parts, fixed)
    if found:
        source, why, mix = found[0]
        # a mix needs the per-file form: --energy per-atom would convert the per-cell files as well
        how = (f"declare this file per atom with energy: {{{source}: per-atom}} on the files entry (--energy "
               "per-atom declares every file)" if mix else
               "declare --energy per-atom (energy: per-atom on the files entry) to convert them to per cell")
        raise DataError(f"{source}: energies look per atom, not per cell: {why}; {how}, or --energy per-cell "
                        "(energy: per-cell) if they are per cell")


def to_per_cell(frames: Sequence[Atoms]) -> None:
    """Per-atom energies -> per cell (E x N), in place; each frame notes it (kept in the canonical copy)."""
    for frame in frames:
        energy = fr.label(frame, "energy")
        if energy is not None:
            frame.calc.results["energy"] = float(energy) * len(frame)
            frame.info[ENERGY_NOTE] = "per-atom energy in the source, x natoms"


#: info key of the frames whose energy was converted from per atom
ENERGY_NOTE = "energy_note"


# --- forces ---------------------------------------------------------------------------------------------


def force_sum_frames(frames: Sequence[Atoms]) -> list[tuple[int, float]]:
    """(frame index, |Σ F| eV/Å) of the periodic frames whose forces sum far from zero (see FORCE_SUM_*)."""
    out = []
    for i, frame in enumerate(frames):
        forces = fr.label(frame, "forces")
        if forces is None or not frame.pbc.all():
            continue
        forces = np.asarray(forces, dtype=float)
        total = float(np.linalg.norm(forces.sum(axis=0)))
        scale = float(np.sqrt((forces ** 2).sum(axis=1).mean()) * np.sqrt(len(frame)))
        if total > max(FORCE_SUM_ABS, FORCE_SUM_REL * scale):
            out.append((i, total))
    return out


def force_unit_hint(frames: Sequence[Atoms]) -> str | None:
    """Why the forces of a file look like another unit read as eV/Å, or None (see MAX_PLAUSIBLE_FORCE)."""
    largest = np.array([np.abs(np.asarray(fr.label(f, "forces"))).max() for f in frames
                        if fr.label(f, "forces") is not None and len(f)])
    if not largest.size or np.mean(largest > MAX_PLAUSIBLE_FORCE) <= 0.5:
        return None
    median = float(np.median(largest))
    text = (f"the largest force is above {MAX_PLAUSIBLE_FORCE:g} eV/Å in {int(np.sum(largest > MAX_PLAUSIBLE_FORCE))} "
            f"of {largest.size} frames (median {median:.3g} eV/Å), implausible for a material")
    fits = [(name, median * k) for name, k in FORCE_UNITS if _PLAUSIBLE_FORCE[0] <= median * k <= _PLAUSIBLE_FORCE[1]]
    if fits:
        text += "; it looks like " + " or ".join(f"{name} ({v:.3g} eV/Å)" for name, v in fits)
    return text + ": convert the forces to eV/Å"


def force_warnings(source: str, frames: Sequence[Atoms]) -> list[str]:
    """The force-sum and force-unit warnings of one file."""
    out = []
    bad = force_sum_frames(frames)
    if bad:
        shown = ", ".join(f"{i} ({total:.3g} eV/Å)" for i, total in bad[:5]) + (", ..." if len(bad) > 5 else "")
        out.append(f"{source}: in {len(bad)} of {len(frames)} periodic frames the forces sum far from zero "
                   f"(|ΣF| > max({FORCE_SUM_ABS:g} eV/Å, {FORCE_SUM_REL:g} x rms|F| x sqrt(N))): frames {shown}; "
                   "do the forces belong to these atoms (atoms missing from the calculation, a misread column)?")
    hint = force_unit_hint(frames)
    if hint:
        out.append(f"{source}: {hint}")
    return out


# --- one data set at planning ---------------------------------------------------------------------------


def check_dataset(entry, parts, dataset, default_split, seed: int) -> list[str]:
    """Every check of a files data set at planning (``datasets.files.plan``), before any job: energies that look
    per atom and test frames that repeat training frames of its split are a DataError (the latter unless
    ``entry.allow_duplicates``); repeats inside the training set, force sums and force units are warnings,
    printed once (stderr) and returned as the data set's notes. ``parts``: [(path, subset, frames)]."""
    sources = [(str(path), frames) for path, _, frames in parts]
    check_energy_scale(sources, frozenset(str(p) for p, _, _ in parts if entry.energy_kind(p) is not None))
    notes = [n for source, frames in sources for n in force_warnings(source, frames)]
    split = _base_split(dataset, default_split, seed)
    if split is not None:
        frames = [f for _, _, part in parts for f in part]
        notes += check_duplicates(entry.name, frames, split.train, split.test, entry.allow_duplicates)
    for note in notes:
        warn(note)
    return notes


def _base_split(dataset, default_split, seed: int):
    """The data set's own split as the tasks will make it, or None when it cannot be made (the planner then
    refuses it with its own message)."""
    from mlffbench.config import SplitConfig
    from mlffbench.data import splits
    from mlffbench.datasets.base import resolve_split
    from mlffbench.errors import MlffbenchError

    try:
        return splits.base(dataset.metadata, resolve_split(dataset, default_split or SplitConfig()), seed)
    except (MlffbenchError, ValueError):
        return None
