"""The LightningModule base every nlpx module extends (pretraining, fine-tuning, embedding
training): dropout seeded by (seed, batch position), AdamW with BERT's no-decay rule and a
per-step schedule, the training clock and the lr log. A subclass adds its step, says what its
optimizer reads (`optimizer_settings`) and how its learning rate moves (`scheduler`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
import lightning as L
import torch


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (dropout RNG must be a function of seed and position)."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
    return h >> 1


def decays(name: str, p) -> bool:
    """BERT's rule: no weight decay on biases and LayerNorm weights (the 1-D tensors), nor on a
    matrix named a bias (XLNet's r_w_bias, r_r_bias, r_s_bias: its reference excludes "bias" names)."""
    return p.ndim >= 2 and not name.endswith("bias")


def decay_groups(named_parameters, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for n, p in named_parameters:
        if p.requires_grad:
            (decay if decays(n, p) else no_decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]


@dataclass(frozen=True)
class OptimizerSettings:
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float

    @classmethod
    def from_cfg(cls, optim) -> "OptimizerSettings":
        """From cfg.optim, the one home of these settings for every command."""
        return cls(lr=float(optim.lr), weight_decay=float(optim.weight_decay), betas=tuple(optim.betas),
                   eps=float(optim.eps))


def warmup_steps(warmup: float, total_steps: int) -> int:
    """optim.warmup as optimizer steps: a fraction (< 1) of the total, rounded up as transformers'
    Trainer does, or a number of steps (>= 1)."""
    return math.ceil(warmup * total_steps) if warmup < 1 else int(warmup)


class RunModule(L.LightningModule):
    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)
        self.batches_seen = 0  # training batches, counted by the subclass's step; checkpointed where it resumes
        self.train_seconds = 0.0  # batch to batch, validation left out
        self._last_batch_end: float | None = None

    # -- what a subclass says -----------------------------------------------------------------
    def optimizer_settings(self) -> OptimizerSettings:
        raise NotImplementedError

    def scheduler(self, optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """How the learning rate moves, stepped once per optimizer step."""
        raise NotImplementedError

    def param_groups(self, settings: OptimizerSettings) -> list[dict]:
        return decay_groups(self.named_parameters(), settings.weight_decay)

    # -- shared -------------------------------------------------------------------------------
    def configure_optimizers(self):
        settings = self.optimizer_settings()
        groups = self.param_groups(settings)
        # torch's fused AdamW: one kernel over each tensor instead of a dozen elementwise passes
        # (on a CPU the for-loop default took ~5% of a mini model's step). Lightning refuses
        # gradient clipping with a fused optimizer under mixed precision (it would unscale fp16
        # gradients itself), so there the multi-tensor (foreach) form, the next fastest.
        mixed = "mixed" in str(self.trainer.precision) if self._trainer is not None else False
        supported = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        kind = {} if not supported else {"foreach": True} if mixed else {"fused": True}
        optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps, **kind)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx):
        # dropout masks (and RTD's samples) depend on (seed, batch position) only: a resumed run
        # repeats them exactly
        torch.manual_seed(mix_seed(self.seed, self.batches_seen))
        if self._last_batch_end is None:
            self._last_batch_end = time.perf_counter()

    def clock(self) -> float:
        """Seconds since the previous training batch ended (or this one started, after a pause),
        added to train_seconds: call once per batch, at its end."""
        now = time.perf_counter()
        dt = now - self._last_batch_end if self._last_batch_end is not None else 0.0
        self._last_batch_end = now
        self.train_seconds += dt
        return dt

    def pause_clock(self) -> None:
        """Time from here to the next training batch (validation) is not training time."""
        self._last_batch_end = None

    def on_validation_epoch_start(self):
        self.pause_clock()

    def log_lr(self) -> None:
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
