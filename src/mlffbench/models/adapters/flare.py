"""FLARE (mir-flare 1.4.0) as a model family, in the ``flare`` environment (scripts/build_flare_env.sh).

Trained through FLARE's own Python API as a user would: ``flare.bffs.sgp.SGP_Wrapper`` (one B2 descriptor
calculator, one ``NormalizedDotProduct`` kernel), frames added with ``SGP_Wrapper.update_db`` in training order,
sparse environments chosen per frame by FLARE's own rule (``mode="uncertain"``: ``add_uncertain_environments``, the
N atoms of largest Nystroem variance given the sparse set so far), hyperparameters by FLARE's own
``optimize_hyperparameters`` (scipy L-BFGS-B on ``compute_likelihood_gradient_stable``). The saved potential holds
``SGP_Wrapper.as_dict()`` (training frames, sparse indices, hyperparameters; what ``SGP_Wrapper.from_dict``
rebuilds from) inside the one potential.json. Model as TM23 Methods IV.C.1; units and conventions as read from
the 1.4.0 sources (see mlffbench/models/flare_driver.py):

* ``sigma_e``: FLARE's energy noise acts on the TOTAL energy of a structure. TM23 gives sigma_E per atom
  (0.001 eV/atom). With ``energy_noise: per_atom`` (default) each structure gets FLARE's own relative noise
  factor ``rel_e_noise = N_atoms`` (``add_training_structure``), so the total-energy noise std is sigma_e x N and
  sigma_e stays in eV/atom, also under FLARE's optimisation (its gradient uses the same factors). With
  ``per_structure`` sigma_e is FLARE's plain value in eV per structure.
* stress: FLARE's stress is -(ASE stress) in the order (xx, xy, xz, yy, yz, zz), eV/Å^3; labels are converted
  on the way in and predictions on the way out (as ``SGP_Calculator`` does).
* ``energy_shift: composition`` hands per-species least-squares constants (eV/atom) to FLARE's
  ``single_atom_energies`` (subtracted from the labels, added back to predictions); ``none`` is FLARE's and
  TM23's raw total energies; ``auto`` (default) is ``none`` for one element in periodic cells with per-atom
  energies within ``AUTO_SHIFT_EV_PER_ATOM`` of zero (TM23's metals), else ``composition``: FLARE's GP has a zero
  prior mean, so raw totals of several elements or of all-electron molecular DFT (acetylacetone: -626 eV/atom)
  leave the kernel to carry the constant and the energies come out hundreds of eV off.
* molecules (pbc F): FLARE treats every cell as periodic, so non-periodic frames are put into a box with at least
  20 Å (and 2 x cutoff) of vacuum (``molecule_box``) for training and prediction; no stress is trained or
  predicted for them (zeros), and stress training is off when no training frame has a stress.
* ``kuu_jitter``: FLARE's absolute jitter on K_uu (default 1e-8, FLARE's).

Params: see DEFAULTS. ``sparse_method``: ``uncertain`` (FLARE's rule) | ``random`` (``sparse_per_frame`` atoms per
frame drawn with numpy from ``seed``: FLARE's ``add_random_environments`` uses C++ ``std::random_shuffle``, whose
state Python cannot seed) | ``all``; ``sparse_atoms`` (list per training frame of atom indices) overrides it and
is passed to ``add_specific_environments`` (used to give FLARE another model's sparse set). ``optimise: false``
keeps the given hyperparameters. B1: mir-flare 1.4.0 has no B1 descriptor, so ``descriptor: B1`` is refused when
the run is planned.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model, Potential

DEFAULTS: dict[str, Any] = {
    "descriptor": "B2", "cutoff": 5.0, "n_max": 8, "l_max": 3, "power": 2,
    "sigma": 2.0, "sigma_e": 0.001, "sigma_f": 0.05, "sigma_s": 0.005,  # TM23 IV.C.1 initial values
    "energy_noise": "per_atom", "optimise": True, "max_iterations": 200, "positive_bounds": False,
    "sparse_method": "uncertain", "sparse_per_frame": 1, "sparse_atoms": None,
    "train_on": ["energy", "forces", "stress"], "energy_shift": "auto", "kuu_jitter": 1e-8,
    "species": None, "seed": 0,
}
#: FLARE 1.4.0's real spherical harmonics are hard-coded up to l = 10 (beyond, it silently returns zeros)
L_MAX_LIMIT = 10
#: the descriptors the pinned FLARE (mir-flare 1.4.0, the ``flare`` env) has; B1 exists only on FLARE's master
SUPPORTED_DESCRIPTORS = ("B2",)
RADIAL_BASIS, CUTOFF_FUNCTION = "chebyshev", "quadratic"
HYPS = ("sigma", "sigma_e", "sigma_f", "sigma_s")


#: optimised per-atom sigma_e (eV/atom) above which the fit records a warning: FLARE's unbounded likelihood
#: optimisation can trade the energy labels away (27 Cu/Au alloy frames, 4 sparse atoms per frame: 11 eV/atom,
#: energies 10 eV/atom off, forces fine)
SIGMA_E_WARN = 1.0
#: |mean energy per atom| (eV) above which ``energy_shift: auto`` shifts even one periodic element: beyond every
#: cohesive energy (W: 8.9 eV/atom), i.e. totals that include atomic (core) energies
AUTO_SHIFT_EV_PER_ATOM = 20.0


def auto_energy_shift(frames) -> str:
    """``energy_shift: auto``: "none" (TM23, FLARE's raw totals) for one element in periodic cells with per-atom
    energies of cohesive size, else "composition"."""
    energies = [fr.label(f, "energy") for f in frames]
    per_atom = [e / len(f) for e, f in zip(energies, frames) if e is not None]
    one_metal_like = (len({z for f in frames for z in f.numbers}) == 1 and all(f.pbc.all() for f in frames)
                      and (not per_atom or abs(float(np.mean(per_atom))) <= AUTO_SHIFT_EV_PER_ATOM))
    return "none" if one_metal_like else "composition"


def composition_shift(frames, species: list[int]) -> dict[int, float]:
    """Per-species constants (eV/atom) by least squares of the total energies on the composition."""
    shift = fr.per_element_energy(frames, [chemical_symbols[z] for z in species])
    return {z: shift[chemical_symbols[z]] for z in species}


def molecule_box(atoms: Atoms, cutoff: float) -> Atoms:
    """FLARE treats every cell as periodic (neighbour images from the cell heights) and needs one: a non-periodic
    frame goes into a box with at least 20 Å (and 2 x cutoff) of vacuum, so no image is within the cutoff."""
    return common.boxed(atoms, max(common.VACUUM, 2 * float(cutoff)))


@contextlib.contextmanager
def _stressless_structures_readable():
    """FLARE 1.4.0's ``SGP_Wrapper.from_dict`` reads every stored training structure's stress with ase's
    ``get_stress``, which fails (AssertionError) for a structure stored without one (``as_dict`` writes null: a
    molecule, or a frame without a stress label). While it runs, such a structure's stress reads as None, which
    ``update_db`` skips, exactly as when the frame was first added."""
    from flare.atoms import FLARE_Atoms

    original = FLARE_Atoms.stress

    def stress(self):
        value = self.calc.results.get("stress") if self.calc is not None else None
        if value is None or np.ndim(value) == 0 or np.size(value) != 6:
            return None
        return original.fget(self)

    FLARE_Atoms.stress = property(stress, original.fset)
    try:
        yield
    finally:
        FLARE_Atoms.stress = original


class FlarePotential(Potential):
    """A FLARE SGP_Wrapper rebuilt (lazily) from its ``as_dict``; evaluates with ``SparseGP.predict_mean``."""

    family = "flare"

    def __init__(self, model: dict, info: dict | None = None, wrapper=None, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.info = dict(info or {})
        # (SGP_Wrapper, kernels): the C++ SparseGP keeps raw pointers to its kernels, so Python must hold them
        self._wrapper = wrapper

    @property
    def wrapper(self):
        if self._wrapper is None:
            from flare.bffs.sgp.sparse_gp import SGP_Wrapper

            with contextlib.redirect_stdout(None), _stressless_structures_readable():
                self._wrapper = SGP_Wrapper.from_dict(json.loads(json.dumps(self.model)))
        return self._wrapper[0]

    def evaluate(self, atoms: Atoms):
        from flare.bffs.sgp._C_flare import Structure

        from mlffbench.models.flare_driver import flare_to_ase_stress

        gp = self.wrapper
        atoms = molecule_box(atoms, gp.cutoff)
        codes = [gp.species_map[int(z)] for z in atoms.numbers]
        struc = Structure(np.array(atoms.cell, dtype=float), codes, np.array(atoms.positions, dtype=float),
                          gp.cutoff, gp.descriptor_calculators)
        gp.sparse_gp.predict_mean(struc)
        mean = np.array(struc.mean_efs, dtype=float)
        energy = float(mean[0])
        if gp.single_atom_energies is not None:  # as SGP_Calculator: the constants come back on top
            energy += sum(gp.single_atom_energies[c] for c in codes)
        stress = flare_to_ase_stress(mean[-6:]) if atoms.pbc.all() else np.zeros(6)
        return energy, mean[1:1 + 3 * len(atoms)].reshape(-1, 3).copy(), stress

    def state(self) -> dict:
        return {"model": self.model, "info": self.info}

    @classmethod
    def from_state(cls, state: dict) -> "FlarePotential":
        return cls(state["model"], state.get("info"))


class FlareModel(Model):
    """FLARE's B2 sparse GP through its own Python API; params: see DEFAULTS and the module docstring."""

    name = "flare"
    cutoff_params = {"cutoff": DEFAULTS["cutoff"]}
    species_param = "species"
    env = "flare"
    potential_class = FlarePotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        p = {**DEFAULTS, **params}
        if p["descriptor"] not in SUPPORTED_DESCRIPTORS:
            reason = (" (mir-flare 1.4.0, the version the 'flare' env builds, has no B1 descriptor; B1 exists only "
                      "on FLARE's master branch)" if p["descriptor"] == "B1" else "")
            raise ConfigError(f"flare: params.descriptor = {p['descriptor']!r} is not one of "
                              f"{list(SUPPORTED_DESCRIPTORS)}{reason}")
        common.check_positive(cls.name, params, ("cutoff", "sigma", "sigma_e", "sigma_f", "sigma_s", "kuu_jitter"))
        common.check_positive(cls.name, params, ("n_max", "sparse_per_frame", "max_iterations"), integer=True)
        if "l_max" in params and (isinstance(p["l_max"], bool) or not isinstance(p["l_max"], int)
                                  or not 0 <= p["l_max"] <= L_MAX_LIMIT):
            raise ConfigError(f"flare: params.l_max = {p['l_max']!r} must be an integer 0..{L_MAX_LIMIT} "
                              f"(FLARE's spherical harmonics stop at l = {L_MAX_LIMIT})")
        if p["power"] not in (1, 2) or isinstance(p["power"], bool):
            raise ConfigError(f"flare: params.power (zeta) = {p['power']!r} is not one of [1, 2]")
        common.check_choice(cls.name, params, "energy_noise", ("per_atom", "per_structure"))
        common.check_choice(cls.name, params, "sparse_method", ("uncertain", "random", "all"))
        common.check_choice(cls.name, params, "energy_shift", ("auto", "none", "composition"))
        for key in ("optimise", "positive_bounds"):
            if not isinstance(p[key], bool):
                raise ConfigError(f"flare: params.{key} must be true or false (got {p[key]!r})")
        train_on = p["train_on"]
        if (not isinstance(train_on, list) or not train_on
                or any(g not in ("energy", "forces", "stress") for g in train_on)):
            raise ConfigError(f"flare: params.train_on = {train_on!r} must be a non-empty subset of "
                              "[energy, forces, stress]")
        sparse = p["sparse_atoms"]
        if sparse is not None and (not isinstance(sparse, list) or any(
                not isinstance(s, list) or any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in s)
                for s in sparse)):
            raise ConfigError("flare: params.sparse_atoms must be a list (one per training frame) of lists of "
                              "atom indices >= 0")
        species = p["species"]
        if species is not None and (not isinstance(species, list) or not species
                                    or any(s not in chemical_symbols[1:] for s in species)):
            raise ConfigError(f"flare: params.species = {species!r} must be a list of element symbols")
        if not isinstance(p["seed"], int) or isinstance(p["seed"], bool):
            raise ConfigError(f"flare: params.seed must be an integer (got {p['seed']!r})")

    def fit(self, train, valid, params, workdir) -> FlarePotential:
        self.check_params(params)
        p = {**DEFAULTS, **params}
        import flare
        from flare.bffs.sgp import _C_flare
        from flare.bffs.sgp.sparse_gp import optimize_hyperparameters

        from mlffbench.models.flare_driver import ase_to_flare_stress  # FLARE's component order and sign

        if p["descriptor"] != "B2" or not hasattr(_C_flare, "B2"):
            raise common.AdapterError(f"flare: descriptor {p['descriptor']} not available in this FLARE")
        train = list(train) + list(valid or [])  # a GP has no early stopping: validation frames are training data
        if not train:
            raise common.AdapterError("flare: no training frames")
        workdir = Path(workdir) / "flare" if workdir is not None else None
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        present = sorted({int(z) for f in train for z in f.numbers})
        species = ([chemical_symbols.index(s) for s in p["species"]] if p["species"] else present)
        missing = sorted(set(present) - set(species))
        if missing:
            raise common.AdapterError(f"flare: training frames hold elements {[chemical_symbols[z] for z in missing]}"
                                      f" not in params.species {p['species']}")
        species_map = {z: i for i, z in enumerate(species)}
        sparse_atoms = p["sparse_atoms"]
        if sparse_atoms is not None:
            if len(sparse_atoms) != len(train):
                raise common.AdapterError(f"flare: params.sparse_atoms has {len(sparse_atoms)} entries for "
                                          f"{len(train)} training frames")
            for k, (atoms, idx) in enumerate(zip(train, sparse_atoms)):
                if idx and max(idx) >= len(atoms):
                    raise common.AdapterError(f"flare: params.sparse_atoms[{k}] has atom {max(idx)} but training "
                                              f"frame {k} has {len(atoms)} atoms")
        shift_mode = p["energy_shift"] if p["energy_shift"] != "auto" else auto_energy_shift(train)
        shift = composition_shift(train, species) if shift_mode == "composition" else None
        train = [molecule_box(atoms, p["cutoff"]) for atoms in train]
        # no stress kernel rows when no frame can give a stress (molecules, data without stress labels)
        stress_training = "stress" in p["train_on"] and any(
            atoms.pbc.all() and fr.has_label(atoms, "stress") for atoms in train)

        watch = common.Stopwatch()
        calc = _C_flare.B2(RADIAL_BASIS, CUTOFF_FUNCTION, [0.0, float(p["cutoff"])], [],
                           [len(species), int(p["n_max"]), int(p["l_max"])])
        kernel = _C_flare.NormalizedDotProduct(float(p["sigma"]), float(p["power"]))
        bounds = [(1e-8, None)] * 4 if p["positive_bounds"] else None  # FLARE's default: unbounded
        gp = _wrapper_class()([kernel], [calc], float(p["cutoff"]), float(p["sigma_e"]), float(p["sigma_f"]),
                         float(p["sigma_s"]), species_map,
                         single_atom_energies=None if shift is None else {species_map[z]: c for z, c in shift.items()},
                         energy_training="energy" in p["train_on"], force_training="forces" in p["train_on"],
                         stress_training=stress_training, max_iterations=int(p["max_iterations"]),
                         opt_method="L-BFGS-B", bounds=bounds)
        gp.sparse_gp.Kuu_jitter = float(p["kuu_jitter"])
        rng = np.random.default_rng(p["seed"])
        n_labels = {"energy": 0, "forces": 0, "stress": 0}
        no_stress = 0
        records = []  # what FLARE stored per frame, for as_dict (see _model_dict)
        for k, atoms in enumerate(train):
            energy = fr.label(atoms, "energy")
            forces = fr.label(atoms, "forces")
            stress = fr.label(atoms, "stress")
            if stress is not None and (not atoms.pbc.all() or not np.all(np.isfinite(stress))):
                stress, no_stress = None, no_stress + 1  # FLARE has no per-component mask: the frame loses it
            if sparse_atoms is not None:
                mode, custom = "specific", [int(a) for a in sparse_atoms[k]]
            elif p["sparse_method"] == "uncertain":
                mode, custom = "uncertain", [int(p["sparse_per_frame"])]
            elif p["sparse_method"] == "random":
                n = min(int(p["sparse_per_frame"]), len(atoms))
                mode, custom = "specific", sorted(int(a) for a in rng.choice(len(atoms), n, replace=False))
            else:
                mode, custom = "all", ()
            # FLARE's uncertain rule needs the posterior of the sparse set so far: QR after every frame
            # (SGP_Wrapper.update_db's default); the other modes solve once at the end
            gp.update_db(atoms, None if forces is None else np.asarray(forces, dtype=float), custom_range=custom,
                         energy=None if energy is None else float(energy),
                         stress=None if stress is None else ase_to_flare_stress(stress), mode=mode,
                         update_qr=mode == "uncertain",
                         rel_e_noise=float(len(atoms)) if p["energy_noise"] == "per_atom" else 1.0)
            codes = [species_map[int(z)] for z in atoms.numbers]
            stored_e = (np.array([float(energy) - (sum(gp.single_atom_energies[c] for c in codes)
                                                   if gp.single_atom_energies else 0.0)])
                        if energy is not None and gp.energy_training else np.zeros(0))
            records.append(SimpleNamespace(
                species=codes, cell=np.array(atoms.cell, dtype=float), positions=np.array(atoms.positions, dtype=float),
                noa=len(atoms), energy=stored_e,
                forces=np.zeros(3 * len(atoms)) if forces is None else np.asarray(forces, dtype=float).reshape(-1),
                stresses=ase_to_flare_stress(stress) if stress is not None and gp.stress_training else np.zeros(0)))
            if energy is not None and gp.energy_training:
                n_labels["energy"] += 1
            if forces is not None and gp.force_training:
                n_labels["forces"] += 3 * len(atoms)
            if stress is not None and gp.stress_training:
                n_labels["stress"] += 6
        gp.sparse_gp.update_matrices_QR()
        build_s = watch.seconds()
        initial = _hyp_dict(gp.sparse_gp.hyperparameters)
        optimisation: dict[str, Any] = {"performed": False}
        if p["optimise"]:
            opt_watch = common.Stopwatch()
            log = workdir / "optimise.log" if workdir is not None else None
            with open(log or "/dev/null", "w") as out, contextlib.redirect_stdout(out):  # FLARE prints every step
                result = optimize_hyperparameters(gp.sparse_gp, max_iterations=int(p["max_iterations"]),
                                                  method="L-BFGS-B", bounds=bounds)
            optimisation = {"performed": True, "method": "L-BFGS-B (flare optimize_hyperparameters, gtol 1e-4)",
                            "converged": bool(result.success), "message": str(result.message),
                            "iterations": int(result.nit), "evaluations": int(result.nfev),
                            "bounds": "positive" if bounds else "none (FLARE default)", "wall_s": opt_watch.seconds(),
                            "log": None if log is None else str(log)}
        # FLARE's non-precomputed likelihood gradient forms a dense n_labels x n_labels noise matrix (13 GB for
        # mlearn Si); the precomputed-KnK path (the one its optimiser uses) keeps everything m x m
        gp.sparse_gp.precompute_KnK()
        lml = float(gp.sparse_gp.compute_likelihood_gradient_stable(True))
        gradient = _hyp_dict(gp.sparse_gp.likelihood_gradient)
        train_s = watch.seconds()
        final = _hyp_dict(gp.sparse_gp.hyperparameters)
        sparse_indices = [[int(a) for a in s] for s in gp.sparse_gp.sparse_indices[0]]
        model = _model_dict(gp, records)
        deviations = [
            "sigma_e in eV/atom via FLARE's per-structure rel_e_noise = N_atoms (TM23's per-atom unit)"
            if p["energy_noise"] == "per_atom" else "sigma_e per structure (FLARE's unit), not TM23's per atom",
            "frames added in one pass in training order (FLARE's uncertain rule per frame, QR after each), "
            "hyperparameters optimised once at the end instead of FLARE's on-the-fly loop",
            "FLARE 1.4.0 finds neighbours with image shells from 2-D cell heights: strongly skewed cells with a "
            "spacing below the cutoff can miss neighbours",
        ]
        if no_stress:
            deviations.append(f"{no_stress} training frame(s) without a complete finite stress label trained "
                              "without stress (FLARE cannot mask single components)")
        sigma_e_per_atom = final["sigma_e"] if p["energy_noise"] == "per_atom" else None
        if gp.energy_training and sigma_e_per_atom is not None and abs(sigma_e_per_atom) > SIGMA_E_WARN:
            deviations.append(f"warning: the optimised sigma_e is {abs(sigma_e_per_atom):.3g} eV/atom: the energy "
                              "labels barely constrain the fit, so energies can be off by eV/atom (forces are not "
                              "affected); more frames or optimise: false keep them")
        if p["sparse_method"] == "random" and sparse_atoms is None:
            deviations.append("random sparse environments drawn with numpy (seeded), not FLARE's unseeded "
                              "add_random_environments")
        info = {
            "package": "mir-flare", "version": getattr(flare, "__version__", common.package_version("mir-flare")),
            "device": "cpu", "descriptor": "B2", "descriptor_dim": b2_dim(len(species), p["n_max"], p["l_max"]),
            "power": int(p["power"]), "species": [chemical_symbols[z] for z in species],
            "n_sparse": int(gp.sparse_gp.n_sparse), "n_parameters": int(gp.sparse_gp.n_sparse),
            "sparse_method": "given" if sparse_atoms is not None else p["sparse_method"],
            "sparse_atoms": sparse_indices, "labels": n_labels, "n_train": len(train),
            "energy_noise": p["energy_noise"],
            "sigma_e_unit": "eV/atom (total-energy noise = sigma_e x N_atoms)" if p["energy_noise"] == "per_atom"
            else "eV per structure (total energy)",
            "energy_shift": shift_mode + (" (auto)" if p["energy_shift"] == "auto" else ""),
            "energy_shift_eV_per_atom": None if shift is None else {chemical_symbols[z]: c for z, c in shift.items()},
            "kuu_jitter": float(gp.sparse_gp.Kuu_jitter),
            "initial_hyperparameters": initial, "hyperparameters": final, "optimisation": optimisation,
            "log_marginal_likelihood": lml, "likelihood_gradient": gradient,
            "build_s": build_s, "train_s": train_s, "train_s_per_epoch": None, "deviations": deviations,
        }
        return FlarePotential(model, info, wrapper=(gp, [kernel]))


