"""ASE's EMT as a pure-Python fallback labeler (Ni Cu Pd Ag Pt Au Al; no compiled engine needed)."""

from __future__ import annotations

from typing import Sequence

import ase
from ase.calculators.emt import EMT, parameters

from mlffbench.data.labelers.base import Labeler


class EMTLabeler(Labeler):
    name = "emt"

    def supports(self, symbols: Sequence[str]) -> bool:
        return set(symbols) <= set(parameters)

    def calculator(self, symbols: Sequence[str]):
        return EMT()

    def provenance(self, symbols: Sequence[str]) -> str:
        return f"emt:ase-{ase.__version__}"
