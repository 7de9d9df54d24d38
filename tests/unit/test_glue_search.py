"""The recipe search of `nlpx eval glue`: the grid, its names, its checks and the winner."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.eval import glue_search
from nlpx.eval.glue_search import config_name, configurations, pick, resolve_space


def test_every_combination_in_the_space_order():
    space = {"optim.lr": [1e-4, 3e-4], "budget.max_epochs": [3, 10]}
    assert configurations(space) == [["optim.lr=0.0001", "budget.max_epochs=3"],
                                     ["optim.lr=0.0001", "budget.max_epochs=10"],
                                     ["optim.lr=0.0003", "budget.max_epochs=3"],
                                     ["optim.lr=0.0003", "budget.max_epochs=10"]]
    assert configurations({}) == [[]]
    assert config_name(["optim.lr=0.0001", "trick.llrd.decay=0.8"]) == "optim.lr=0.0001,trick.llrd.decay=0.8"
    assert config_name(["trick=[awp,rdrop]"]) == "trick=-awp,rdrop-"


def test_the_best_median_wins_first_on_a_tie_and_nan_loses():
    runs = {"a": [{"score": 0.5}, {"score": 0.9}, {"score": 0.6}],   # median 0.6 (mean 0.667)
            "b": [{"score": 0.7}, {"score": 0.1}, {"score": 0.65}],  # median 0.65 (mean 0.483)
            "c": [{"score": math.nan}, {"score": math.nan}]}
    winner, table = pick(runs)
    assert winner == "b" and [row["median"] for row in table][:2] == [0.6, 0.65] and math.isnan(table[2]["median"])
    assert pick({"x": [{"score": 0.5}], "y": [{"score": 0.5}]})[0] == "x"


def eval_cfg(*overrides):
    return compose(["eval=glue", *overrides]).eval


@pytest.mark.parametrize("width,lrs", [(128, [1e-4, 3e-4, 1e-3]), (256, [1e-4, 3e-4, 1e-3]),
                                       (384, [5e-5, 1e-4, 3e-4]), (768, [2e-5, 3e-5, 5e-5]),
                                       (1024, [2e-5, 3e-5, 5e-5])])
def test_auto_takes_the_space_for_the_checkpoints_width(width, lrs, monkeypatch, tmp_path):
    monkeypatch.setattr(glue_search, "hidden_size", lambda path: width)
    space, origin = resolve_space(eval_cfg("eval.search=auto"), tmp_path, [])
    assert space == {"optim.lr": lrs} and origin == f"auto: hidden size {width}"


def test_no_search_and_an_explicit_space(tmp_path):
    assert resolve_space(eval_cfg(), tmp_path, []) == ({}, None)
    ev = eval_cfg("eval.search={optim.lr:[1e-4,3e-4],budget.max_epochs:[3,10]}")
    assert resolve_space(ev, tmp_path, ["optim.warmup=0.1"]) == \
        ({"optim.lr": [1e-4, 3e-4], "budget.max_epochs": [3, 10]}, "eval.search")


@pytest.mark.parametrize("search,given,message", [
    ("{optim.lr:[1e-4]}", ["optim.lr=2e-5"], "eval.search: optim.lr is also given as optim.lr=...; a setting has one home"),
    ("{model.size:[tiny]}", [], "eval.search: model.size is not a fine-tuning setting (searchable: optim.*, budget.*"),
    ("{optim.lr:[]}", [], "eval.search: optim.lr needs a non-empty list of values"),
    ("{optim.lr:1e-4}", [], "eval.search: optim.lr needs a non-empty list of values"),
    ("best", [], "eval.search=best: give auto, null or a mapping"),
])
def test_bad_spaces_are_user_errors(search, given, message, tmp_path):
    with pytest.raises(UserError) as e:
        resolve_space(eval_cfg(f"eval.search={search}"), tmp_path, given)
    assert str(e.value).startswith(message), str(e.value)


def test_the_auto_spaces_are_documented_in_the_config():
    spaces = OmegaConf.to_container(eval_cfg().search_spaces)
    assert [s["max_hidden"] for s in spaces] == [256, 512, None]