def b2_dim(n_species: int, n_max: int, l_max: int) -> int:
    k = n_species * n_max
    return k * (k + 1) // 2 * (l_max + 1)


#: id(wrapper) -> per-frame records that stand in for the C++ training structures while as_dict runs
_RECORDS: dict[int, list] = {}


def _model_dict(gp, records: list) -> dict:
    """``SGP_Wrapper.as_dict()`` (FLARE's own serialisation, read back by ``SGP_Wrapper.from_dict``), JSON-able.

    FLARE's ``training_data`` property returns a fresh copy of every C++ training Structure, descriptor
    gradients included, and as_dict reads it once per frame: O(frames^2) time and several GB of peak memory on
    mlearn-size sets. While as_dict runs, the wrapper's ``training_data`` returns ``records`` instead: per frame
    exactly the fields as_dict reads (species codes, cell, positions, noa, the stored energy / forces / stresses
    in FLARE's convention), taken from the labels that were given to update_db."""
    _RECORDS[id(gp)] = records
    try:
        return json.loads(json.dumps(gp.as_dict(), cls=_Encoder))
    finally:
        del _RECORDS[id(gp)]


def _wrapper_class():
    from flare.bffs.sgp.sparse_gp import SGP_Wrapper

    class Wrapper(SGP_Wrapper):
        @property
        def training_data(self):
            records = _RECORDS.get(id(self))
            return records if records is not None else self.sparse_gp.training_structures

    return Wrapper


def _hyp_dict(values) -> dict[str, float]:
    return {k: float(v) for k, v in zip(HYPS, np.asarray(values, dtype=float))}


class _Encoder(json.JSONEncoder):
    """numpy scalars/arrays -> JSON (flare.utils.NumpyEncoder misses some numpy-2 scalar types)."""

    def default(self, o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        return super().default(o)
