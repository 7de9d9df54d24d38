"""The config tree: every option of every group composes; presets; user errors are one line."""

import pytest

from nlpx.config import compose, conf_dir, group_options
from nlpx.errors import UserError


def test_groups_are_the_documented_ones():
    groups = group_options()
    assert groups["model"] == ["albert", "bert", "deberta", "electra", "gpt2", "roberta", "roformer"]
    assert groups["objective"] == ["angle", "angle_latest", "classify", "clm", "esimcse", "mlm", "mlm_nsp", "rtd",
                                   "simcse", "sop", "span"]
    assert groups["data"] == ["glue", "pairs", "synthetic", "text", "triples"]
    assert groups["task"] == [f"glue/{t}" for t in sorted(
        ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"])] + \
        ["multilabel/jsonl", "multilabel/synthetic"]  # not the _default files
    assert groups["eval"] == ["glue", "sts"]
    assert groups["trainer"] == ["cpu", "ddp", "gpu"]
    assert groups["logger"] == ["csv", "none", "wandb"]
    assert groups["trick"] == ["asl", "awp", "llrd", "lora", "multi_dropout", "rdrop", "sift"]


def test_defaults():
    cfg = compose([])
    assert (cfg.model.name, cfg.objective.name, cfg.data.name, cfg.trainer.name, cfg.logger.name) == \
        ("bert", "mlm", "synthetic", "cpu", "wandb")
    assert dict(cfg.trick) == {}
    assert cfg.logger.mode == "offline"
    assert cfg.objective.masking.ratio == 0.15 and cfg.objective.masking.mode == "dynamic"


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in group_options().items() for o in opts])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    if group == "trick":  # each trick lands under trick.<name>
        assert list(cfg.trick) == [option]
    else:
        assert cfg[group].name == option.rpartition("/")[2]


def test_task_shorthand_and_shared_task_defaults():
    cfg = compose(["objective=classify", "task=rte", "task.lr=3e-5"])
    assert cfg.task.name == "rte" and cfg.task.epochs == 10 and cfg.task.lr == 3e-5
    assert compose(["task=glue/sst2"]).task.epochs == 3  # the shared default
    assert compose(["task=cola"]).task.warmup_ratio == 0.1
    assert "task" not in compose([])  # pretraining has no task


def test_classify_implies_glue_data_unless_data_is_given():
    assert compose(["objective=classify", "task=sst2"]).data.name == "glue"
    assert compose(["objective=classify", "task=sst2", "data=synthetic"]).data.name == "synthetic"
    assert compose([]).data.name == "synthetic"


def test_objectives_select_their_data_through_hydra_unless_data_is_given():
    from nlpx.config import expand_shorthands

    # the objective's own defaults list overrides the data group: the command line is left alone
    assert expand_shorthands(["objective=classify", "task=sst2"]) == ["objective=classify", "task=glue/sst2"]
    assert compose(["objective=angle"]).data.name == "pairs"
    assert compose(["objective=angle_latest"]).data.name == "pairs"
    assert compose(["objective=angle", "data=text"]).data.name == "text"
    assert compose(["data=triples", "objective=angle_latest"]).data.name == "triples"
    assert compose(["data=text", "objective=classify", "task=sst2"]).data.name == "text"
    assert compose(["objective=simcse"]).data.name == "synthetic"
    assert compose(["objective=classify", "task=multilabel/synthetic"]).data.name == "glue"


def test_shorthand_applies_to_each_sweep_value():
    from nlpx.config import expand_shorthands

    assert expand_shorthands(["task=sst2,cola", "model.size=mini"]) == \
        ["task=glue/sst2,glue/cola", "model.size=mini"]


@pytest.mark.parametrize("size,layers,hidden,heads", [("tiny", 2, 128, 2), ("mini", 4, 256, 4),
                                                      ("small", 4, 512, 8), ("base", 12, 768, 12)])
def test_size_presets(size, layers, hidden, heads):
    m = compose([f"model.size={size}"]).model
    assert (m.num_hidden_layers, m.hidden_size, m.num_attention_heads, m.intermediate_size) == \
        (layers, hidden, heads, 4 * hidden)


def test_a_preset_field_can_be_overridden():
    m = compose(["model.size=mini", "model.num_hidden_layers=3"]).model
    assert (m.num_hidden_layers, m.hidden_size) == (3, 256)


def test_mlm_nsp_inherits_masking_and_uses_segment_pairs():
    o = compose(["objective=mlm_nsp", "objective.masking.ratio=0.3"]).objective
    assert (o.format, o.nsp_negative_prob, o.masking.ratio) == ("segment_pair_nsp", 0.5, 0.3)
    assert "nsp" not in o  # the head comes with the objective's class (needs_nsp), not a key


def test_gpu_trainers_use_bf16_and_ddp_strategy():
    assert compose(["trainer=gpu"]).trainer.precision == "bf16-mixed"
    t = compose(["trainer=ddp"]).trainer
    assert (t.strategy, t.precision, t.accelerator) == ("ddp", "bf16-mixed", "gpu")


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(UserError) as e:
        compose(["objective=mlmx"])
    assert str(e.value) == ("objective=mlmx: unknown option for group 'objective' (valid: angle, angle_latest, "
                            "classify, clm, esimcse, mlm, mlm_nsp, rtd, simcse, sop, span)")


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(UserError) as e:
        compose(["objective.masking.ratioo=0.2"])
    msg = str(e.value)
    assert msg.startswith("objective.masking.ratioo: unknown config key")
    assert "keep, mask, mode, random, ratio" in msg and "\n" not in msg


def test_conf_dir_is_the_repo_tree_in_an_editable_install():
    assert (conf_dir() / "config.yaml").is_file()
