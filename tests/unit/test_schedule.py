"""Budgets and the warm-up + linear-decay schedule, against hand-computed values."""

import pytest
from omegaconf import OmegaConf

from nlpx.errors import UserError
from nlpx.run.schedule import Budget, parse_duration


def budget(warmup=0.1, **kw):
    base = {"max_steps": None, "max_time": None, "max_tokens": None, "max_epochs": None}
    return Budget.from_cfg(OmegaConf.create({**base, **kw}), OmegaConf.create({"warmup": warmup}))


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
    with pytest.raises(UserError, match="budget.max_time"):
        parse_duration("ten minutes")


def test_a_budget_is_required():
    with pytest.raises(UserError, match="set a budget"):
        budget()


def test_pretraining_reads_no_epochs():
    with pytest.raises(UserError, match="budget.max_epochs=2: pretraining reads one stream of batches"):
        budget(max_steps=10, max_epochs=2)


@pytest.mark.parametrize("values,message", [
    ({"max_epochs": 3, "max_time": 60}, "budget.max_time=60: fine-tuning reads budget.max_epochs and budget.max_steps"),
    ({"max_epochs": 3, "max_tokens": 10}, "budget.max_tokens=10: fine-tuning reads budget.max_epochs"),
    ({"max_epochs": 0}, "budget.max_epochs=0: fine-tuning needs a positive number of epochs"),
    ({"max_epochs": None}, "budget.max_epochs=None: fine-tuning needs"),
])
def test_epoch_budgets_refuse_what_they_do_not_read(values, message):
    from nlpx.run.schedule import check_epoch_budget

    base = {"max_steps": None, "max_time": None, "max_tokens": None}
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        check_epoch_budget(OmegaConf.create({**base, **values}), "fine-tuning")
    check_epoch_budget(OmegaConf.create({**base, "max_epochs": 3, "max_steps": 5}), "fine-tuning")  # no error


def test_warmup_steps_are_a_fraction_rounded_up_or_a_count():
    from nlpx.run.module import warmup_steps

    assert [warmup_steps(0.1, n) for n in (20, 21, 9, 0)] == [2, 3, 1, 0]
    assert (warmup_steps(0.0, 50), warmup_steps(5, 50), warmup_steps(5.0, 3)) == (0, 5, 5)
