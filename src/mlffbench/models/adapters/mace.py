"""MACE 0.3.16 (mace-torch, e3nn 0.4.4) through its own training CLI, in the ``mace`` environment, under the run's
training protocol (``mlffbench.models.training``).

Loss and optimiser follow MS25's recipe ("MACE Training Procedure", Table 4 where one value fits all systems):
energy/forces/stress weights 1/20/10, lr 0.01, a plateau scheduler (factor 0.8), the "universal" loss with Huber
delta 0.01. Deviation: the scheduler's patience is a third of training.patience (``plateau_patience``), not
MS25's 50 epochs, which would outlast early stopping and never cut the learning rate.

Protocol: ``--max_num_epochs`` = training.max_epochs, validation every epoch (``--eval_interval 1``),
``--default_dtype`` = training.precision, ``--device`` from training.device, threads through the subprocess
environment. MACE has no wall-time limit, and its ``--patience`` does not stop a single-process run in 0.3.16
(``tools.train``: the loop breaks only through the distributed ``exit_now`` broadcast; alone it logs "Stopping
optimization ..." and goes on), so the adapter runs it under ``training.run_watched``: the poll parses MACE's own
per-epoch results (``results/<tag>_train.txt``, JSON lines of mode "eval"), writes progress.json, and stops the
program (SIGINT) when the validation loss has not improved (relative ``min_delta``) for ``patience`` epochs, on a
non-finite loss, or at ``max_minutes``. MACE saves a checkpoint at each improving epoch (``--keep_checkpoints``:
the poll deletes superseded ones itself, so a NaN epoch never replaces the last good one); a stopped run is then
finished by a second ``run_train --restart_latest --max_num_epochs <best epoch>``, which loads the best checkpoint,
trains nothing and writes the ``.model`` file (MACE's own end of training; it takes its start-up, one validation
and the train/valid error table, ~30 s on a tiny set, after max_minutes). The poll runs every 0.5 s and stops MACE
only between checkpoint writes (a cut file is never scored); on short epochs the stop may come one epoch after the
patience epoch, which the curve then records. The weights scored are the best-validation ones (lowest MACE
validation loss).

Stage two (MS25's two phases, stage 1 : stage 2 = 0.8 : 0.2 of a fixed epoch count; ``--stage_two``) does not fit
a protocol whose fits end at convergence or at a wall-time budget (the epoch count is not known in advance): it is
off by default (``stage_two_fraction: 0``, a stated deviation). ``stage_two_fraction: f > 0`` opts in: stage two
starts after round(max_epochs x (1 - f)) epochs, only if the fit gets there; its loss is another function (energy weight
10000), so early stopping restarts its count at stage two, and the stage-two model (best stage-two validation loss)
is scored when it exists.

Deviations: E0s = "average" (least-squares atomic energies from the training set), since our labelers have no
isolated-atom energies (also the reference for molecules with all-electron totals). Molecules (pbc F) are written
without cell or stress: no stress in the loss ("universal" falls back to "weighted"), zero stress predicted.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

from mlffbench.models import training as tr
from mlffbench.models.adapters import common
from mlffbench.models.base import Model

DEFAULTS = {
    "r_max": 5.0, "max_L": 1, "num_channels": 64, "correlation": 3, "max_ell": 3, "num_interactions": 2,
    "num_radial_basis": 8, "batch_size": 2, "stage_two_fraction": 0.0, "lr": 0.01,
    "energy_weight": 1.0, "forces_weight": 20.0, "stress_weight": 10.0,
    "stage_two_lr": 1e-3, "stage_two_energy_weight": 10000.0, "stage_two_forces_weight": 1.0,
    "stage_two_stress_weight": 10.0,
    "loss": "universal", "huber_delta": 0.01, "scheduler_patience": None, "lr_factor": 0.8, "seed": 0,
}

#: eV/Å³ -> GPa
EV_A3_GPA = 160.21766208
TAG = "mace_run"  # tools.get_tag(name="mace", seed) = f"{name}_run-{seed}"


class MacePotential(common.CalculatorPotential):
    family = "mace"

    def make_calculator(self):
        import torch
        from mace.calculators import MACECalculator

        device = "cuda" if self.info.get("device") == "cuda" and torch.cuda.is_available() else "cpu"
        return MACECalculator(model_paths=self.model_file, device=device,
                              default_dtype=self.info.get("dtype", "float64"))


class MaceModel(Model):
    """MACE; params: see DEFAULTS (MACE CLI names). Epochs, validation, dtype and device come from the run's
    training protocol (``training:``)."""

    name = "mace"
    cutoff_params = {"r_max": DEFAULTS["r_max"]}
    env = "mace"
    potential_class = MacePotential
    param_keys = tuple(DEFAULTS)
    epoch_trained = True

    @classmethod
    def check_params(cls, params):
        common.check_moved(cls.name, params)
        super().check_params(params)
        common.check_positive(cls.name, params, ("r_max", "lr", "stage_two_lr", "huber_delta", "lr_factor"))
        common.check_positive(cls.name, params, ("num_channels", "correlation", "max_ell", "num_interactions",
                                                 "num_radial_basis", "batch_size", "scheduler_patience"),
                              integer=True)
        common.check_nonnegative(cls.name, params, ("energy_weight", "forces_weight", "stress_weight",
                                                    "stage_two_energy_weight", "stage_two_forces_weight",
                                                    "stage_two_stress_weight"))
        common.check_choice(cls.name, params, "max_L", (0, 1, 2, 3))
        common.check_choice(cls.name, params, "loss", ("universal", "weighted", "stress", "huber"))
        frac = params.get("stage_two_fraction", 0.0)
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            raise common.ConfigError(f"mace: params.stage_two_fraction must be in [0, 1) (got {frac!r})")

    def fit(self, train, valid, params, workdir, training=None) -> MacePotential:
        import torch

        self.check_params(params)
        protocol = training or tr.Training()
        p = {**DEFAULTS, **params}
        if p["scheduler_patience"] is None:  # cut the lr twice before early stopping gives up on a plateau
            p["scheduler_patience"] = tr.plateau_patience(protocol.patience)
        job_dir = Path(workdir)
        workdir = job_dir / "mace"
        workdir.mkdir(parents=True, exist_ok=True)
        train, valid = common.hold_out(train, valid, protocol.validation_fraction, p["seed"])
        device, device_note = tr.torch_device(self.name, protocol.device)
        threads = max(1, int(protocol.threads or 1))
        torch.set_num_threads(threads)
        stress = common.all_have_stress(train) and common.all_have_stress(valid)
        common.write_training_xyz(train, workdir / "train.xyz", stress)
        common.write_training_xyz(valid, workdir / "valid.xyz", stress)
        max_epochs = int(protocol.max_epochs)
        start_two = int(round(max_epochs * (1 - p["stage_two_fraction"])))
        two_phase = p["stage_two_fraction"] > 0 and 0 < start_two < max_epochs
        loss = p["loss"] if stress or p["loss"] in ("weighted", "huber") else "weighted"
        tag = f"mace_run-{p['seed']}"
        ck_dir, results = workdir / "checkpoints", workdir / "results" / f"{tag}_train.txt"
        for old in list(ck_dir.glob("*.pt")) + list(workdir.glob("mace*.model")) + [results]:  # a rerun starts afresh
            old.unlink(missing_ok=True)
        base = [
            sys.executable, "-m", "mace.cli.run_train", "--name", "mace", "--seed", str(p["seed"]),
            "--train_file", str(workdir / "train.xyz"), "--valid_file", str(workdir / "valid.xyz"),
            "--energy_key", common.ENERGY_KEY, "--forces_key", common.FORCES_KEY,
            "--model", "MACE", "--r_max", str(p["r_max"]), "--max_L", str(p["max_L"]),
            "--num_channels", str(p["num_channels"]), "--correlation", str(p["correlation"]),
            "--max_ell", str(p["max_ell"]), "--num_interactions", str(p["num_interactions"]),
            "--num_radial_basis", str(p["num_radial_basis"]), "--E0s", "average",
            "--loss", loss, "--huber_delta", str(p["huber_delta"]),
            "--energy_weight", str(p["energy_weight"]), "--forces_weight", str(p["forces_weight"]),
            "--lr", str(p["lr"]), "--scheduler", "ReduceLROnPlateau",
            "--scheduler_patience", str(p["scheduler_patience"]), "--lr_factor", str(p["lr_factor"]),
            "--batch_size", str(p["batch_size"]), "--valid_batch_size", str(p["batch_size"]),
            # MACE's patience never fires (and would jump to stage two): the poll stops the run
            "--patience", str(max_epochs + 1), "--eval_interval", "1", "--keep_checkpoints",
            "--device", device, "--default_dtype", protocol.precision, "--error_table", "PerAtomMAE",
            "--model_dir", str(workdir), "--log_dir", str(workdir / "logs"),
            "--checkpoints_dir", str(ck_dir), "--results_dir", str(workdir / "results"),
        ]
        if stress:
            base += ["--stress_key", common.STRESS_KEY, "--stress_weight", str(p["stress_weight"])]
        else:
            base += ["--stress_weight", "0"]

        def stage_two_args(start):
            out = ["--stage_two", "--start_stage_two", str(start), "--stage_two_lr", str(p["stage_two_lr"]),
                   "--stage_two_energy_weight", str(p["stage_two_energy_weight"]),
                   "--stage_two_forces_weight", str(p["stage_two_forces_weight"])]
            return out + (["--stage_two_stress_weight", str(p["stage_two_stress_weight"])] if stress else [])

        args = base + ["--max_num_epochs", str(max_epochs)] + (stage_two_args(start_two) if two_phase else [])
        log_path = workdir / "train.log"
        watch = _Watch(results, log_path, ck_dir, tag, protocol, job_dir, start_two if two_phase else None)
        common.write_command(workdir, args, tr.thread_env(threads))  # the family's own run, for by-hand timing
        returncode, train_s, stopped = tr.run_watched(args, log_path, workdir, protocol, poll=watch.poll,
                                                      env=tr.thread_env(threads), interval_s=0.5)
        curve = watch.curve
        if watch.nan_epoch is not None:
            stopped_by = "nan"
        elif watch.converged:
            stopped_by = "patience"
        elif stopped:
            stopped_by = "max_minutes"
        elif returncode:
            raise common.program_failed("mace_run_train", returncode, log_path)
        else:
            stopped_by = "max_epochs"
        best = watch.prune(final=True)  # MACE epoch (0-based) of the checkpoint scored, per phase
        scored = best.get("two") if two_phase else None
        scored = scored if scored is not None else best.get("one")
        if scored is None:
            if stopped_by == "nan":
                raise common.AdapterError(f"mace diverged at epoch {watch.nan_epoch + 1} (non-finite validation "
                                          f"loss) before any good checkpoint (log {log_path})")
            raise common.AdapterError(f"mace: no epoch finished within training.max_minutes = "
                                      f"{protocol.max_minutes} (log {log_path})")
        restarted = stopped or bool(returncode) or stopped_by == "nan"
        if restarted:
            # MACE's own ending: load the latest (= best kept) checkpoint, train nothing, write the .model
            extra = stage_two_args(min(start_two, scored - 1)) if best.get("two") is not None else []
            rc, _ = common.run_logged(base + ["--restart_latest", "--max_num_epochs", str(scored)] + extra,
                                      workdir / "finish.log", workdir)
            if rc:
                raise common.program_failed("mace_run_train --restart_latest", rc, workdir / "finish.log")
        names = (["mace_stagetwo.model"] if best.get("two") is not None else []) + ["mace.model"]
        model_file = next((workdir / n for n in names if (workdir / n).is_file()), None)
        if model_file is None:
            raise common.AdapterError(f"mace_run_train wrote no model in {workdir} (log {log_path})")
        best_epoch = scored + 1
        end = tr.outcome(curve, protocol, stopped_by, train_s, best_epoch=best_epoch)
        n_params = common.count_parameters(torch.load(model_file, map_location="cpu", weights_only=False))
        epochs = len(curve.epochs)
        per_epoch = (curve.epochs[-1]["wall_s"] / epochs) if epochs else train_s
        notes = [f"loss weights E/F/S = {p['energy_weight']:g}/{p['forces_weight']:g}/"
                 f"{p['stress_weight'] if stress else 0:g} ({loss} loss, Huber delta {p['huber_delta']:g}), "
                 "MS25 Table 4 (MACE training procedure)",
                 "early stopping and the wall-time limit by the adapter's poll of MACE's per-epoch results "
                 "(MACE 0.3.16's --patience does not stop a single-process run); a stopped run's best checkpoint "
                 "is written out by run_train --restart_latest",
                 "curve: MACE's validation MAE (energy per atom, forces component-wise, stress); train: mean "
                 "batch loss of the epoch; lr not logged per epoch by MACE",
                 "E0s = average (least squares on the training set), no isolated-atom energies"]
        if two_phase:
            notes.append(f"stage two (E/F/S = {p['stage_two_energy_weight']:g}/{p['stage_two_forces_weight']:g}/"
                         f"{p['stage_two_stress_weight'] if stress else 0:g}, lr {p['stage_two_lr']:g}) from epoch "
                         f"{start_two + 1} if reached ({'reached' if best.get('two') is not None else 'not reached'}"
                         "); its loss differs (the curve's loss changes scale there, so best_valid and "
                         "epochs_without_improvement compare across phases), patience restarts there and the "
                         "stage-two model is scored")
        else:
            notes.append("deviation: MS25's stage two (a fixed 0.8 : 0.2 split of the epochs) is off under "
                         "early stopping / a time budget (params.stage_two_fraction > 0 enables it)")
        if device_note:
            notes.append(device_note)
        record = tr.record(protocol, curve, end, tr.device_name(device), len(train), len(valid), notes=notes)
        info = {
            "package": "mace-torch", "version": common.package_version("mace-torch"),
            "e3nn": common.package_version("e3nn"), "device": device, "dtype": protocol.precision,
            "n_parameters": n_params, "epochs": epochs,
            "stage_two_start": start_two if two_phase and best.get("two") is not None else None,
            "train_s": train_s, "train_s_per_epoch": per_epoch, "n_train": len(train),
            "n_valid": len(valid), "stress_trained": stress, "loss": loss, "model_file_name": model_file.name,
            "training": record,
            "deviations": ["E0s = average (least squares on the training set), no isolated-atom energies",
                           "train_s_per_epoch = wall time of the last validated epoch since MACE's 'Started "
                           "training' / epochs (validation of each epoch included)"],
        }
        return MacePotential(str(model_file), info)


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) INFO: (Started training|Epoch (\d+):)")
_CKPT = re.compile(r"_epoch-(\d+)(_swa)?\.pt$")


def epoch_stamps(log: str) -> tuple[float | None, dict[int, float]]:
    """(time of 'Started training', {MACE epoch: time of its validation line}) in seconds, from the log."""
    from datetime import datetime

    start, stamps = None, {}
    for line in log.splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if m.group(3) is None:
            start = t if start is None else start
        else:
            stamps.setdefault(int(m.group(3)), t)
    return start, stamps


def parse_results(text: str) -> tuple[dict[int, dict], dict[int, list[float]]]:
    """MACE's results JSON lines: ({epoch: eval metrics}, {epoch: train batch losses}); the initial evaluation
    (epoch null) and a restart's are skipped (first record of an epoch wins)."""
    evals, opt = {}, {}
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line being written
        if d.get("epoch") is None:
            continue
        if d.get("mode") == "eval":
            evals.setdefault(int(d["epoch"]), d)
        elif d.get("mode") == "opt":
            opt.setdefault(int(d["epoch"]), []).append(float(d["loss"]))
    return evals, opt


