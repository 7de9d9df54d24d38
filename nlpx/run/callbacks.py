"""Trainer plumbing: atomic checkpoint files and a plain progress printer for non-terminals."""

from __future__ import annotations

import os
import sys
import time

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file, then rename: a kill mid-save keeps the previous checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = str(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)


def _fmt(value: float) -> str:
    """4 decimals, or 3 significant digits for small values such as a fine-tuning lr (2e-05)."""
    return f"{value:.3g}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


class PlainProgress(Callback):
    """One line every `every` steps and after each validation, for logs that are not a terminal."""

    def __init__(self, every: int):
        self.every = max(1, every)
        self.start = time.perf_counter()

    def _line(self, trainer, keys):
        metrics = trainer.callback_metrics
        parts = [f"{k} {_fmt(float(metrics[k]))}" for k in keys if k in metrics]
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else "?"
        elapsed = time.perf_counter() - self.start
        print(f"step {trainer.global_step}/{total} [{elapsed:.0f}s] " + "  ".join(parts),
              file=sys.stdout, flush=True)

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0 and (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            self._line(trainer, ["train/loss", "train/tokens_per_s", "lr"])

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._line(trainer, sorted(k for k in trainer.callback_metrics if k.startswith("val/")))
