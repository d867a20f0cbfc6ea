"""DeePMD-kit 3.2.0, PyTorch backend (built from source against torch 2.13: the PyPI wheel's backend is built for
torch 2.11 and fails), in the ``deepmd`` environment: ``dp --pt train`` then ``dp --pt freeze``; predicts with
``deepmd.calculator.DP`` on the frozen model.

Hyperparameters are Metal-43 Supplementary Table 2 (se_e2_a): sel 100, r_cut 6.0 Å, r_cut_smth 0.5 Å, embedding
net 25-50-100, fitting net 200-200-200, tanh, Adam with exponential decay from lr 0.01 to 1e-7 over the run's
numb_steps, energy/force prefactors 100 -> 10 (Metal-43: float64 and 50 epochs: ``training: {precision: float64,
max_epochs: 50}``). Metal-43 lists no virial prefactor: ``start_pref_v`` and ``limit_pref_v`` default to 0 (stress
is then predicted but not trained).

Training protocol (``mlffbench.models.training``): DeePMD trains by steps; an epoch = ceil(n_train / batch_size)
steps and numb_steps = max_epochs epochs. DeePMD's own full validation (``validating.full_validation``) runs every
epoch on all validation frames, writes val.log (MAE/RMSE of energy per atom, forces, stress) and keeps the
checkpoint of the lowest validation force MAE (best.ckpt-<step>.t-1.pt), which is frozen and scored. DeePMD has
no early stopping and no wall-time limit: ``run_watched`` stops it at max_minutes or when the force MAE has not
improved for ``patience`` epochs (the poll parses val.log and lcurve.out, whose train columns are RMSE).
Several species: ``type_map`` = the sorted symbols, data in DeePMD's mixed-type format (per-frame atom types,
one system per atom count); the per-type energy reference is DeePMD's own output bias (least squares of the
training energies on the composition). Molecules: systems marked ``nopbc`` (no cell in the model or the
calculator), no virial; their stress is predicted as zeros.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from mlffbench import frames as fr
from mlffbench.errors import ConfigError
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

DEFAULTS = {
    "rcut": 6.0, "rcut_smth": 0.5, "sel": 100, "embedding": [25, 50, 100], "fitting": [200, 200, 200],
    "axis_neuron": 16, "batch_size": 1, "start_lr": 0.01, "stop_lr": 1e-7,
    "start_pref_e": 100.0, "limit_pref_e": 10.0, "start_pref_f": 100.0, "limit_pref_f": 10.0,
    "start_pref_v": 0.0, "limit_pref_v": 0.0, "seed": 0,
}
#: eV/Å³ -> GPa (DeePMD's full validation reports stress in meV/Å³)
EV_A3_TO_GPA = 160.21766208
#: DeePMD's full-validation log (validating.full_val_file) and its best-checkpoint prefix (BEST_CKPT_PREFIX)
VAL_LOG, BEST_PREFIX = "val.log", "best.ckpt"


class DeepmdPotential(common.CalculatorPotential):
    family = "deepmd"

    def make_calculator(self):
        from deepmd.calculator import DP

        return DP(model=self.model_file)


class DeepmdModel(Model):
    """DeePMD se_e2_a (PyTorch backend); params: see DEFAULTS."""

    name = "deepmd"
    cutoff_params = {"rcut": DEFAULTS["rcut"]}
    env = "deepmd"
    potential_class = DeepmdPotential
    param_keys = tuple(DEFAULTS)
    epoch_trained = True

    @classmethod
    def check_params(cls, params):
        common.check_moved(cls.name, params)
        super().check_params(params)
        common.check_positive(cls.name, params, ("rcut", "rcut_smth", "start_lr", "stop_lr"))
        common.check_positive(cls.name, params, ("sel", "axis_neuron", "batch_size"), integer=True)
        common.check_nonnegative(cls.name, params, ("start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f",
                                                    "start_pref_v", "limit_pref_v"))
        for key in ("embedding", "fitting"):
            layers = params.get(key, DEFAULTS[key])
            if not (isinstance(layers, list) and layers and all(isinstance(n, int) and n > 0 for n in layers)):
                raise ConfigError(f"deepmd: params.{key} must be a list of positive layer widths (got {layers!r})")

    def fit(self, train, valid, params, workdir, training=None) -> DeepmdPotential:
        from mlffbench.models import training as tr

        self.check_params(params)
        protocol = training or tr.Training()
        p = {**DEFAULTS, **params}
        job_dir = Path(workdir)
        workdir = job_dir / "deepmd"
        workdir.mkdir(parents=True, exist_ok=True)
        device, device_note = tr.torch_device(self.name, protocol.device)
        train, valid = common.hold_out(train, valid, protocol.validation_fraction, p["seed"])
        type_map = common.species(list(train) + list(valid))
        train_systems = write_systems(train, workdir / "data" / "train", type_map)
        valid_systems = write_systems(valid, workdir / "data" / "valid", type_map)
        epoch_steps = math.ceil(len(train) / p["batch_size"])
        steps = protocol.max_epochs * epoch_steps
        seed = p["seed"] + 1
        stress_trained = bool(p["start_pref_v"] or p["limit_pref_v"])
        config = {
            "model": {
                "type_map": type_map,
                "descriptor": {"type": "se_e2_a", "sel": [p["sel"]] * len(type_map), "rcut": p["rcut"],
                               "rcut_smth": p["rcut_smth"], "neuron": p["embedding"], "axis_neuron": p["axis_neuron"],
                               "activation_function": "tanh", "resnet_dt": False, "seed": seed,
                               "precision": protocol.precision},
                "fitting_net": {"neuron": p["fitting"], "activation_function": "tanh", "resnet_dt": True,
                                "seed": seed, "precision": protocol.precision},
            },
            "learning_rate": {"type": "exp", "start_lr": p["start_lr"], "stop_lr": p["stop_lr"],
                              "decay_steps": max(1, steps // 100)},
            "loss": {"type": "ener", **{k: p[k] for k in ("start_pref_e", "limit_pref_e", "start_pref_f",
                                                          "limit_pref_f", "start_pref_v", "limit_pref_v")}},
            "training": {
                "training_data": {"systems": train_systems, "batch_size": p["batch_size"]},
                "validation_data": {"systems": valid_systems, "batch_size": 1},
                "numb_steps": steps, "seed": seed, "disp_file": "lcurve.out",
                # one lcurve line and one (latest) checkpoint per epoch; the train columns averaged over the epoch
                "disp_freq": epoch_steps, "disp_avg": True, "save_freq": epoch_steps, "max_ckpt_keep": 1,
            },
            # DeePMD's own full validation: every epoch, all held-out frames, MAE and RMSE in val.log, and the
            # checkpoint of the lowest validation force MAE kept as best.ckpt-<step>.t-1.pt
            "validating": {"full_validation": True, "validation_freq": epoch_steps, "full_val_start": 0,
                           "validation_metric": "F:MAE", "save_best": True, "max_best_ckpt": 1,
                           "full_val_file": VAL_LOG},
        }
        (workdir / "input.json").write_text(json.dumps(config, indent=1))
        dp = [sys.executable, "-m", "deepmd", "--pt"]
        env = {**tr.thread_env(protocol.threads), "DP_INTRA_OP_PARALLELISM_THREADS": str(max(1, protocol.threads)),
               "DP_INTER_OP_PARALLELISM_THREADS": "1", **({"DEVICE": "cpu"} if device == "cpu" else {})}
        log = workdir / "train.log"
        watch = _Watch(workdir, job_dir, protocol, epoch_steps)
        returncode, train_s, stopped = tr.run_watched(dp + ["train", "input.json"], log, workdir, protocol,
                                                      poll=watch.poll, env=env, interval_s=1.0)
        curve = watch.curve
        if stopped:
            stopped_by = "patience" if watch.patience_out else "max_minutes"
        elif returncode == 0:
            stopped_by = "max_epochs"
        else:
            stopped_by = "nan" if watch.diverged() else None
            if stopped_by is None:
                raise common.program_failed("dp --pt train", returncode, log)
        best_file, best_epoch = watch.best_checkpoint()
        if best_file is None:
            if stopped_by == "nan":
                raise common.AdapterError(f"deepmd diverged at epoch {curve.epochs[-1]['epoch']} (non-finite "
                                          f"loss) before any validated checkpoint: lower params.start_lr "
                                          f"(log {log})")
            raise common.AdapterError(f"deepmd: dp --pt train left no best-validation checkpoint "
                                      f"({BEST_PREFIX}-*.pt) in {workdir} (log {log})")
        returncode, _ = common.run_logged(dp + ["freeze", "-c", best_file.name, "-o", "frozen.pth"], log, workdir,
                                          append=True)
        model_file = workdir / "frozen.pth"
        if returncode or not model_file.is_file():
            raise common.program_failed("dp --pt freeze", returncode, log)
        potential = DeepmdPotential(str(model_file))
        dp_model = getattr(potential.calculator, "dp", None)
        inner = getattr(getattr(dp_model, "deep_eval", None), "dp", None)
        epochs = len(curve.epochs) or 1
        end = tr.outcome(curve, protocol, stopped_by, train_s, best_epoch)
        notes = [
            "loss prefactors E/F/V = 100->10 / 100->10 / 0->0 (start -> limit, decaying with the learning rate), "
            "Metal-43 SI Table 2" if (p["start_pref_e"], p["limit_pref_e"], p["start_pref_f"], p["limit_pref_f"],
                                      p["start_pref_v"], p["limit_pref_v"]) == (100.0, 10.0, 100.0, 10.0, 0.0, 0.0)
            else "loss prefactors E/F/V = {}->{} / {}->{} / {}->{} (start -> limit), from params".format(
                p["start_pref_e"], p["limit_pref_e"], p["start_pref_f"], p["limit_pref_f"], p["start_pref_v"],
                p["limit_pref_v"]),
            f"an epoch = ceil(n_train / batch_size) = {epoch_steps} steps; DeePMD trains by steps "
            f"(numb_steps = max_epochs x {epoch_steps} = {steps})",
            f"learning rate: exponential decay {p['start_lr']:g} -> {p['stop_lr']:g} over numb_steps = max_epochs "
            "epochs, so a fit stopped earlier (patience, max_minutes) ends at a higher learning rate than the "
            "schedule's last",
            "validation curve: DeePMD's full validation (val.log, every epoch, all validation frames; MAE); the "
            "best checkpoint is its lowest validation force MAE (validating.validation_metric F:MAE): early "
            "stopping watches the force MAE, not DeePMD's loss, whose prefactors change with the learning rate",
            "train curve: lcurve.out, RMSE (rmse_e_trn per atom, rmse_f_trn), averaged over the epoch "
            "(disp_avg), stored as energy_rmse (meV/atom) / forces_rmse (meV/Å) / virial_rmse (meV/atom) and loss",
            "early stopping and max_minutes by mlffbench (run_watched: DeePMD has neither)",
        ]
        if device_note:
            notes.append(device_note)
        record = tr.record(protocol, curve, end, tr.device_name(device), len(train), len(valid), notes=notes,
                           checkpoint=best_file.name)
        potential.info = {
            "package": "deepmd-kit", "version": common.package_version("deepmd-kit"), "backend": "pytorch",
            "device": device, "n_parameters": _n_parameters(inner), "epochs": epochs, "steps": steps,
            "steps_per_epoch": epoch_steps, "best_epoch": best_epoch,
            "train_s": train_s, "train_s_per_epoch": train_s / epochs, "n_train": len(train), "n_valid": len(valid),
            "type_map": type_map, "n_systems": len(train_systems), "precision": protocol.precision,
            "energy_reference": "DeePMD's output bias: per-type least squares of the training energies on the "
                                "composition (compute_output_stats)",
            "stress_trained": stress_trained,
            "deviations": ["virial prefactors 0 unless set (Metal-43 lists none)",
                           "train_s_per_epoch = wall time of dp train / epochs run",
                           f"precision {protocol.precision} (training.precision; Metal-43: float64)"],
            "training": record,
        }
        return potential


class _Watch:
    """run_watched's poll for ``dp --pt train``: each new val.log line (one per epoch) becomes a curve epoch, with
    that epoch's lcurve.out train RMSE and learning rate; writes progress.json and says when patience runs out."""

    def __init__(self, workdir: Path, job_dir: Path, protocol, epoch_steps: int):
        import time

        from mlffbench.models import training as tr

        self.workdir, self.job_dir, self.protocol, self.epoch_steps = workdir, job_dir, protocol, epoch_steps
        self.curve = tr.Curve(metric="mae")
        self.start, self.start_time = time.perf_counter(), time.time()
        self.best, self.stale, self.patience_out = float("inf"), 0, False

    def poll(self) -> bool:
        import time

        from mlffbench.models import training as tr

        rows = read_val_log(self.workdir / VAL_LOG)
        if len(rows) <= len(self.curve.epochs):
            return self.patience_out
        lcurve = read_lcurve(self.workdir / "lcurve.out")
        stamps = read_batch_times(self.workdir / "train.log")
        for step, valid in rows[len(self.curve.epochs):]:
            epoch = step // self.epoch_steps
            train, lr = lcurve.get(step, ({}, None))
            # the log's time of the epoch's last batch (poll time when absent), from the program's start
            wall = stamps[step] - self.start_time if step in stamps else time.perf_counter() - self.start
            self.curve.add(epoch, wall, valid=valid, train=train, lr=lr)
            f = valid.get("forces", float("nan"))
            if self.protocol.improved(f, self.best):
                self.best, self.stale = f, 0
            else:
                self.stale += 1
            tr.write_progress(self.job_dir, epoch, self.protocol, wall, f if math.isfinite(f) else None)
        if self.stale >= self.protocol.patience:
            self.patience_out = True
        return self.patience_out

    def diverged(self) -> bool:
        """Whether a failed run diverged: its last lcurve line has a non-finite train loss, energy or force error,
        or its log ends with DeePMD's divergence errors (the gradient guard's non-finite gradient norm, the full
        validation's NaN metric). Adds the epoch it failed in to the curve, with a non-finite validation error."""
        import time

        lcurve = read_lcurve(self.workdir / "lcurve.out")
        last = lcurve[max(lcurve)][0] if lcurve else {}
        bad = any(not math.isfinite(last[k]) for k in ("loss", "energy_rmse", "forces_rmse") if k in last)
        log = self.workdir / "train.log"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:]) if log.is_file() else ""
        bad = bad or any(m in tail for m in ("training has diverged", "Non-finite gradient norm",
                                             "The selected full validation metric is unavailable"))
        if bad:
            epoch = (self.curve.epochs[-1]["epoch"] if self.curve.epochs else 0) + 1
            self.curve.add(epoch, time.perf_counter() - self.start, valid={"forces": float("nan")})
        return bad

    def best_checkpoint(self) -> tuple[Path | None, int | None]:
        """(DeePMD's best-validation checkpoint, its epoch): the newest best.ckpt-<step>.t-1.pt whose epoch is in
        the curve (DeePMD logs an epoch after saving its checkpoint: a newer one may be a save cut by the stop
        signal, while the older one still exists), else the newest one (stopped after the save and the removal
        of the older one, before the log line)."""
        seen = {e["epoch"] for e in self.curve.epochs if e["valid"].get("forces") is not None}
        found = []
        for path in self.workdir.glob(f"{BEST_PREFIX}-*.t-*.pt"):
            try:
                step = int(path.name[len(BEST_PREFIX) + 1:].split(".t-")[0])
            except ValueError:
                continue
            if not path.is_symlink():
                found.append((step // self.epoch_steps in seen, step, path))
        if not found:
            return None, None
        _, step, path = max(found)
        return path, step // self.epoch_steps


def _table(path: Path):
    """The data rows of a DeePMD column log (``# step ...`` header, whitespace columns) as {column: text}; a
    missing file or a half-written last line gives nothing for it."""
    if not path.is_file():
        return
    columns = None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("#"):
            if columns is None and "step" in line:
                columns = line.lstrip("#").split()
            continue
        parts = line.split()
        if columns and len(parts) == len(columns):
            yield dict(zip(columns, parts))


def read_val_log(path: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, {energy meV/atom, forces meV/Å, stress GPa}) MAE rows of DeePMD's full-validation log (header
    ``# step E_MAE(meV/atom) E_RMSE(meV/atom) F_MAE(meV/Å) F_RMSE(meV/Å) S_MAE(meV/Å³) S_RMSE(meV/Å³)``)."""
    rows = []
    for values in _table(path):
        out = {}
        for key, name, scale in (("E_MAE(meV/atom)", "energy", 1.0), ("F_MAE(meV/Å)", "forces", 1.0),
                                 ("S_MAE(meV/Å³)", "stress", EV_A3_TO_GPA / 1000.0)):
            if key in values:
                v = _float(values[key])
                if key.startswith("S_") and not math.isfinite(v):
                    continue  # stress not trained: no column value
                out[name] = v * scale
        rows.append((int(values["step"]), out))
    return rows


def read_lcurve(path: Path) -> dict[int, tuple[dict[str, float], float | None]]:
    """step -> (train {energy_rmse meV/atom, forces_rmse meV/Å, virial_rmse meV/atom, loss}, lr) from
    lcurve.out, DeePMD 3.2.0's columns ``step rmse_val rmse_trn rmse_e_val rmse_e_trn rmse_f_val rmse_f_trn
    [rmse_v_val rmse_v_trn] lr``: RMSE in eV/atom (energy and virial per atom), eV/Å, and rmse = sqrt(loss)."""
    out = {}
    for row in _table(path):
        values = {k: _float(v) for k, v in row.items()}
        train = {}
        for key, name in (("rmse_e_trn", "energy_rmse"), ("rmse_f_trn", "forces_rmse"),
                          ("rmse_v_trn", "virial_rmse"), ("rmse_trn", "loss")):
            if key in values:  # rmse_trn = sqrt(DeePMD's loss at the current prefactors)
                train[name] = values[key] ** 2 if key == "rmse_trn" else values[key] * 1000.0
        out[int(values["step"])] = (train, values.get("lr"))
    return out


def read_batch_times(path: Path) -> dict[int, float]:
    """step -> POSIX time of DeePMD's ``[YYYY-mm-dd HH:MM:SS,mmm] DEEPMD INFO Batch N: total wall time`` lines
    (local time, as this machine's clock)."""
    import datetime

    if not path.is_file():
        return {}
    out = {}
    for m in re.finditer(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\] DEEPMD INFO\s+Batch\s+(\d+): total wall time",
                         path.read_text(errors="replace"), re.M):
        try:
            out[int(m.group(2))] = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
    return out


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _n_parameters(module) -> int | None:
    try:
        return common.count_parameters(module)
    except Exception:  # noqa: BLE001 - a frozen TorchScript module without .parameters(): unknown
        return None


def write_systems(frames, root: Path, type_map: list[str]) -> list[str]:
    """DeePMD npy systems in its mixed-type format, one per (atom count, periodicity): ``type.raw`` (zeros, the
    atom count) and ``type_map.raw``, then per frame in ``set.000``: ``real_atom_types`` (index into ``type_map``),
    coord, box, energy, force and virial (= -V * stress, when every frame of the system has one). One system per
    atom count, not per species sequence: random alloys would otherwise give one-frame systems (a batch of one
    frame, whatever ``batch_size``). Non-periodic frames get DeePMD's ``nopbc`` marker (no box in the model; the
    box written is ``boxed``'s, unused)."""
    groups: dict[tuple, list] = {}
    for frame in frames:
        groups.setdefault((len(frame), bool(frame.pbc.any())), []).append(frame)
    paths = []
    for i, ((natoms, periodic), group) in enumerate(sorted(groups.items())):
        system = root / f"sys{i:03d}"
        sets = system / "set.000"
        sets.mkdir(parents=True, exist_ok=True)
        if not periodic:
            (system / "nopbc").write_text("")
            group = [common.boxed(f) for f in group]
        (system / "type_map.raw").write_text("\n".join(type_map) + "\n")
        (system / "type.raw").write_text("0\n" * natoms)
        np.save(sets / "real_atom_types.npy",
                np.array([[type_map.index(s) for s in f.get_chemical_symbols()] for f in group], dtype=np.int32))
        np.save(sets / "coord.npy", np.array([f.positions.reshape(-1) for f in group]))
        np.save(sets / "box.npy", np.array([np.array(f.cell).reshape(-1) for f in group]))
        np.save(sets / "energy.npy", np.array([fr.label(f, "energy") for f in group]))
        np.save(sets / "force.npy", np.array([np.asarray(fr.label(f, "forces")).reshape(-1) for f in group]))
        if periodic and all(fr.has_label(f, "stress") for f in group):
            from ase.stress import voigt_6_to_full_3x3_stress

            np.save(sets / "virial.npy", np.array([(-f.get_volume() * voigt_6_to_full_3x3_stress(
                fr.label(f, "stress"))).reshape(-1) for f in group]))
        paths.append(str(system))
    return paths
