"""TorchANI 2.9.0 (ANI / Behler-Parrinello, as in MS25), in the ``torchani`` environment.

A periodic ANI-style model built from TorchANI's ``AEVComputer`` (ANI radial + angular AEVs with cell and pbc;
defaults of ``AEVComputer.like_2x`` scaled by the params) and one atomic network per element (CELU MLPs, as
ANI), energy = Σ_atoms network(AEV) + per-element self energy (least squares on the training compositions, as
TorchANI's SAE). Trained with Adam on per-atom energy MSE + ``force_weight`` x force MSE (forces = -dE/dx by
autograd). Stress = (1/V) dE/dε by autograd through a strain applied to positions and cell (ASE sign).
Deviations from MS25: stress is not trained, no ensemble, the pretrained ANI models are not used (their download
fails offline, and they cover no metals). Molecules (pbc F): AEVs without cell (all pairs), zero stress predicted.

Training protocol (``mlffbench.models.training``), in our own loop: at most ``max_epochs`` epochs and
``max_minutes`` (checked after each epoch); validation every epoch (loss, energy and force MAE); early stop after
``patience`` epochs without a relative improvement of the validation loss by ``min_delta``; the best-validation
weights are saved and scored; a non-finite loss ends the fit with the best weights so far (status diverged).
``precision`` is the dtype of the AEVs and networks, ``device`` where they run, ``threads`` torch's CPU threads.
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
            "angular_num_sections": 8, "hidden": [64, 32], "lr": 1e-3, "force_weight": 10.0,
            "batch_size": 4, "seed": 0}


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

    def __init__(self, config: dict, aev, nets, device: str = "cpu"):
        import torch

        self.device = torch.device(device)
        self.config, self.aev, self.nets = config, aev.to(self.device), nets.to(self.device)
        # periodic cells that fit it: all-pairs is O(N^2)
        self.aev_cells = build_aev(config, "cell_list").to(self.device)
        self.dtype = getattr(torch, config["dtype"])
        self.index = {el: i for i, el in enumerate(config["elements"])}

    def energy(self, symbols, positions, cell, pbc, strain=None):
        import torch

        missing = sorted(set(symbols) - set(self.index))
        if missing:
            raise common.AdapterError(f"torchani: elements {missing} not in the training data")
        if strain is not None:  # x' = x (1 + ε), cell' = cell (1 + ε): dE/dε at ε = 0 is V * stress
            deform = torch.eye(3, dtype=self.dtype, device=self.device) + strain
            positions, cell = positions @ deform, (cell @ deform if cell is not None else None)
        idx = torch.tensor([[self.index[s] for s in symbols]], device=self.device)
        aevs = self._aevs(idx, positions[None], cell, pbc)[0]
        energy = torch.zeros((), dtype=self.dtype, device=self.device)
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
        on = {"dtype": self.dtype, "device": self.device}
        pos = torch.tensor(atoms.positions, requires_grad=True, **on)
        if atoms.pbc.any() and not periodic:
            raise common.AdapterError("torchani: mixed periodicity is not supported (pbc must be all or none)")
        cell = torch.tensor(atoms.cell[:], **on) if periodic else None
        pbc = torch.tensor([True, True, True], device=self.device) if periodic else None
        strain = torch.zeros((3, 3), requires_grad=True, **on) if periodic else None
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

            # the training device where this machine has it, else the CPU
            device = "cuda" if self.info.get("device") == "cuda" and torch.cuda.is_available() else "cpu"
            blob = torch.load(self.model_file, weights_only=False, map_location=device)
            aev, nets = build_network(blob["config"])
            nets.load_state_dict(blob["nets"])
            self._module = AniModule(blob["config"], aev, nets, device)
        return self._module

    def evaluate(self, atoms):
        from ase.stress import full_3x3_to_voigt_6_stress

        energy, forces, stress = self._load().evaluate(atoms)
        s = full_3x3_to_voigt_6_stress(stress.detach().cpu().numpy()) if stress is not None else np.zeros(6)
        return float(energy.detach()), forces.detach().cpu().numpy().astype(float), np.asarray(s, dtype=float)

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
    epoch_trained = True

    @classmethod
    def check_params(cls, params):
        common.check_moved(cls.name, params)
        super().check_params(params)
        common.check_positive(cls.name, params, ("radial_cutoff", "angular_cutoff", "lr"))
        common.check_nonnegative(cls.name, params, ("force_weight",))
        common.check_positive(cls.name, params, ("radial_num_shifts", "angular_num_shifts", "angular_num_sections",
                                                 "batch_size"), integer=True)
        hidden = params.get("hidden", DEFAULTS["hidden"])
        if not isinstance(hidden, list) or not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0
                                                             for h in hidden):
            raise ConfigError(f"{cls.name}: params.hidden must be a non-empty list of positive integers")
        rc = params.get("radial_cutoff", DEFAULTS["radial_cutoff"])
        if params.get("angular_cutoff", DEFAULTS["angular_cutoff"]) >= rc:
            raise ConfigError(f"{cls.name}: params.angular_cutoff must be below radial_cutoff ({rc})")

    def fit(self, train, valid, params, workdir, training=None) -> TorchaniPotential:
        import torch

        from mlffbench.models import training as tr

        self.check_params(params)
        protocol = training or tr.Training()
        p = {**DEFAULTS, **params}
        device, device_note = tr.torch_device(self.name, protocol.device)
        torch.set_num_threads(max(1, int(protocol.threads or 1)))
        torch.manual_seed(p["seed"])
        train, valid = common.hold_out(train, valid, protocol.validation_fraction, p["seed"])
        elements = common.species(train + valid)  # a network for every species, the validation frames' too
        config = {k: p[k] for k in ("radial_cutoff", "angular_cutoff", "radial_num_shifts", "angular_num_shifts",
                                    "angular_num_sections", "hidden")}
        config.update(dtype=protocol.precision, elements=elements, self_energy=_self_energies(train, elements))
        aev, nets = build_network(config)
        module = AniModule(config, aev, nets, device)
        optimizer = torch.optim.Adam(nets.parameters(), lr=p["lr"])
        order_rng = np.random.default_rng(p["seed"])
        curve = tr.Curve()
        best_loss, lowest, best_state, best_epoch, stale, stopped_by = np.inf, np.inf, None, None, 0, "max_epochs"
        watch = common.Stopwatch()
        job_dir = Path(workdir)
        job_dir.mkdir(parents=True, exist_ok=True)
        for epoch in range(1, protocol.max_epochs + 1):
            order = order_rng.permutation(len(train))
            sums, finite = np.zeros(3), True
            for start in range(0, len(train), p["batch_size"]):
                optimizer.zero_grad()
                terms = [_loss(module, train[i], p["force_weight"], create_graph=True)
                         for i in order[start:start + p["batch_size"]]]
                loss = sum(t[0] for t in terms) / len(terms)
                if not torch.isfinite(loss):
                    finite = False
                    break
                loss.backward()
                optimizer.step()
                sums += [sum(float(t[0].detach()) if k == 0 else t[k] for t in terms) for k in range(3)]
            lr = optimizer.param_groups[0]["lr"]
            if finite:
                scored = np.array([[float(x) for x in _loss(module, f, p["force_weight"])] for f in valid])
                v_loss, v_energy, v_forces = (float(x) for x in scored.mean(axis=0))
                finite = bool(np.isfinite(scored).all())
            else:
                v_loss = v_energy = v_forces = float("nan")
            train_means = sums / len(train)
            wall = watch.seconds()
            curve.add(epoch, wall, valid={"loss": v_loss, "energy": v_energy * 1000, "forces": v_forces * 1000},
                      train={"loss": train_means[0], "energy": train_means[1] * 1000,
                             "forces": train_means[2] * 1000} if finite else {}, lr=lr)
            tr.write_progress(job_dir, epoch, protocol, wall, v_forces * 1000 if finite else None)
            if not finite:
                stopped_by = "nan"
                break
            if v_loss < lowest:  # the weights scored: the lowest validation loss
                lowest, best_epoch = v_loss, epoch
                best_state = {k: t.detach().clone() for k, t in nets.state_dict().items()}
            if protocol.improved(v_loss, best_loss):  # patience counts epochs without a min_delta improvement
                best_loss, stale = v_loss, 0
            else:
                stale += 1
            if stale >= protocol.patience:
                stopped_by = "patience"
                break
            if wall > protocol.max_seconds:
                stopped_by = "max_minutes"
                break
        train_s = watch.seconds()
        epochs = len(curve.epochs)
        if best_state is None:
            raise common.AdapterError(f"torchani diverged at epoch {epochs} (non-finite loss) before any finite "
                                      "validation loss: lower params.lr or check the labels")
        workdir = job_dir / "torchani"
        workdir.mkdir(parents=True, exist_ok=True)
        model_file = workdir / "model.pt"
        torch.save({"config": config, "nets": {k: t.cpu() for k, t in best_state.items()}}, model_file)
        (workdir / "valid_loss.json").write_text(json.dumps([e["valid"].get("loss") for e in curve.epochs]))
        end = tr.outcome(curve, protocol, stopped_by, train_s, best_epoch)
        notes = [f"loss = per-atom energy MSE + {p['force_weight']:g} x force-component MSE (eV, Å; force_weight "
                 f"{'from params' if 'force_weight' in params else 'default'}; stress not trained; MS25 gives "
                 "no TorchANI weights)",
                 f"Adam, constant lr {p['lr']:g}, batch {p['batch_size']} frames",
                 "train errors: running means over the epoch's batches (weights changing within the epoch)"]
        if device_note:
            notes.append(device_note)
        info = {"package": "torchani", "version": common.package_version("torchani"), "device": device,
                "n_parameters": common.count_parameters(nets), "aev_dim": int(aev.out_dim), "epochs": epochs,
                "best_epoch": best_epoch, "train_s": train_s, "train_s_per_epoch": train_s / max(epochs, 1),
                "stress_trained": False, "n_train": len(train), "n_valid": len(valid), "elements": elements,
                "precision": protocol.precision, "self_energy_eV_per_atom": config["self_energy"],
                "deviations": ["stress not in the loss (predicted by autograd on a strain)", "no ensemble",
                               "custom per-element networks, not the pretrained ANI models"],
                "training": tr.record(protocol, curve, end, tr.device_name(device), len(train), len(valid),
                                      notes=notes)}
        return TorchaniPotential(str(model_file), info)


def _loss(module: AniModule, frame, force_weight: float, create_graph: bool = False):
    """(loss, |energy error| per atom in eV, force-component MAE in eV/Å) of one frame; the loss is a tensor
    (differentiable when ``create_graph``), the errors are floats."""
    import torch

    energy, forces, _ = module.evaluate(frame, create_graph=create_graph)
    n = len(frame)
    e_ref = float(fr.label(frame, "energy"))
    f_ref = torch.tensor(np.asarray(fr.label(frame, "forces")), dtype=forces.dtype, device=forces.device)
    de, df = (energy - e_ref) / n, forces - f_ref
    loss = de ** 2 + force_weight * torch.mean(df ** 2)
    return loss, abs(float(de.detach())), float(df.detach().abs().mean())


def _self_energies(frames, elements) -> dict[str, float]:
    """Per-element energy (eV/atom) by least squares on composition (TorchANI's self atomic energies)."""
    return fr.per_element_energy(frames, elements)
