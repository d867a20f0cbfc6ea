"""TM23's best FLARE ACE parameters per metal (SI Tables S14-S17): (r_cut in Å, n_max, l_max), chosen by the paper's
grid search (maximum likelihood and minimum force MAE; minimum force MAE on disagreement). Keys: (descriptor, power).
Note the paper's B1 grid was n_max 1-29 in steps of 2, yet Table S14/S15 list even n_max (Au 16): copied as printed.
"""

from __future__ import annotations

from mlffbench.errors import ConfigError

TM23_BEST = {
    ('B1', 1): {
        'Ag': (9.0, 23, 0), 'Au': (9.0, 16, 0), 'Cd': (9.0, 21, 0), 'Co': (7.0, 27, 0), 'Cr': (6.0, 29, 0),
        'Cu': (7.0, 15, 0), 'Fe': (8.0, 15, 0), 'Hf': (9.0, 29, 0), 'Hg': (9.0, 21, 0), 'Ir': (9.0, 27, 0),
        'Mn': (6.0, 27, 0), 'Mo': (8.0, 29, 0), 'Nb': (8.0, 25, 0), 'Ni': (9.0, 19, 0), 'Os': (9.0, 21, 0),
        'Pd': (9.0, 19, 0), 'Pt': (9.0, 21, 0), 'Re': (8.0, 27, 0), 'Rh': (9.0, 19, 0), 'Ru': (9.0, 29, 0),
        'Ta': (9.0, 25, 0), 'Tc': (8.0, 25, 0), 'Ti': (8.0, 29, 0), 'V': (8.0, 29, 0), 'W': (8.0, 29, 0),
        'Zn': (9.0, 15, 0), 'Zr': (9.0, 25, 0),
    },
    ('B1', 2): {
        'Ag': (9.0, 25, 0), 'Au': (9.0, 16, 0), 'Cd': (9.0, 19, 0), 'Co': (9.0, 29, 0), 'Cr': (7.0, 29, 0),
        'Cu': (8.0, 21, 0), 'Fe': (7.0, 29, 0), 'Hf': (8.0, 13, 0), 'Hg': (9.0, 23, 0), 'Ir': (9.0, 27, 0),
        'Mn': (8.0, 27, 0), 'Mo': (8.0, 25, 0), 'Nb': (9.0, 25, 0), 'Ni': (9.0, 19, 0), 'Os': (9.0, 19, 0),
        'Pd': (9.0, 25, 0), 'Pt': (9.0, 25, 0), 'Re': (9.0, 25, 0), 'Rh': (9.0, 27, 0), 'Ru': (9.0, 27, 0),
        'Ta': (9.0, 29, 0), 'Tc': (8.0, 23, 0), 'Ti': (8.0, 29, 0), 'V': (7.0, 21, 0), 'W': (7.0, 19, 0),
        'Zn': (9.0, 21, 0), 'Zr': (8.0, 17, 0),
    },
    ('B2', 1): {
        'Ag': (7.0, 13, 4), 'Au': (9.0, 13, 5), 'Cd': (9.0, 15, 5), 'Co': (5.0, 15, 4), 'Cr': (6.0, 19, 5),
        'Cu': (6.0, 13, 4), 'Fe': (6.0, 19, 4), 'Hf': (8.0, 17, 4), 'Hg': (9.0, 15, 5), 'Ir': (7.0, 19, 5),
        'Mn': (6.0, 9, 5), 'Mo': (6.0, 17, 4), 'Nb': (7.0, 19, 5), 'Ni': (8.0, 19, 5), 'Os': (7.0, 19, 4),
        'Pd': (9.0, 15, 4), 'Pt': (8.0, 19, 5), 'Re': (7.0, 19, 4), 'Rh': (7.0, 15, 5), 'Ru': (6.0, 15, 3),
        'Ta': (8.0, 19, 5), 'Tc': (7.0, 19, 4), 'Ti': (6.0, 19, 5), 'V': (6.0, 19, 5), 'W': (6.0, 17, 4),
        'Zn': (9.0, 15, 5), 'Zr': (8.0, 17, 4),
    },
    ('B2', 2): {
        'Ag': (6.0, 9, 3), 'Au': (6.0, 10, 3), 'Cd': (7.0, 13, 3), 'Co': (5.0, 11, 4), 'Cr': (4.0, 9, 5),
        'Cu': (5.0, 7, 4), 'Fe': (4.0, 11, 6), 'Hf': (6.0, 9, 4), 'Hg': (8.0, 9, 4), 'Ir': (6.0, 17, 4),
        'Mn': (4.0, 11, 6), 'Mo': (5.0, 11, 4), 'Nb': (5.0, 9, 4), 'Ni': (5.0, 11, 4), 'Os': (5.0, 9, 4),
        'Pd': (5.0, 9, 4), 'Pt': (5.0, 9, 4), 'Re': (5.0, 9, 4), 'Rh': (5.0, 11, 4), 'Ru': (5.0, 9, 4),
        'Ta': (5.0, 9, 4), 'Tc': (5.0, 9, 4), 'Ti': (5.0, 9, 5), 'V': (5.0, 9, 5), 'W': (5.0, 11, 4),
        'Zn': (6.0, 13, 3), 'Zr': (6.0, 9, 4),
    },
}


def tm23_best(descriptor: str, power: int, element: str) -> dict:
    """{'cutoff', 'n_max', 'l_max'} of TM23 Tables S14-S17 for one metal."""
    try:
        cutoff, n_max, l_max = TM23_BEST[(descriptor, power)][element]
    except KeyError:
        raise ConfigError(
            f"acegp preset 'tm23' has no entry for {descriptor} power {power} and element {element!r} "
            "(TM23 Tables S14-S17 cover the 27 TM23 metals, B1/B2, power 1/2)"
        ) from None
    return {"cutoff": cutoff, "n_max": n_max, "l_max": l_max}
