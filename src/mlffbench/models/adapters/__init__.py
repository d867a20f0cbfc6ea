"""Adapters for external MLFF packages (MACE, NequIP/Allegro, GAP, DeePMD, zero-shot CHGNet/SevenNet/any ASE
calculator). Each module imports its package lazily and names its environment (``Model.env``, see mlffbench.envs)."""
