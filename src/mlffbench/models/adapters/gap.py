"""GAP (quippy-ase 0.10.3: the ``gap_fit`` program and the quippy ASE calculator), in the ``gap`` environment.

Model as in the TEA Challenge 2023 SI, section 1.5: a two-body (2B) Gaussian kernel on interatomic distances plus
a many-body SOAP kernel (dot product, ζ = 4); 2B sparse points sampled uniformly, SOAP sparse points by CUR;
defaults M_2B = 20, M_MB = 2000, n_max = 8, l_max = 4 (TEA Tables SI 1 and SI 3). Regularisation σ_E, σ_F, σ_V
are gap_fit's ``default_sigma`` in eV, eV/Å and eV (per virial component). Deviation: TEA's σ values are in
kcal/mol for molecules and were re-optimised per training-set size; ours are a metal-scale default (params), and
TEA's second (large-cutoff) many-body kernel is not used. Several species: one 2B kernel per species pair that
occurs within the cutoff in the training frames (M_2B points each), one SOAP kernel per centre species (gap_fit's
``add_species``; M_MB points each, or all of that species' environments when fewer). E0 (gap_fit's ``e0``) is a
per-element constant by least squares of the training energies on the composition (no isolated-atom data);
gap_fit's own ``e0_method=average`` would give every species the same per-atom mean. Molecules (pbc F) are written
and evaluated in a box with 20 Å of vacuum; they have no virial, their predicted stress is zero.
A GAP fit is one linear solve: there are no epochs (``train_s_per_epoch`` is None; ``train_s`` is the fit).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from mlffbench import frames as fr
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

DEFAULTS = {
    "cutoff": 5.0, "cutoff_transition_width": 1.0, "n_sparse_2b": 20, "n_sparse_soap": 2000, "n_max": 8, "l_max": 4,
    "atom_sigma": 0.5, "zeta": 4, "delta_2b": 1.0, "delta_soap": 0.1, "theta_2b": 1.0,
    "sigma_energy": 0.002, "sigma_force": 0.05, "sigma_virial": 0.05, "sparse_jitter": 1e-8, "seed": 0,
}


class GapPotential(common.CalculatorPotential):
    family = "gap"
    box_molecules = True  # as trained (see _write_gap_xyz)

    def make_calculator(self):
        from quippy.potential import Potential as QuipPotential

        return QuipPotential(param_filename=self.model_file)


class GapModel(Model):
    """GAP 2B + SOAP through gap_fit; params: see DEFAULTS."""

    name = "gap"
    cutoff_params = {"cutoff": DEFAULTS["cutoff"]}
    env = "gap"
    potential_class = GapPotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_positive(cls.name, params, ("cutoff", "cutoff_transition_width", "atom_sigma", "delta_2b",
                                                 "delta_soap", "theta_2b", "sigma_energy", "sigma_force",
                                                 "sigma_virial", "sparse_jitter"))
        common.check_positive(cls.name, params, ("n_sparse_2b", "n_sparse_soap", "n_max", "l_max", "zeta"),
                              integer=True)

    def fit(self, train, valid, params, workdir) -> GapPotential:
        self.check_params(params)
        p = {**DEFAULTS, **params}
        workdir = Path(workdir) / "gap"
        workdir.mkdir(parents=True, exist_ok=True)
        train = list(train) + list(valid or [])  # a GP has no early stopping: validation frames are training data
        n_atoms = sum(len(f) for f in train)
        n_soap = min(p["n_sparse_soap"], n_atoms)
        _write_gap_xyz(train, workdir / "train.xyz")
        # per-element E0 by least squares on the composition; gap_fit's e0_method=average is ONE per-atom mean for
        # every species, which leaves the composition dependence of alloys / mixed molecules to the kernels
        e0 = common.energy_reference(train)
        e0_text = ":".join(f"{el}:{value!r}" for el, value in e0.items())
        # one 2-body kernel per species pair that occurs within the cutoff: gap_fit's add_species=T makes one for
        # every pair and aborts on a pair with no distance (ethanol's O-O: "select_uniform: Descriptor is too large")
        pairs = species_pairs(train, p["cutoff"])
        two_body = [f"distance_2b Z1={z1} Z2={z2} cutoff={p['cutoff']} covariance_type=ard_se "
                    f"delta={p['delta_2b']} theta_uniform={p['theta_2b']} sparse_method=uniform add_species=F "
                    f"n_sparse={p['n_sparse_2b']} : " for z1, z2 in pairs]
        descriptors = (
            "".join(two_body) +
            f"soap l_max={p['l_max']} n_max={p['n_max']} atom_sigma={p['atom_sigma']} cutoff={p['cutoff']} "
            f"cutoff_transition_width={p['cutoff_transition_width']} delta={p['delta_soap']} "
            f"covariance_type=dot_product zeta={p['zeta']} n_sparse={n_soap} sparse_method=cur_points add_species=T")
        gap_fit = Path(sys.executable).parent / "gap_fit"
        args = [str(gap_fit), f"at_file={workdir / 'train.xyz'}", "gap={" + descriptors + "}",
                f"default_sigma={{{p['sigma_energy']} {p['sigma_force']} {p['sigma_virial']} 0.0}}",
                "energy_parameter_name=REF_energy", "force_parameter_name=REF_forces",
                "virial_parameter_name=REF_virial", f"e0={{{e0_text}}}", f"sparse_jitter={p['sparse_jitter']}",
                f"rnd_seed={p['seed'] + 1}",  # gap_fit's generator rejects seed 0
                f"gp_file={workdir / 'gap.xml'}"]
        returncode, train_s = common.run_logged(args, workdir / "gap_fit.log", workdir)
        model_file = workdir / "gap.xml"
        if returncode or not model_file.is_file():
            raise common.program_failed("gap_fit", returncode, workdir / "gap_fit.log", markers=("ABORT", "ERROR"))
        n_sparse = [int(n) for n in re.findall(r'n_sparseX="(\d+)"', model_file.read_text())]
        info = {
            "package": "quippy-ase", "version": common.package_version("quippy-ase"), "device": "cpu",
            "n_parameters": int(sum(n_sparse)) or None, "n_sparse": n_sparse, "train_s": train_s,
            "train_s_per_epoch": None, "n_train": len(train), "e0_eV_per_atom": e0,
            "deviations": ["TEA sigma values (kcal/mol, re-optimised per size) replaced by metal-scale defaults",
                           "one SOAP kernel (TEA combined two)",
                           "E0 = per-element least squares on the training compositions (no isolated-atom data)"],
        }
        return GapPotential(str(model_file), info)


def species_pairs(frames, cutoff: float) -> list[tuple[int, int]]:
    """(Z1, Z2), Z1 <= Z2, of every species pair with at least one distance below ``cutoff`` in ``frames``
    (periodic images included; molecules as ``common.boxed`` writes them), sorted."""
    from ase.neighborlist import neighbor_list

    pairs: set[tuple[int, int]] = set()
    for frame in frames:
        frame = common.boxed(frame)
        i, j = neighbor_list("ij", frame, cutoff)
        zi, zj = frame.numbers[i], frame.numbers[j]
        pairs.update(zip(np.minimum(zi, zj).tolist(), np.maximum(zi, zj).tolist()))
    return sorted(pairs)


def _write_gap_xyz(frames, path: Path) -> None:
    """extxyz with REF_energy, REF_forces and REF_virial (= -V * stress, 3x3, gap_fit's convention)."""
    out = []
    for frame in frames:
        frame = common.boxed(frame)  # a molecule: gap_fit wants a lattice (pbc F keeps it out of the neighbours)
        atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=frame.pbc)
        atoms.info["REF_energy"] = float(fr.label(frame, "energy"))
        atoms.arrays["REF_forces"] = np.asarray(fr.label(frame, "forces"), dtype=float)
        stress = fr.label(frame, "stress")
        if stress is not None and frame.pbc.all():
            from ase.stress import voigt_6_to_full_3x3_stress

            atoms.info["REF_virial"] = (-frame.get_volume() * voigt_6_to_full_3x3_stress(stress)).reshape(9)
        out.append(atoms)
    ase.io.write(path, out, format="extxyz")
