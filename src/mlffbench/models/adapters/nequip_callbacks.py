"""Lightning callbacks for the NequIP adapter, imported by ``nequip-train`` (hydra ``_target_``) inside the nequip
environment only.

- ``RelativeEarlyStopping``: Lightning's ``EarlyStopping`` (patience, stop on a non-finite monitor) with the
  protocol's *relative* ``min_delta`` (Lightning's is absolute): an epoch improves when
  ``loss < best - min_delta * |best|`` (``mlffbench.models.training.Training.improved``).
- ``ProtocolRecorder``: the per-epoch curve (the epoch's train and validation metrics as nequip logs them, the
  learning rate it trained with, wall seconds since the start of training) in a JSON file, the job's
  ``progress.json``, a stop on a non-finite training loss, and at the end what stopped the training and which
  checkpoint is the best one.
- ``StopBelowLearningRate``: TM23's end of training (the plateau scheduler has cut the learning rate below
  ``min_lr``); opt-in (params.min_lr > 0).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

#: the prefixes of nequip's epoch metrics (NequIPLightningModule: train_loss_epoch/<name>, val0_epoch/<name> ...)
EPOCH_PREFIXES = ("train_loss_epoch/", "train_metric_epoch/", "val0_epoch/")


class RelativeEarlyStopping(EarlyStopping):
    """``EarlyStopping`` (mode min) whose ``min_delta`` is relative to the best value so far."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0, **kwargs):
        super().__init__(monitor=monitor, patience=patience, min_delta=0.0, mode="min", check_finite=True,
                         **kwargs)
        self.relative_min_delta = float(min_delta)

    def _evaluate_stopping_criteria(self, current: torch.Tensor):
        best = float(self.best_score)
        # Lightning tests ``current - self.min_delta < best`` (min_delta stored negated for mode min)
        self.min_delta = -self.relative_min_delta * abs(best) if math.isfinite(best) else 0.0
        return super()._evaluate_stopping_criteria(current)


class StopBelowLearningRate(Callback):
    """TM23 IV.C.2: training ends once the plateau scheduler has cut the learning rate below ``min_lr``."""

    def __init__(self, min_lr: float = 1e-5):
        self.min_lr = float(min_lr)
        self.fired = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        if lrs and max(lrs) < self.min_lr:
            trainer.should_stop = True
            self.fired = True


class ProtocolRecorder(Callback):
    """Writes ``path`` (JSON: ``epochs`` = one row per epoch with nequip's raw epoch metrics, ``lr``, ``wall_s``;
    at the end ``stopped_by`` (nan | patience | min_lr | max_epochs | max_minutes | interrupted),
    ``best_model_path`` and ``best_model_score`` of the trainer's ModelCheckpoint) and, when ``progress_dir`` is
    given, ``progress_dir/progress.json`` after each epoch. A non-finite training loss stops the training (the
    epoch still validates, so its row shows the non-finite validation loss; the best checkpoint stays the last
    finite one).

    An epoch's training metrics are logged by the LightningModule's ``on_train_epoch_end``, after the
    (non-monitoring) callbacks' hook, so a row is completed at the start of the next epoch or at the end."""

    def __init__(self, path: str, max_epochs: int, max_minutes: float, progress_dir: str | None = None,
                 forces_key: str = "val0_epoch/forces_mae", forces_scale: float = 1000.0):
        self.path = Path(path)
        self.max_epochs = int(max_epochs)
        self.max_minutes = float(max_minutes)
        self.progress_dir = progress_dir
        self.forces_key = forces_key
        self.forces_scale = float(forces_scale)
        self.rows: list[dict] = []
        self.pending: dict | None = None
        self.nan_epoch: int | None = None
        self.stopped_by: str | None = None
        self._start = time.perf_counter()

    # -- hooks -------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            if self.nan_epoch is None:
                self.nan_epoch = trainer.current_epoch + 1
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # after this epoch's validation, before the module logs the epoch's training metrics (see class doc)
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        self.pending = {"epoch": trainer.current_epoch + 1, "wall_s": time.perf_counter() - self._start,
                        "lr": float(lrs[0]) if lrs else None}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._flush(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._flush(trainer)
        self._finish(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._flush(trainer)
        if self.stopped_by is None:
            self.stopped_by = "nan" if self.nan_epoch is not None else "interrupted"
        self._write(trainer)

    # -- records -----------------------------------------------------------------------------------------------
    def _flush(self, trainer) -> None:
        if self.pending is None:
            return
        row, self.pending = self.pending, None
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(EPOCH_PREFIXES):
                v = float(value.detach().cpu()) if isinstance(value, torch.Tensor) else float(value)
                metrics[key] = v if math.isfinite(v) else None if math.isnan(v) else v
        row["metrics"] = metrics
        self.rows.append(row)
        self._write(trainer)
        if self.progress_dir:
            from mlffbench.models.training import Training, write_progress

            forces = metrics.get(self.forces_key)
            protocol = Training(max_epochs=self.max_epochs, max_minutes=self.max_minutes,
                                patience=1)  # only the budget matters for progress
            write_progress(self.progress_dir, row["epoch"], protocol, row["wall_s"],
                           None if forces is None or not math.isfinite(forces) else forces * self.forces_scale)

    def _finish(self, trainer) -> None:
        stopping = [cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)]
        reasons = {cb.stopping_reason for cb in stopping}
        if self.nan_epoch is not None or EarlyStoppingReason.NON_FINITE_METRIC in reasons:
            self.stopped_by = "nan"
        elif EarlyStoppingReason.PATIENCE_EXHAUSTED in reasons:
            self.stopped_by = "patience"
        elif any(getattr(cb, "fired", False) for cb in trainer.callbacks if isinstance(cb, StopBelowLearningRate)):
            self.stopped_by = "min_lr"
        elif len(self.rows) >= self.max_epochs:
            self.stopped_by = "max_epochs"
        else:  # Lightning's Timer (Trainer max_time)
            self.stopped_by = "max_minutes"
        self._write(trainer)

    def _write(self, trainer) -> None:
        ckpt = trainer.checkpoint_callback
        score = getattr(ckpt, "best_model_score", None)
        blob = {"epochs": self.rows, "stopped_by": self.stopped_by, "nan_epoch": self.nan_epoch,
                "best_model_path": getattr(ckpt, "best_model_path", "") or "",
                "best_model_score": None if score is None else float(score)}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(blob))
        os.replace(tmp, self.path)
