"""Element facts: identity against ase.data, melting points against the TM23/Metal-43 tables, lookups."""

import dataclasses

import pytest
from ase.data import atomic_numbers, chemical_symbols

from mlffbench import elements
from mlffbench.elements import ELEMENTS, METAL43, TM23, Element, format_table, get, table_rows
from mlffbench.errors import DataError

_NOBLE_Z = (0, 2, 10, 18, 36, 54, 86)


def _period_group(z: int) -> tuple[int, int]:
    """IUPAC period and group from Z (valid for Z <= 86 outside the lanthanides)."""
    period = next(p for p in range(1, 7) if z <= _NOBLE_Z[p])
    pos = z - _NOBLE_Z[period - 1]  # 1-based position in the period
    if period == 1:
        return period, 1 if pos == 1 else 18
    if period <= 3:
        return period, pos if pos <= 2 else pos + 10
    if period <= 5:
        return period, pos
    assert not 57 <= z <= 71, "lanthanides have no IUPAC group number here"
    return period, pos if pos <= 2 else pos - 14


def test_counts_and_membership():
    assert len(TM23) == 27 and len(set(TM23)) == 27
    assert len(METAL43) == 43 and len(set(METAL43)) == 43
    assert set(TM23) <= set(METAL43)
    assert list(ELEMENTS) == list(METAL43)
    assert TM23[0] == "Ag" and TM23[-1] == "Zr"  # TM23 Table S2 order
    assert METAL43[:3] == ("Li", "Be", "Na") and METAL43[-1] == "Tl"  # Metal-43 table order
    for s, e in ELEMENTS.items():
        assert e.symbol == s
        assert e.in_metal43
        assert e.in_tm23 == (s in TM23)


@pytest.mark.parametrize("symbol", METAL43)
def test_identity_matches_ase(symbol):
    e = get(symbol)
    assert atomic_numbers[symbol] == e.z
    assert chemical_symbols[e.z] == symbol
    assert (e.period, e.group) == _period_group(e.z)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get("Cu").t_melt = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "symbol, t_melt, source",
    [
        ("Cu", 1358, "TM23 Table S2"),
        ("W", 3695, "TM23 Table S2"),
        ("Hg", 234, "TM23 Table S2"),
        ("Ti", 1941, "TM23 Table S2"),
        ("Li", 454, "Metal-43 SI Table 1"),
        ("Tl", 577, "Metal-43 SI Table 1"),
    ],
)
def test_melting_points(symbol, t_melt, source):
    e = get(symbol)
    assert e.t_melt == t_melt
    assert isinstance(e.t_melt, float)
    assert e.t_melt_source == source


@pytest.mark.parametrize("symbol, printed_12tc", [("K", 403), ("Ga", 364), ("Rb", 374), ("Cs", 362)])
def test_melting_points_derived_from_1_2_tc(symbol, printed_12tc):
    e = get(symbol)
    assert e.t_melt == printed_12tc / 1.2  # exact quotient is stored
    assert "1.2T_c column / 1.2" in e.t_melt_source
    assert "/1.2" in e.notes


def test_cs_melting_point_rounds_to_301_7():
    assert round(get("Cs").t_melt, 1) == 301.7


@pytest.mark.parametrize(
    "symbol, n_d", [("Cr", 5), ("Cu", 10), ("Pd", 10), ("Pt", 9), ("Nb", 4), ("Ti", 2), ("Fe", 6),
                    ("Ru", 7), ("Rh", 8), ("Mo", 5), ("W", 4), ("Au", 10), ("Ag", 10), ("Ga", 10),
                    ("Hg", 10), ("Na", 0), ("Cs", 0)]
)
def test_n_d(symbol, n_d):
    e = get(symbol)
    assert e.n_d == n_d
    assert e.n_d_source == "NIST ground-state configuration"


def test_n_d_consistent_with_configuration():
    for e in ELEMENTS.values():
        d_terms = [t for t in e.configuration.split() if "d" in t and not t.startswith("[")]
        assert e.n_d == (int(d_terms[0][2:]) if d_terms else 0), e.symbol


def test_structures_and_space_groups():
    expected = {
        "Cu": ("fcc", "Fm-3m", "mp-30"),
        "W": ("bcc", "Im-3m", "mp-91"),  # Metal-43 prints "MP-91"
        "Zn": ("hcp", "P6_3/mmc", "mp-79"),
        "Ti": ("omega", "P6/mmm", "mp-72"),
        "Hg": ("simple_hexagonal", "P6/mmm", "mp-10861"),
        "Mn": ("alpha_Mn", "I-43m", "mp-35"),
        "Ga": ("Cmce", "Cmce", "mp-142"),
        "Li": ("fcc", "Fm-3m", "mp-51"),
        "Rb": ("bcc", "Im-3m", None),
    }
    for s, (lattice, sg, mp) in expected.items():
        e = get(s)
        assert (e.lattice, e.space_group, e.mp_id) == (lattice, sg, mp), s
    assert get("Ti").space_group_source == "TM23 Table S2"
    assert get("Ga").space_group_source == "Metal-43 SI Table 1"


def test_pseudopotentials():
    cr = get("Cr")
    assert (cr.tm23_pseudopotential, cr.tm23_pseudopotential_valency, cr.tm23_min_kpoint_density) == (
        "Cr_pv", 12, 0.18)
    assert get("Zn").tm23_min_kpoint_density == 0.10
    assert get("Ir").metal43_potcar == "It"  # as printed
    li = get("Li")
    assert li.tm23_pseudopotential is None and li.tm23_min_kpoint_density is None
    assert li.metal43_potcar == "Li_sv"
    for s in TM23:
        assert get(s).tm23_pseudopotential is not None


def test_disagreements_are_noted():
    tm23 = {row[0]: row for row in elements._TM23_S2}
    for symbol, mp, sg, half, tc, tc12, potcar in elements._METAL43_T1:
        e = get(symbol)
        odd = (tc is not None and tc12 is not None and abs(1.2 * tc - tc12) > 1) or (
            tc is not None and half is not None and abs(tc / 2 - half) > 0.5) or mp is None
        if symbol in tm23:
            _, mp23, sg23, t23 = tm23[symbol]
            odd = odd or (mp, sg, tc) != (mp23, sg23, t23) or potcar != elements._TM23_S1[symbol][0]
        if odd:
            assert e.notes, symbol
    assert "3218" in get("Ru").notes
    assert "Fm-3m" in get("Li").notes
    assert "p6_3/mmm" in get("Ti").notes


def test_get_unknown_symbol():
    with pytest.raises(DataError, match="'Xx'"):
        get("Xx")
    with pytest.raises(DataError, match="unknown element"):
        get("Si")  # a real element without facts here
    assert get("cu") is get("Cu")


def test_table_rows_and_format_table():
    rows = table_rows()
    assert [r["symbol"] for r in rows] == list(METAL43)
    assert set(rows[0]) == {f.name for f in dataclasses.fields(Element)}
    assert table_rows("Cu")[0]["t_melt"] == 1358.0
    assert [r["symbol"] for r in table_rows(["W", "Cu"])] == ["W", "Cu"]
    with pytest.raises(DataError):
        table_rows(["Cu", "Xx"])

    text = format_table()
    lines = text.splitlines()
    assert len(lines) == 1 + 43
    assert lines[0].split()[:2] == ["symbol", "Z"]
    cs = next(line for line in lines if line.startswith("Cs "))
    assert "301.7" in cs and "Metal-43" in cs
    assert "Hg" in format_table(["Hg"]) and "Cu" not in format_table(["Hg"])
