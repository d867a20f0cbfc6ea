"""Facts about the 43 metals covered by the TM23 and Metal-43 benchmark data sets.

Sources, transcribed by hand:

* TM23: Owen et al., "Complexity of many-body interactions in transition metals via machine-learned
  force fields from the TM23 data set", Supporting Information
  - Table S1: pseudopotential name, valency and minimum k-point density (1/Å) used for the labels;
  - Table S2: Materials Project id, space group and melting point (K) of the 27 transition metals.
* Metal-43: Geng, Zhang, Wang & Meng, "Origin of the Machine Learning Forces Field Errors Across Metal
  Elements", Supplementary Table 1: Materials Project id, space group, AIMD temperatures
  (300 K, 0.5 T_c, T_c, 1.2 T_c, where T_c is the melting temperature) and VASP POTCAR of 43 metals.
* Atomic number, IUPAC group, period and ground-state electron configuration of the free atom:
  NIST Atomic Spectra Database ground states (checked against ``ase.data`` in the tests).

Precedence: for the 27 TM23 metals the TM23 tables win; the other 16 come from Metal-43 only.
Where the papers disagree, or a printed value looks wrong, ``Element.notes`` says so; printed
values are kept as printed in the raw tables below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Iterable

from mlffbench.errors import DataError

#: TM23's three MD temperatures as fractions of T_melt (Methods IV.A): cold, warm, melt
TM23_FRACTIONS = {"cold": 0.25, "warm": 0.75, "melt": 1.25}
TM23_MELT_SOURCE = "TM23 Table S2"
TM23_SG_SOURCE = "TM23 Table S2"
METAL43_SOURCE = "Metal-43 SI Table 1"
METAL43_DERIVED_MELT_SOURCE = "Metal-43 SI Table 1, 1.2T_c column / 1.2"
#: Metal-43 SI Table 1's temperature columns, in table order
METAL43_COLUMNS = ("300K", "0.5T_c", "T_c", "1.2T_c")
N_D_SOURCE = "NIST ground-state configuration"


@dataclass(frozen=True)
class Element:
    """One metal: identity, melting point, reference structure, d count and per-paper DFT settings."""

    symbol: str
    z: int  # atomic number
    group: int  # IUPAC group 1-18
    period: int
    t_melt: float  # K
    t_melt_source: str
    mp_id: str | None  # Materials Project id of the starting structure
    space_group: str  # Hermann-Mauguin, normalised ("P6_3/mmc", "Fm-3m", ...)
    space_group_source: str
    lattice: str  # prototype name for the structure builder: fcc, bcc, hcp, omega, ...
    n_d: int  # d electrons in the free atom's ground-state configuration (outside the noble-gas core)
    n_d_source: str
    configuration: str  # NIST ground-state configuration, e.g. "[Ar] 3d10 4s1"
    in_tm23: bool
    in_metal43: bool
    tm23_pseudopotential: str | None  # TM23 Table S1 name, e.g. "Cr_pv"
    tm23_pseudopotential_valency: int | None  # TM23 Table S1 valency
    tm23_min_kpoint_density: float | None  # TM23 Table S1, 1/Å
    metal43_potcar: str | None  # Metal-43 Table 1 POTCAR, as printed
    notes: str
    #: Metal-43 Table 1 AIMD temperatures as printed (K), by column; None = blank cell (no run at it)
    metal43_temperatures: dict = field(default_factory=dict)
    #: Metal-43's T_c (its melting temperature): the printed T_c, else the 1.2T_c column / 1.2; None for Hg
    t_c: float | None = None


# --- TM23 Table S2 (row order = TM23 order): symbol, mp-id, space group, melting point (K) ---
_TM23_S2: tuple[tuple[str, str, str, float], ...] = (
    ("Ag", "mp-124", "Fm-3m", 1235),
    ("Au", "mp-81", "Fm-3m", 1337),
    ("Cd", "mp-94", "P6_3/mmc", 594),
    ("Co", "mp-54", "P6_3/mmc", 1768),
    ("Cr", "mp-90", "Im-3m", 2180),
    ("Cu", "mp-30", "Fm-3m", 1358),
    ("Fe", "mp-13", "Im-3m", 1811),
    ("Hf", "mp-103", "P6_3/mmc", 2506),
    ("Hg", "mp-10861", "P6/mmm", 234),
    ("Ir", "mp-101", "Fm-3m", 2739),
    ("Mn", "mp-35", "I-43m", 1519),
    ("Mo", "mp-129", "Im-3m", 2896),
    ("Nb", "mp-75", "Im-3m", 2750),
    ("Ni", "mp-23", "Fm-3m", 1728),
    ("Os", "mp-49", "P6_3/mmc", 3306),
    ("Pd", "mp-2", "Fm-3m", 1828),
    ("Pt", "mp-126", "Fm-3m", 2041),
    ("Re", "mp-8", "P6_3/mmc", 3459),
    ("Rh", "mp-74", "Fm-3m", 2237),
    ("Ru", "mp-33", "P6_3/mmc", 2607),
    ("Ta", "mp-50", "Im-3m", 3290),
    ("Tc", "mp-113", "P6_3/mmc", 2430),
    ("Ti", "mp-72", "P6/mmm", 1941),
    ("V", "mp-146", "Im-3m", 2183),
    ("W", "mp-91", "Im-3m", 3695),
    ("Zn", "mp-79", "P6_3/mmc", 693),
    ("Zr", "mp-131", "P6_3/mmc", 2128),
)

# --- TM23 Table S1: symbol -> (pseudopotential name, valency, min k-point density 1/Å) ---
_TM23_S1: dict[str, tuple[str, int, float]] = {
    "Ag": ("Ag", 11, 0.15),
    "Au": ("Au", 11, 0.15),
    "Cd": ("Cd", 12, 0.12),
    "Co": ("Co", 9, 0.28),
    "Cr": ("Cr_pv", 12, 0.18),
    "Cu": ("Cu_pv", 17, 0.19),
    "Fe": ("Fe_pv", 14, 0.25),
    "Hf": ("Hf_pv", 10, 0.22),
    "Hg": ("Hg", 12, 0.20),
    "Ir": ("Ir", 9, 0.18),
    "Mn": ("Mn_pv", 13, 0.25),
    "Mo": ("Mo_pv", 12, 0.17),
    "Nb": ("Nb_sv", 13, 0.16),
    "Ni": ("Ni_pv", 16, 0.30),
    "Os": ("Os_pv", 14, 0.15),
    "Pd": ("Pd", 10, 0.26),
    "Pt": ("Pt", 10, 0.18),
    "Re": ("Re_pv", 13, 0.15),
    "Rh": ("Rh_pv", 15, 0.18),
    "Ru": ("Ru_pv", 14, 0.19),
    "Ta": ("Ta_pv", 11, 0.16),
    "Tc": ("Tc_pv", 13, 0.15),
    "Ti": ("Ti_pv", 10, 0.25),
    "V": ("V_pv", 11, 0.23),
    "W": ("W_sv", 12, 0.16),
    "Zn": ("Zn", 12, 0.10),
    "Zr": ("Zr_sv", 12, 0.20),
}

# --- Metal-43 Supplementary Table 1 (row order = Metal-43 order), as printed except that the
# subscript typography "P6 ₃ /mmc" is written "P6_3/mmc". None = blank cell.
# symbol, mp-id, space group, 0.5T_c, T_c, 1.2T_c, POTCAR  (the 300 K column is 300 for every row)
_METAL43_T1: tuple[tuple[str, str | None, str, int | None, int | None, int | None, str], ...] = (
    ("Li", "mp-51", "Fm-3m", None, 454, 548, "Li_sv"),
    ("Be", "mp-87", "P6_3/mmc", 780, 1560, 1872, "Be_sv"),
    ("Na", "mp-127", "Im-3m", None, 370, 444, "Na_pv"),
    ("Mg", "mp-153", "P6_3/mmc", 462, 923, 1108, "Mg_pv"),
    ("Al", "mp-134", "Fm-3m", 467, 933, 1120, "Al"),
    ("K", "mp-58", "Im-3m", None, None, 403, "K_pv"),
    ("Ca", "mp-45", "Fm-3m", 558, 1115, 1338, "Ca_sv"),
    ("Sc", "mp-67", "P6_3/mmc", 907, 1814, 2176, "Sc_sv"),
    ("Ti", "mp-72", "p6_3/mmm", 970, 1941, 2297, "Ti_pv"),  # sic: lower-case p, "6_3" with "mmm"
    ("V", "mp-146", "Im-3m", 1092, 2183, 2620, "V_pv"),
    ("Cr", "mp-90", "Im-3m", 1090, 2180, 2616, "Cr_pv"),
    ("Mn", "mp-35", "I4-3m", 760, 1519, 1823, "Mn_pv"),  # sic: I-43m
    ("Fe", "mp-13", "Im-3m", 906, 1811, 2173, "Fe"),
    ("Co", "mp-54", "P6_3/mmc", 884, 1768, 2122, "Co"),
    ("Ni", "mp-23", "Fm-3m", 864, 1728, 2138, "Ni"),
    ("Cu", "mp-30", "Fm-3m", 678, 1358, 1630, "Cu_pv"),
    ("Zn", "mp-79", "P6_3/mmc", None, 693, 832, "Zn"),
    ("Ga", "mp-142", "Cmce", None, None, 364, "Ga"),
    ("Rb", None, "Im-3m", None, None, 374, "Rb_pv"),  # mp-id cell blank
    ("Sr", "mp-76", "Fm-3m", 525, 1050, 1260, "Sr_sv"),
    ("Y", "mp-112", "P6_3/mmc", 900, 1799, 2159, "Y_sv"),
    ("Zr", "mp-131", "P6_3/mmc", 1065, 2128, 2554, "Zr_sv"),
    ("Nb", "mp-75", "Im-3m", 1375, 2750, 3300, "Nb_sv"),
    ("Mo", "mp-129", "Im-3m", 1448, 2896, 3475, "Mo_pv"),
    ("Tc", "mp-113", "P6_3/mmc", 1215, 2430, 2916, "Tc_pv"),
    ("Ru", "mp-33", "P6_3/mmc", 1304, 2607, 3218, "Ru_pv"),
    ("Rh", "mp-74", "Fm-3m", 1119, 2237, 2684, "Rh_pv"),
    ("Pd", "mp-2", "Fm-3m", 914, 1828, 2194, "Pd"),
    ("Ag", "mp-124", "Fm-3m", 618, 1235, 1482, "Ag"),
    ("Cd", "mp-94", "P6_3/mmc", None, 594, 713, "Cd"),
    ("In", "mp-85", "Fm-3m", None, 430, 516, "In"),
    ("Cs", "mp-1", "Im-3m", None, None, 362, "Cs_sv"),
    ("Ba", "mp-122", "Im-3m", 500, 1000, 1200, "Ba_sv"),
    ("Hf", "mp-103", "P6_3/mmc", 1253, 2506, 3007, "Hf_pv"),
    ("Ta", "mp-50", "Im-3m", 1645, 3290, 3948, "Ta_pv"),
    ("W", "MP-91", "Im-3m", 1848, 3695, 4434, "W_sv"),  # sic: upper-case "MP"
    ("Re", "mp-8", "P6_3/mmc", 1730, 3459, 4151, "Re"),
    ("Os", "mp-49", "P6_3/mmc", 1653, 3306, 3967, "Os_pv"),
    ("Ir", "mp-101", "Fm-3m", 1370, 2739, 3287, "It"),  # sic: "It" is surely a typo for the Ir POTCAR
    ("Pt", "mp-126", "Fm-3m", 1020, 2041, 2449, "Pt"),
    ("Au", "mp-81", "Fm-3m", 669, 1337, 1606, "Au"),
    ("Hg", "mp-10861", "P6/mmm", None, None, None, "Hg"),  # only the 300 K run; no T_c given
    ("Tl", "mp-82", "P6_3/mmc", None, 577, 692, "Tl"),
)

# --- NIST ground states: symbol -> (Z, IUPAC group, period, configuration, d electrons) ---
# n_d counts the d subshell written outside the noble-gas core (so Rb, Cs: 0; Ga, In, Tl: 10).
_ATOMS: dict[str, tuple[int, int, int, str, int]] = {
    "Li": (3, 1, 2, "[He] 2s1", 0),
    "Be": (4, 2, 2, "[He] 2s2", 0),
    "Na": (11, 1, 3, "[Ne] 3s1", 0),
    "Mg": (12, 2, 3, "[Ne] 3s2", 0),
    "Al": (13, 13, 3, "[Ne] 3s2 3p1", 0),
    "K": (19, 1, 4, "[Ar] 4s1", 0),
    "Ca": (20, 2, 4, "[Ar] 4s2", 0),
    "Sc": (21, 3, 4, "[Ar] 3d1 4s2", 1),
    "Ti": (22, 4, 4, "[Ar] 3d2 4s2", 2),
    "V": (23, 5, 4, "[Ar] 3d3 4s2", 3),
    "Cr": (24, 6, 4, "[Ar] 3d5 4s1", 5),
    "Mn": (25, 7, 4, "[Ar] 3d5 4s2", 5),
    "Fe": (26, 8, 4, "[Ar] 3d6 4s2", 6),
    "Co": (27, 9, 4, "[Ar] 3d7 4s2", 7),
    "Ni": (28, 10, 4, "[Ar] 3d8 4s2", 8),
    "Cu": (29, 11, 4, "[Ar] 3d10 4s1", 10),
    "Zn": (30, 12, 4, "[Ar] 3d10 4s2", 10),
    "Ga": (31, 13, 4, "[Ar] 3d10 4s2 4p1", 10),
    "Rb": (37, 1, 5, "[Kr] 5s1", 0),
    "Sr": (38, 2, 5, "[Kr] 5s2", 0),
    "Y": (39, 3, 5, "[Kr] 4d1 5s2", 1),
    "Zr": (40, 4, 5, "[Kr] 4d2 5s2", 2),
    "Nb": (41, 5, 5, "[Kr] 4d4 5s1", 4),
    "Mo": (42, 6, 5, "[Kr] 4d5 5s1", 5),
    "Tc": (43, 7, 5, "[Kr] 4d5 5s2", 5),
    "Ru": (44, 8, 5, "[Kr] 4d7 5s1", 7),
    "Rh": (45, 9, 5, "[Kr] 4d8 5s1", 8),
    "Pd": (46, 10, 5, "[Kr] 4d10", 10),
    "Ag": (47, 11, 5, "[Kr] 4d10 5s1", 10),
    "Cd": (48, 12, 5, "[Kr] 4d10 5s2", 10),
    "In": (49, 13, 5, "[Kr] 4d10 5s2 5p1", 10),
    "Cs": (55, 1, 6, "[Xe] 6s1", 0),
    "Ba": (56, 2, 6, "[Xe] 6s2", 0),
    "Hf": (72, 4, 6, "[Xe] 4f14 5d2 6s2", 2),
    "Ta": (73, 5, 6, "[Xe] 4f14 5d3 6s2", 3),
    "W": (74, 6, 6, "[Xe] 4f14 5d4 6s2", 4),
    "Re": (75, 7, 6, "[Xe] 4f14 5d5 6s2", 5),
    "Os": (76, 8, 6, "[Xe] 4f14 5d6 6s2", 6),
    "Ir": (77, 9, 6, "[Xe] 4f14 5d7 6s2", 7),
    "Pt": (78, 10, 6, "[Xe] 4f14 5d9 6s1", 9),
    "Au": (79, 11, 6, "[Xe] 4f14 5d10 6s1", 10),
    "Hg": (80, 12, 6, "[Xe] 4f14 5d10 6s2", 10),
    "Tl": (81, 13, 6, "[Xe] 4f14 5d10 6s2 6p1", 10),
}

# Prototype names for the structure builder, keyed by normalised space group; exceptions by symbol.
_LATTICE_BY_SG = {"Fm-3m": "fcc", "Im-3m": "bcc", "P6_3/mmc": "hcp"}
_LATTICE_BY_SYMBOL = {
    "Ti": "omega",  # P6/mmm mp-72 is the omega phase, not alpha (hcp) Ti
    "Hg": "simple_hexagonal",  # P6/mmm mp-10861, one atom per cell
    "Mn": "alpha_Mn",  # I-43m, 58 atoms in the conventional cell
    "Ga": "Cmce",  # alpha-Ga (Cmce, formerly written Cmca)
}

# Oddities and inter-paper disagreements (TM23 values are the ones stored).
_NOTES: dict[str, str] = {
    "Li": "Metal-43 lists Li as Fm-3m (fcc, mp-51); lithium is bcc (Im-3m) at room temperature. "
    "Metal-43 1.2T_c printed 548, but 1.2*454 = 544.8.",
    "K": "Metal-43 T_c cell blank; T_melt = 403/1.2.",
    "Ga": "Metal-43 T_c cell blank; T_melt = 364/1.2.",
    "Rb": "Metal-43 gives no mp-id for Rb; T_c cell blank, T_melt = 374/1.2.",
    "In": "Metal-43 lists In as Fm-3m (mp-85); indium is body-centred tetragonal (I4/mmm) at room "
    "temperature.",
    "Cs": "Metal-43 T_c cell blank; T_melt = 362/1.2.",
    "Ti": "TM23 P6/mmm (mp-72, omega phase; TM23 Fig. S3 nevertheless labels Ti 'hcp'); Metal-43 "
    "prints the same mp-72 as 'p6_3/mmm', not a valid symbol. Metal-43 1.2T_c printed 2297, "
    "but 1.2*1941 = 2329.2.",
    "Mn": "Metal-43 prints the space group as 'I4-3m'; TM23 gives I-43m (alpha-Mn).",
    "Fe": "POTCAR differs: TM23 Fe_pv, Metal-43 Fe.",
    "Ni": "POTCAR differs: TM23 Ni_pv, Metal-43 Ni. Metal-43 1.2T_c printed 2138, but 1.2*1728 = 2073.6.",
    "Cu": "Metal-43 0.5T_c printed 678, but 1358/2 = 679.",
    "Zr": "Metal-43 0.5T_c printed 1065, but 2128/2 = 1064.",
    "Ru": "Metal-43 1.2T_c printed 3218, but 1.2*2607 = 3128.4 (digits transposed?).",
    "Re": "POTCAR differs: TM23 Re_pv, Metal-43 Re.",
    "W": "Metal-43 prints the mp-id as 'MP-91'; TM23 gives mp-91.",
    "Ir": "Metal-43 POTCAR printed 'It' (presumably the Ir POTCAR; TM23 uses Ir).",
    "Au": "Metal-43 1.2T_c printed 1606, but 1.2*1337 = 1604.4.",
    "Hg": "Metal-43 gives no T_c (only a 300 K run); T_melt from TM23. mp-10861 is simple hexagonal "
    "(P6/mmm); alpha-Hg is rhombohedral (R-3m), TM23 Fig. S3 labels it '~hcp'.",
}


def _build() -> dict[str, Element]:
    tm23 = {row[0]: row for row in _TM23_S2}
    out: dict[str, Element] = {}
    for symbol, m43_mp, m43_sg, m43_half, m43_tc, m43_12tc, potcar in _METAL43_T1:
        z, group, period, config, n_d = _ATOMS[symbol]
        if symbol in tm23:  # TM23 wins
            _, mp_id, sg, t_melt = tm23[symbol]
            t_src, sg_src = TM23_MELT_SOURCE, TM23_SG_SOURCE
            pot, valency, kdens = _TM23_S1[symbol]
        else:
            mp_id, sg = m43_mp, m43_sg
            sg_src = METAL43_SOURCE
            pot = valency = kdens = None
            if m43_tc is not None:
                t_melt, t_src = m43_tc, METAL43_SOURCE
            else:  # blank T_c cell: undo the 1.2 factor
                t_melt, t_src = m43_12tc / 1.2, METAL43_DERIVED_MELT_SOURCE
        out[symbol] = Element(
            symbol=symbol,
            z=z,
            group=group,
            period=period,
            t_melt=float(t_melt),
            t_melt_source=t_src,
            mp_id=mp_id,
            space_group=sg,
            space_group_source=sg_src,
            lattice=_LATTICE_BY_SYMBOL.get(symbol) or _LATTICE_BY_SG[sg],
            n_d=n_d,
            n_d_source=N_D_SOURCE,
            configuration=config,
            in_tm23=symbol in tm23,
            in_metal43=True,
            tm23_pseudopotential=pot,
            tm23_pseudopotential_valency=valency,
            tm23_min_kpoint_density=kdens,
            metal43_potcar=potcar,
            notes=_NOTES.get(symbol, ""),
            metal43_temperatures=dict(zip(METAL43_COLUMNS, (300, m43_half, m43_tc, m43_12tc))),
            t_c=float(m43_tc) if m43_tc is not None else (m43_12tc / 1.2 if m43_12tc is not None else None),
        )
    return out


#: All 43 metals, keyed by symbol, in Metal-43 table order.
ELEMENTS: dict[str, Element] = _build()
#: The 27 TM23 metals, in TM23 Table S2 order.
TM23: tuple[str, ...] = tuple(row[0] for row in _TM23_S2)
#: The 43 Metal-43 metals, in Metal-43 Supplementary Table 1 order.
METAL43: tuple[str, ...] = tuple(row[0] for row in _METAL43_T1)


def get(symbol: str) -> Element:
    """The facts for one element symbol ("Cu"); raises DataError for a symbol mlffbench does not cover."""
    key = symbol.strip().capitalize() if isinstance(symbol, str) else symbol
    try:
        return ELEMENTS[key]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown element {symbol!r}: mlffbench has facts for {', '.join(METAL43)}"
        ) from None


def _symbols(symbols: Iterable[str] | str | None) -> list[str]:
    if symbols is None:
        return list(METAL43)
    if isinstance(symbols, str):
        symbols = [symbols]
    return [get(s).symbol for s in symbols]


def table_rows(symbols: Iterable[str] | str | None = None) -> list[dict]:
    """One plain dict per element (all Element fields), for printing or CSV; default: all 43 in Metal-43 order."""
    return [asdict(ELEMENTS[s]) for s in _symbols(symbols)]


def _fmt_t(t: float) -> str:
    return f"{t:.0f}" if t.is_integer() else f"{t:.1f}"


def format_table(symbols: Iterable[str] | str | None = None) -> str:
    """Aligned text table: symbol, Z, group, period, T_melt, structure, space group, mp-id, N_d, TM23?, source."""
    header = ("symbol", "Z", "group", "period", "T_melt/K", "structure", "space group", "mp-id", "N_d",
              "TM23?", "T_melt source")
    rows = [
        (e.symbol, str(e.z), str(e.group), str(e.period), _fmt_t(e.t_melt), e.lattice, e.space_group,
         e.mp_id or "-", str(e.n_d), "yes" if e.in_tm23 else "no", e.t_melt_source)
        for e in (ELEMENTS[s] for s in _symbols(symbols))
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    numeric = {1, 2, 3, 4, 8}  # right-align numbers
    lines = [
        "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in (header, *rows)
    ]
    return "\n".join(lines)