def valid_errors(d: dict) -> dict[str, float]:
    """One eval record in the benchmark's units: loss, energy meV/atom, forces meV/Å, stress GPa."""
    out = {"loss": float(d["loss"])}
    if d.get("mae_e_per_atom") is not None:
        out["energy"] = 1e3 * float(d["mae_e_per_atom"])
    if d.get("mae_f") is not None:
        out["forces"] = 1e3 * float(d["mae_f"])
    if d.get("mae_stress") is not None:
        out["stress"] = EV_A3_GPA * float(d["mae_stress"])
    return out


class _Tail:
    """The complete lines appended to a file since the last call (a growing log read once, not every poll)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def new_text(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return ""
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        return data[:cut].decode("utf-8", errors="replace")


class _Watch:
    """run_watched's poll: curve and progress from MACE's results, early stopping, checkpoint pruning."""

    def __init__(self, results: Path, log_path: Path, ck_dir: Path, tag: str, protocol, job_dir: Path,
                 start_two: int | None):
        self.results, self.log_path, self.ck_dir, self.tag = results, log_path, ck_dir, tag
        self.protocol, self.job_dir, self.start_two = protocol, job_dir, start_two
        self.curve = tr.Curve()
        self.losses: dict[int, float] = {}
        self.nan_epoch: int | None = None
        self.converged = self.deadline = False
        self.started = time.perf_counter()
        self.results_tail, self.log_tail = _Tail(results), _Tail(log_path)
        self.evals: dict[int, dict] = {}
        self.opt: dict[int, list[float]] = {}
        self.start: float | None = None
        self.stamps: dict[int, float] = {}

    def phase(self, epoch: int) -> str:
        return "two" if self.start_two is not None and epoch >= self.start_two else "one"

    def poll(self) -> bool:
        evals, opt = parse_results(self.results_tail.new_text())
        for e, d in evals.items():
            self.evals.setdefault(e, d)
        for e, losses in opt.items():
            self.opt.setdefault(e, []).extend(losses)
        start, stamps = epoch_stamps(self.log_tail.new_text())
        self.start = start if self.start is None else self.start
        for e, t in stamps.items():
            self.stamps.setdefault(e, t)
        evals, opt, start, stamps = self.evals, self.opt, self.start, self.stamps
        if not evals:
            return False
        done = {e for e in evals if e in stamps or e < max(evals)}  # the log line follows the results line
        self.curve = tr.Curve()
        self.losses = {}
        for e in sorted(done):
            wall = (stamps[e] - start) if e in stamps and start is not None else float("nan")
            train = {"loss": sum(opt[e]) / len(opt[e])} if opt.get(e) else None
            self.curve.add(e + 1, wall, valid_errors(evals[e]), train=train)
            self.losses[e] = float(evals[e]["loss"])
            if not math.isfinite(self.losses[e]) and self.nan_epoch is None:
                self.nan_epoch = e
        if not self.curve.epochs:
            return False
        last = self.curve.epochs[-1]
        elapsed = last["wall_s"] if math.isfinite(last["wall_s"]) else 0.0
        tr.write_progress(self.job_dir, last["epoch"], self.protocol, elapsed, last["valid"].get("forces"))
        self.prune()
        if self.nan_epoch is not None:
            return self.checkpoints_complete()
        # patience within the current phase (stage two's loss is another function: its count starts afresh)
        phase = self.phase(max(self.losses))
        losses = [self.losses[e] for e in sorted(self.losses) if self.phase(e) == phase]
        if self.protocol.epochs_without_improvement(losses) >= self.protocol.patience:
            self.converged = True
        # the deadline falls before the next poll: stop now, between two checkpoint writes
        self.deadline = time.perf_counter() - self.started > self.protocol.max_seconds - 1.0
        # never interrupt MACE while it writes a checkpoint (the next write is a whole epoch later)
        return (self.converged or self.deadline) and self.checkpoints_complete()

    def checkpoint_files(self) -> dict[tuple[int, bool], Path]:
        files = {}
        for path in self.ck_dir.glob(f"{self.tag}_epoch-*.pt"):
            m = _CKPT.search(path.name)
            if m:
                files[(int(m.group(1)), bool(m.group(2)))] = path
        return files

    def checkpoints_complete(self) -> bool:
        return all(_complete(path) for path in self.checkpoint_files().values())

    def prune(self, final: bool = False) -> dict[str, int]:
        """Keep, per phase, the two newest checkpoints of epochs with a finite logged loss (MACE saves only
        improving epochs, so the newest is the best) and any newer one still to be logged; at the end keep the
        newest complete one only (a file cut by the stop, or a non-finite epoch's, is dropped). Returns
        {phase: MACE epoch of the newest checkpoint kept}."""
        kept = {}
        files = self.checkpoint_files()
        for swa in (False, True):
            epochs = sorted(e for e, s in files if s == swa)
            good = [e for e in epochs if math.isfinite(self.losses.get(e, float("nan")))]
            if final:
                good = [e for e in good if _complete(files[(e, swa)])][-1:]
            if not good:
                continue
            kept["two" if swa else "one"] = good[-1]
            for e in epochs:
                if e < good[0] or (final and e > good[-1]):
                    files[(e, swa)].unlink(missing_ok=True)
        return kept


def _complete(path: Path) -> bool:
    """Whether a checkpoint (torch's zip format) is completely written: a cut file has no zip directory."""
    import zipfile

    try:
        with zipfile.ZipFile(path):
            return True
    except (OSError, zipfile.BadZipFile):
        return False
