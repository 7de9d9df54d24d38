"""Ctrl-C (SIGINT) and SIGTERM (what SLURM sends before it kills a job): a training run stops at
the end of the current optimizer step, saves a checkpoint where it resumes from (pretraining),
and the CLI says where it stopped and the command that continues it (exit 130). Outside a
training loop the signal stops the command at once. A second Ctrl-C stops at once too.

Lightning's own Ctrl-C handling exits 1 and saves nothing, so nlpx installs its handlers for the
duration of a command (`handling()`) and stops the loop from a callback (StopOnSignal in
nlpx/run/callbacks.py). Kept free of torch and Lightning: the CLI imports it for every command.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_state = {"received": None, "listening": 0, "active": False}


class Interrupted(BaseException):
    """A run stopped by a signal. A BaseException, as KeyboardInterrupt is: `except Exception`
    (an ablation recording a failed cell, Lightning's cleanup) lets it through."""

    def __init__(self, signame: str, step: int | None = None, resume: str | None = None):
        super().__init__(signame)
        self.signame, self.step, self.resume = signame, step, resume

    def message(self) -> str:
        where = f" at step {self.step}" if self.step is not None else ""
        then = f"; continue with: {self.resume}" if self.resume else ""
        return f"interrupted by {self.signame}{where}{then}"


def listen(on: bool) -> None:
    """A training loop starts (True) or stops (False) taking signals at its step boundaries."""
    _state["listening"] = max(0, _state["listening"] + (1 if on else -1))


def received() -> str | None:
    return _state["received"]


def _handler(signum, frame) -> None:
    name = signal.Signals(signum).name
    if _state["listening"] and _state["received"] is None:
        _state["received"] = name  # StopOnSignal ends the step, saves and raises
        return
    raise Interrupted(name)


@contextlib.contextmanager
def handling():
    """SIGINT and SIGTERM handled as above while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _state.update(received=None, listening=0, active=True)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _state.update(received=None, listening=0, active=False)


def reclaim() -> None:
    """Lightning puts its own SIGTERM handler in front of ours when a fit or validate starts; it
    ends the run with a SystemExit of status 0 and no checkpoint. Within `handling()`, ours goes
    back (called by StopOnSignal as training or validation starts)."""
    if _state["active"] and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)
