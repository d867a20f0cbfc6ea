"""TorchANI 2.9.0 (ANI / Behler-Parrinello, as in MS25), in the ``torchani`` environment.

A periodic ANI-style model built from TorchANI's ``AEVComputer`` (ANI radial + angular AEVs with cell and pbc;
defaults of ``AEVComputer.like_2x`` scaled by the params) and one atomic network per element (CELU MLPs, as
ANI), energy = Σ_atoms network(AEV) + per-element self energy (least squares on the training compositions, as
TorchANI's SAE). Trained with Adam on per-atom energy MSE + ``force_weight`` x force MSE (forces = -dE/dx by
autograd); the epoch with the lowest validation loss is kept. Stress = (1/V) dE/dε by autograd through a strain
applied to positions and cell (ASE sign). Deviations from MS25: stress is not trained, no ensemble, float64 by
default, the pretrained ANI models are not used (their download fails offline, and they cover no metals).
Molecules (pbc F): AEVs without cell (all pairs), zero stress predicted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model, Potential

DEFAULTS = {"radial_cutoff": 5.1, "angular_cutoff": 3.5, "radial_num_shifts": 16, "angular_num_shifts": 4,
            "angular_num_sections": 8, "hidden": [64, 32], "epochs": 50, "lr": 1e-3, "force_weight": 10.0,
            "batch_size": 4, "valid_fraction": 0.1, "dtype": "float64", "seed": 0}


def build_aev(config: dict, neighborlist: str = "all_pairs"):
    """TorchANI's AEVComputer for a saved config; the AEV has no trained parameters, so any neighbour list gives
    the same AEVs (cell_list: linear in N, but TorchANI refuses cells thinner than the cutoff)."""
    import torch
    from torchani.aev import AEVComputer

    aev = AEVComputer.like_2x(num_species=len(config["elements"]), radial_cutoff=config["radial_cutoff"],
                              angular_cutoff=config["angular_cutoff"],
                              radial_num_shifts=config["radial_num_shifts"],
                              angular_num_shifts=config["angular_num_shifts"],
                              angular_num_sections=config["angular_num_sections"], neighborlist=neighborlist)
    return aev.to(getattr(torch, config["dtype"]))


def build_network(config: dict):
    """(AEVComputer, ModuleDict element -> MLP) from a saved config."""
    import torch

    aev = build_aev(config)
    nets = torch.nn.ModuleDict()
    for el in config["elements"]:
        layers, width = [], aev.out_dim
        for h in config["hidden"]:
            layers += [torch.nn.Linear(width, h), torch.nn.CELU(0.1)]
            width = h
        nets[el] = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    return aev, nets.to(getattr(torch, config["dtype"]))


class AniModule:
    """Energy, forces and stress of one structure from the AEV computer and the per-element networks."""

    def __init__(self, config: dict, aev, nets):
        import torch

        self.config, self.aev, self.nets = config, aev, nets
        self.aev_cells = build_aev(config, "cell_list")  # periodic cells that fit it: all-pairs is O(N^2)
        self.dtype = getattr(torch, config["dtype"])
        self.index = {el: i for i, el in enumerate(config["elements"])}

    def energy(self, symbols, positions, cell, pbc, strain=None):
        import torch

        missing = sorted(set(symbols) - set(self.index))
        if missing:
            raise common.AdapterError(f"torchani: elements {missing} not in the training data")
        if strain is not None:  # x' = x (1 + ε), cell' = cell (1 + ε): dE/dε at ε = 0 is V * stress
            deform = torch.eye(3, dtype=self.dtype) + strain
            positions, cell = positions @ deform, (cell @ deform if cell is not None else None)
        idx = torch.tensor([[self.index[s] for s in symbols]])
        aevs = self._aevs(idx, positions[None], cell, pbc)[0]
        energy = torch.zeros((), dtype=self.dtype)
        for el, i in self.index.items():
            mask = idx[0] == i
            if mask.any():
                energy = energy + self.nets[el](aevs[mask]).sum() + mask.sum() * self.config["self_energy"][el]
        return energy

    def _aevs(self, idx, positions, cell, pbc):
        if pbc is not None:
            try:
                return self.aev_cells(idx, positions, cell=cell, pbc=pbc)
            except RuntimeError as exc:  # "Cell is too small to perform pbc calculations"
                if "too small" not in str(exc):
                    raise
        return self.aev(idx, positions, cell=cell, pbc=pbc)

    def evaluate(self, atoms, create_graph=False):
        import torch

        periodic = bool(atoms.pbc.all())
        if periodic:  # TorchANI maps atoms into the cell with a detached cell: wrapped first, the strain sees them
            atoms = atoms.copy()
            atoms.wrap()
        pos = torch.tensor(atoms.positions, dtype=self.dtype, requires_grad=True)
        if atoms.pbc.any() and not periodic:
            raise common.AdapterError("torchani: mixed periodicity is not supported (pbc must be all or none)")
        cell = torch.tensor(atoms.cell[:], dtype=self.dtype) if periodic else None
        pbc = torch.tensor([True, True, True]) if periodic else None
        strain = torch.zeros((3, 3), dtype=self.dtype, requires_grad=True) if periodic else None
        energy = self.energy(atoms.get_chemical_symbols(), pos, cell, pbc, strain)
        inputs = [pos] + ([strain] if periodic else [])
        grads = torch.autograd.grad(energy, inputs, create_graph=create_graph)
        forces = -grads[0]
        stress = (grads[1] + grads[1].T) / 2 / atoms.get_volume() if periodic else None
        return energy, forces, stress


class TorchaniPotential(Potential):
    family = "torchani"

    def __init__(self, model_file: str, info: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.model_file = str(model_file)
        self.info = dict(info or {})
        self._module = None

    def _load(self) -> AniModule:
        if self._module is None:
            import torch

            blob = torch.load(self.model_file, weights_only=False)
            aev, nets = build_network(blob["config"])
            nets.load_state_dict(blob["nets"])
            self._module = AniModule(blob["config"], aev, nets)
        return self._module

    def evaluate(self, atoms):
        from ase.stress import full_3x3_to_voigt_6_stress

        energy, forces, stress = self._load().evaluate(atoms)
        s = full_3x3_to_voigt_6_stress(stress.detach().numpy()) if stress is not None else np.zeros(6)
        return float(energy.detach()), forces.detach().numpy().astype(float), np.asarray(s, dtype=float)

    def state(self) -> dict:
        return {"model_file": self.model_file, "info": self.info}

    @classmethod
    def from_state(cls, state):
        return cls(state["model_file"], state.get("info"))


class TorchaniModel(Model):
    """Periodic ANI model; params: see DEFAULTS (``hidden``: widths of the atomic networks' hidden layers)."""

    name = "torchani"
    cutoff_params = {"radial_cutoff": DEFAULTS["radial_cutoff"], "angular_cutoff": DEFAULTS["angular_cutoff"]}
    env = "torchani"
    potential_class = TorchaniPotential
    param_keys = tuple(DEFAULTS)

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        common.check_positive(cls.name, params, ("radial_cutoff", "angular_cutoff", "lr", "valid_fraction"))
        common.check_nonnegative(cls.name, params, ("force_weight",))
        common.check_positive(cls.name, params, ("radial_num_shifts", "angular_num_shifts", "angular_num_sections",
                                                 "epochs", "batch_size"), integer=True)
        hidden = params.get("hidden", DEFAULTS["hidden"])
        if not isinstance(hidden, list) or not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0
                                                             for h in hidden):
            raise ConfigError(f"{cls.name}: params.hidden must be a non-empty list of positive integers")
        common.check_choice(cls.name, params, "dtype", ("float32", "float64"))
        rc = params.get("radial_cutoff", DEFAULTS["radial_cutoff"])
        if params.get("angular_cutoff", DEFAULTS["angular_cutoff"]) >= rc:
            raise ConfigError(f"{cls.name}: params.angular_cutoff must be below radial_cutoff ({rc})")

    def fit(self, train, valid, params, workdir) -> TorchaniPotential:
        import torch

        self.check_params(params)
        p = {**DEFAULTS, **params}
        torch.manual_seed(p["seed"])
        train, valid = common.hold_out(train, valid, p["valid_fraction"], p["seed"])
        elements = common.species(train + valid)  # a network for every species, the validation frames' too
        config = {k: p[k] for k in ("radial_cutoff", "angular_cutoff", "radial_num_shifts", "angular_num_shifts",
                                    "angular_num_sections", "hidden", "dtype")}
        config.update(elements=elements, self_energy=_self_energies(train, elements))
        aev, nets = build_network(config)
        module = AniModule(config, aev, nets)
        optimizer = torch.optim.Adam(nets.parameters(), lr=p["lr"])
        order_rng = np.random.default_rng(p["seed"])
        best, history = (np.inf, None, -1), []
        watch = common.Stopwatch()
        for epoch in range(p["epochs"]):
            order = order_rng.permutation(len(train))
            for start in range(0, len(train), p["batch_size"]):
                optimizer.zero_grad()
                loss = sum(_loss(module, train[i], p["force_weight"], create_graph=True)
                           for i in order[start:start + p["batch_size"]]) / len(order[start:start + p["batch_size"]])
                loss.backward()
                optimizer.step()
            v = float(np.mean([_loss(module, f, p["force_weight"]).item() for f in valid]))
            history.append(v)
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in nets.state_dict().items()}, epoch)
        train_s = watch.seconds()
        workdir = Path(workdir) / "torchani"
        workdir.mkdir(parents=True, exist_ok=True)
        model_file = workdir / "model.pt"
        torch.save({"config": config, "nets": best[1]}, model_file)
        (workdir / "valid_loss.json").write_text(json.dumps(history))
        info = {"package": "torchani", "version": common.package_version("torchani"), "device": "cpu",
                "n_parameters": common.count_parameters(nets), "aev_dim": int(aev.out_dim), "epochs": p["epochs"],
                "best_epoch": best[2], "train_s": train_s, "train_s_per_epoch": train_s / p["epochs"],
                "stress_trained": False, "n_train": len(train), "n_valid": len(valid), "elements": elements,
                "self_energy_eV_per_atom": config["self_energy"],
                "deviations": ["stress not in the loss (predicted by autograd on a strain)", "no ensemble",
                               "custom per-element networks, not the pretrained ANI models"]}
        return TorchaniPotential(str(model_file), info)


def _loss(module: AniModule, frame, force_weight: float, create_graph: bool = False):
    import torch

    energy, forces, _ = module.evaluate(frame, create_graph=create_graph)
    n = len(frame)
    e_ref = float(fr.label(frame, "energy"))
    f_ref = torch.tensor(np.asarray(fr.label(frame, "forces")), dtype=forces.dtype)
    return ((energy - e_ref) / n) ** 2 + force_weight * torch.mean((forces - f_ref) ** 2)


def _self_energies(frames, elements) -> dict[str, float]:
    """Per-element energy (eV/atom) by least squares on composition (TorchANI's self atomic energies)."""
    return fr.per_element_energy(frames, elements)
