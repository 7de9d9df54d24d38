"""cfg.trainer -> lightning.Trainer with the run directory's checkpoints and loggers."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

from nlpx.run.callbacks import AtomicCheckpointIO, PeriodicCheckpoint, PlainProgress, StopOnSignal
from nlpx.run.schedule import parse_duration


def _max_time(value):
    """Lightning takes a timedelta; nlpx accepts seconds or DD:HH:MM:SS."""
    from datetime import timedelta

    seconds = parse_duration(value)
    return None if seconds is None else timedelta(seconds=seconds)


def build_trainer(cfg, run_dir: Path, loggers, *, total_batches: int, monitor: str) -> L.Trainer:
    t, budget = cfg.trainer, cfg.budget
    ckpt_dir = run_dir / "checkpoints"
    last = PeriodicCheckpoint(ckpt_dir, every_steps=int(t.checkpoint_every_n_steps),
                              every_minutes=t.get("checkpoint_every_minutes"), keep=int(t.get("keep_checkpoints") or 1))
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min", save_top_k=1,
                           auto_insert_metric_name=False, enable_version_counter=False)
    terminal = sys.stdout.isatty()
    progress = RichProgressBar() if terminal else PlainProgress(int(t.log_every_n_steps))
    # validate every N steps across the one long "epoch" of the data stream (see StreamSampler)
    val_every = max(1, min(int(t.val_check_interval), total_batches))
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=int(t.num_nodes), strategy=t.strategy,
        precision=t.precision, max_steps=int(budget.max_steps) if budget.max_steps else -1, max_epochs=-1,
        max_time=_max_time(budget.max_time), gradient_clip_val=t.gradient_clip_val,
        accumulate_grad_batches=int(t.accumulate_grad_batches), val_check_interval=val_every,
        check_val_every_n_epoch=None, limit_val_batches=t.limit_val_batches,
        log_every_n_steps=int(t.log_every_n_steps), num_sanity_val_steps=0,
        logger=loggers, callbacks=[last, best, progress, StopOnSignal(ckpt_dir / "last.ckpt")],
        enable_progress_bar=terminal,
        enable_model_summary=False, default_root_dir=str(run_dir), use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()], deterministic=bool(t.deterministic))


def build_finetune_trainer(cfg, run_dir: Path, loggers, *, max_epochs: int, max_steps: int | None,
                           gradient_clip_val: float | None = None, accumulate: int = 1) -> L.Trainer:
    """Epoch-based: dev evaluation after every epoch; no checkpoint files (see FinetuneModule).
    Clipping and accumulation are Lightning's only for modules with automatic optimization (the
    embedding objectives); FinetuneModule does both itself."""
    t = cfg.trainer
    terminal = sys.stdout.isatty()
    progress = RichProgressBar() if terminal else PlainProgress(int(t.log_every_n_steps))
    return L.Trainer(
        accelerator=t.accelerator, devices=1, num_nodes=1, precision=t.precision, max_epochs=max_epochs,
        max_steps=max_steps or -1, check_val_every_n_epoch=1, gradient_clip_val=gradient_clip_val,
        accumulate_grad_batches=accumulate,
        log_every_n_steps=int(t.log_every_n_steps), num_sanity_val_steps=0, logger=loggers,
        callbacks=[progress, StopOnSignal()], enable_progress_bar=terminal, enable_checkpointing=False,
        enable_model_summary=False, default_root_dir=str(run_dir), use_distributed_sampler=False,
        deterministic=bool(t.deterministic))
