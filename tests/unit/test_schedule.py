"""Budgets and the warm-up + linear-decay schedule, against hand-computed values."""

import pytest
from omegaconf import OmegaConf

from nlpx.errors import UserError
from nlpx.run.schedule import Budget, parse_duration


def budget(**kw):
    base = {"max_steps": None, "max_time": None, "max_tokens": None, "warmup": 0.1}
    return Budget.from_cfg(OmegaConf.create({**base, **kw}))


def test_step_budget_schedule():
    b = budget(max_steps=100, warmup=10)  # 10 warm-up steps = 0.1 of the budget
    assert b.warmup == pytest.approx(0.1)
    factors = [b.lr_factor(b.progress(s, 0, 0)) for s in (0, 5, 10, 55, 100)]
    assert factors == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_time_and_token_budgets_drive_progress():
    b = budget(max_time="00:00:01:40", max_tokens=1000)  # 100 s
    assert b.max_seconds == 100.0
    assert b.progress(step=999, seconds=25, tokens=100) == pytest.approx(0.25)
    assert b.progress(step=0, seconds=10, tokens=500) == pytest.approx(0.5)
    assert b.progress(step=0, seconds=500, tokens=0) == 1.0


def test_durations():
    assert parse_duration("01:00:00:01") == 86401
    assert parse_duration(90) == 90.0
    assert parse_duration(None) is None
    with pytest.raises(UserError, match="trainer.max_time"):
        parse_duration("ten minutes")


def test_a_budget_is_required():
    with pytest.raises(UserError, match="set a budget"):
        budget()
