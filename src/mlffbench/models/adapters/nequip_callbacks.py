"""Lightning callbacks for the NequIP adapter, imported by ``nequip-train`` (hydra ``_target_``) inside the nequip
environment only."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class StopBelowLearningRate(Callback):
    """TM23 IV.C.2: training ends once the plateau scheduler has cut the learning rate below ``min_lr``."""

    def __init__(self, min_lr: float = 1e-5):
        self.min_lr = float(min_lr)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        lrs = [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]
        if lrs and max(lrs) < self.min_lr:
            trainer.should_stop = True


class EpochTimer(Callback):
    """Wall seconds of each epoch (training + the end-of-epoch validation) written to ``path`` as a JSON list."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.path.write_text(json.dumps(self.seconds))
