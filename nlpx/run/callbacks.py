"""Trainer plumbing: atomic checkpoint files, stopping on a signal and a plain progress printer
for non-terminals."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from nlpx.run import interrupt


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file, then rename: a kill mid-save keeps the previous checkpoint,
    and a failed save (a full disk) leaves no temporary file behind."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        path = str(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                sink = _Sink(f)
                try:
                    torch.save(checkpoint, sink)
                except (RuntimeError, OSError):
                    if sink.error is not None:  # torch may report a failed write as "unexpected pos"
                        raise OSError(sink.error.errno, sink.error.strerror, path) from None
                    raise
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Sink(io.RawIOBase):
    """The checkpoint file as torch.save writes it, keeping the OSError of a failed write (torch's
    own message for it does not say what went wrong)."""

    def __init__(self, f):
        super().__init__()
        self.f, self.error = f, None

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


class PeriodicCheckpoint(Callback):
    """checkpoints/step-<N>.ckpt every `every_steps` optimizer steps and every `every_minutes` of
    wall time, whichever comes first; the newest `keep` are kept and last.ckpt (what resume reads)
    is a hard link to the newest (a copy where links are not possible). Lightning's ModelCheckpoint
    takes a step interval or a time interval, not both, hence this callback."""

    def __init__(self, dirpath, every_steps: int, every_minutes: float | None = None, keep: int = 1):
        self.dirpath, self.every_steps, self.keep = Path(dirpath), int(every_steps), max(1, int(keep))
        self.every_seconds = None if every_minutes is None else float(every_minutes) * 60
        self.last_time, self.last_step = time.monotonic(), -1

    def on_train_start(self, trainer, pl_module) -> None:
        self.last_time = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        step = trainer.global_step
        due = step % self.every_steps == 0 or (
            self.every_seconds is not None and time.monotonic() - self.last_time >= self.every_seconds)
        if due and step != self.last_step:
            self.save(trainer)

    def save(self, trainer) -> None:
        step = trainer.global_step
        path = self.dirpath / f"step-{step:08d}.ckpt"
        trainer.save_checkpoint(path)  # collective; AtomicCheckpointIO writes it atomically
        self.last_step, self.last_time = step, time.monotonic()
        if not trainer.is_global_zero:
            return
        tmp = self.dirpath / f".last.ckpt.tmp-{os.getpid()}"
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, self.dirpath / "last.ckpt")
        for old in sorted(self.dirpath.glob("step-*.ckpt"))[:-self.keep]:
            old.unlink(missing_ok=True)


class StopOnSignal(Callback):
    """Ends training after the step in which SIGINT or SIGTERM arrived (nlpx/run/interrupt.py):
    saves `checkpoint` (a path; None for runs that keep none) and raises Interrupted with the
    optimizer step."""

    def __init__(self, checkpoint=None):
        self.checkpoint = checkpoint

    def on_train_start(self, trainer, pl_module) -> None:
        interrupt.reclaim()
        interrupt.listen(True)

    def on_validation_start(self, trainer, pl_module) -> None:
        interrupt.reclaim()

    def on_train_end(self, trainer, pl_module) -> None:
        interrupt.listen(False)

    def on_exception(self, trainer, pl_module, exception) -> None:
        interrupt.listen(False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        name = interrupt.received()
        if name is None or (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # stop only between optimizer steps
        if self.checkpoint is not None:
            trainer.save_checkpoint(self.checkpoint)
        raise interrupt.Interrupted(name, step=int(trainer.global_step))


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
