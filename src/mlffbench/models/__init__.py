"""MLFF models behind one contract (``mlffbench.models.base``) and a registry of them by name."""
