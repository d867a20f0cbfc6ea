"""Native FLARE-class model: ACE B1/B2 descriptors (numba) + sparse GP on energies, forces and stresses."""

from mlffbench.models.acegp.descriptors import AceDescriptor
from mlffbench.models.acegp.model import DEFAULTS, AceGPModel, AceGPPotential

__all__ = ["AceDescriptor", "AceGPModel", "AceGPPotential", "DEFAULTS"]
