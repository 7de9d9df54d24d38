"""Training budgets (steps, wall time, tokens) and the warm-up + linear-decay LR schedule over them.

The schedule is a function of budget progress in [0, 1], so a time or token budget decays the
learning rate to zero exactly when the budget runs out (as in cramming), not at a guessed step.
"""

from __future__ import annotations

from dataclasses import dataclass

from nlpx.errors import UserError

UNBOUNDED_BATCHES = 2**40  # the stream length when only time or tokens bound the run


def parse_duration(value) -> float | None:
    """Seconds from a number or Lightning's "DD:HH:MM:SS" string."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    parts = str(value).split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise UserError(f"budget.max_time={value}: give seconds or DD:HH:MM:SS") from None
    scale = [86400, 3600, 60, 1][-len(nums):]
    return sum(n * s for n, s in zip(nums, scale))


@dataclass(frozen=True)
class Budget:
    max_steps: int | None
    max_seconds: float | None
    max_tokens: int | None
    warmup: float

    @classmethod
    def from_cfg(cls, budget, optim) -> "Budget":
        """A pretraining budget from cfg.budget (steps, time, tokens) and optim.warmup."""
        if budget.max_epochs is not None:
            raise UserError(f"budget.max_epochs={budget.max_epochs}: pretraining reads one stream of batches, "
                            "not epochs; give budget.max_steps, budget.max_time or budget.max_tokens")
        steps = int(budget.max_steps) if budget.max_steps not in (None, -1) else None
        seconds = parse_duration(budget.max_time)
        tokens = int(budget.max_tokens) if budget.max_tokens else None
        if steps is None and seconds is None and tokens is None:
            raise UserError("budget: set a budget: budget.max_steps, budget.max_time or budget.max_tokens")
        warmup = float(optim.warmup)
        if warmup >= 1:  # given in steps
            if steps is None:
                raise UserError("optim.warmup: steps need budget.max_steps; give a fraction < 1")
            warmup = warmup / steps
        return cls(steps, seconds, tokens, warmup)

    def progress(self, step: int, seconds: float, tokens: int) -> float:
        fractions = [0.0]
        if self.max_steps:
            fractions.append(step / self.max_steps)
        if self.max_seconds:
            fractions.append(seconds / self.max_seconds)
        if self.max_tokens:
            fractions.append(tokens / self.max_tokens)
        return min(max(fractions), 1.0)

    def lr_factor(self, progress: float) -> float:
        if progress < self.warmup:
            return progress / self.warmup
        return max(0.0, (1.0 - progress) / max(1.0 - self.warmup, 1e-12))


def check_epoch_budget(budget, command: str) -> None:
    """Fine-tuning and embedding training run whole epochs, capped by steps: budget.max_time and
    budget.max_tokens are pretraining's, an error here rather than ignored."""
    for key in ("max_time", "max_tokens"):
        if budget.get(key) is not None:
            raise UserError(f"budget.{key}={budget[key]}: {command} reads budget.max_epochs and budget.max_steps, "
                            f"not budget.{key}")
    epochs = budget.max_epochs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"budget.max_epochs={epochs}: {command} needs a positive number of epochs")
