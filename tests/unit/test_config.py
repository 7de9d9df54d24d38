"""The config tree: every option of every group composes; presets; user errors are one line."""

import pytest

from nlpx.config import compose, conf_dir, group_options
from nlpx.errors import UserError


def test_groups_are_the_documented_ones():
    groups = group_options()
    assert groups["model"] == ["albert", "bert", "bigbird", "deberta", "electra", "gau", "gpt2", "longformer", "roberta",
                               "roformer", "xlnet"]
    assert groups["objective"] == ["angle", "angle_latest", "classify", "clm", "esimcse", "mlm", "mlm_nsp", "plm",
                                   "qa", "rtd", "simbert", "simcse", "sop", "span", "tag", "unilm"]
    assert groups["data"] == ["clue", "fewclue", "glue", "pairs", "synthetic", "text", "triples"]
    assert groups["task"] == [f"clue/{t}" for t in sorted(
        ["afqmc", "tnews", "iflytek", "cmnli", "ocnli", "cluewsc2020", "csl"])] + [f"fewclue/{t}" for t in sorted(
        ["eprstmt", "bustm", "ocnli", "csldcp", "tnews", "iflytek", "csl", "cluewsc", "chid"])] + [
        f"glue/{t}" for t in sorted(["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"])] + \
        ["multilabel/jsonl", "multilabel/synthetic", "ner/cluener", "ner/conll", "ner/conll2003",
         "ner/span_json", "qa/cmrc2018", "qa/squad"]  # not the _default files
    assert groups["eval"] == ["clue", "fewclue", "glue", "mlm", "ner", "qa", "sts"]
    assert groups["trainer"] == ["cpu", "ddp", "gpu"]
    assert groups["logger"] == ["csv", "none", "wandb"]
    assert groups["trick"] == ["asl", "awp", "llrd", "lora", "multi_dropout", "rdrop", "sift"]
    assert groups["optim"] == ["angle", "finetune", "pretrain", "seq2seq", "simcse"]
    assert groups["budget"] == ["embedding", "finetune", "pretrain"]


def test_defaults():
    cfg = compose([])
    assert (cfg.model.name, cfg.objective.name, cfg.data.name, cfg.trainer.name, cfg.logger.name) == \
        ("bert", "mlm", "synthetic", "cpu", "wandb")
    assert dict(cfg.trick) == {}
    assert cfg.logger.mode == "offline"
    assert cfg.objective.masking.ratio == 0.15 and cfg.objective.masking.mode == "dynamic"


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in group_options().items() for o in opts])
def test_every_option_composes(group, option):
    cfg = compose([f"{group}={option}"], runnable=False)  # trainer=gpu composes on a CPU machine
    if group == "trick":  # each trick lands under trick.<name>
        assert list(cfg.trick) == [option]
    elif group in ("optim", "budget"):  # the option's own values, over the schema's keys
        from omegaconf import OmegaConf

        raw = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{option}.yaml"), resolve=False)
        own = {k: v for k, v in raw.items() if k != "defaults" and not str(v).startswith("${")}
        assert set(cfg[group]) == ({"lr", "warmup", "weight_decay", "betas", "eps"} if group == "optim" else
                                   {"max_steps", "max_epochs", "max_tokens", "max_time"})
        assert {k: cfg[group][k] for k in own} == own
    else:
        assert cfg[group].name == option.rpartition("/")[2]


def test_task_shorthand_and_shared_task_defaults():
    cfg = compose(["objective=classify", "task=rte", "optim.lr=3e-5"])
    assert cfg.task.name == "rte" and cfg.budget.max_epochs == 10 and cfg.optim.lr == 3e-5
    assert compose(["objective=classify", "task=glue/sst2"]).budget.max_epochs == 3  # the fine-tuning preset
    assert compose(["objective=classify", "task=cola"]).optim.warmup == 0.1
    assert compose([]).task is None  # pretraining has no task


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
    assert compose(["trainer=gpu"], runnable=False).trainer.precision == "bf16-mixed"
    t = compose(["trainer=ddp"], runnable=False).trainer
    assert (t.strategy, t.precision, t.accelerator) == ("ddp", "bf16-mixed", "gpu")


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(UserError) as e:
        compose(["objective=mlmx"])
    assert str(e.value) == ("objective=mlmx: unknown option for group 'objective' (valid: angle, angle_latest, "
                            "classify, clm, esimcse, mlm, mlm_nsp, plm, qa, rtd, simbert, simcse, sop, span, tag, unilm)")


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(UserError) as e:
        compose(["objective.masking.ratioo=0.2"])
    msg = str(e.value)
    assert msg.startswith("objective.masking.ratioo: unknown config key")
    assert "keep, mask, mode, random, ratio" in msg and "\n" not in msg


def test_conf_dir_is_the_repo_tree_in_an_editable_install():
    assert (conf_dir() / "config.yaml").is_file()


# (overrides, optim.lr, optim.warmup, optim.eps, budget.max_steps, budget.max_epochs): each command's
# presets, and the user's value over any preset
PRESETS = [
    ([], 2.0e-3, 0.06, 1e-6, 800, None),  # pretraining: the tiny size's lr, BERT's Adam eps
    (["model.size=base"], 1.0e-4, 0.06, 1e-6, 800, None),
    (["objective=classify", "task=sst2"], 2.0e-5, 0.1, 1e-8, None, 3),
    (["objective=classify", "task=rte"], 2.0e-5, 0.1, 1e-8, None, 10),  # ELECTRA's 10 epochs
    (["objective=classify", "task=multilabel/synthetic"], 5.0e-5, 0.1, 1e-8, None, 5),
    (["objective=classify", "task=multilabel/synthetic", "trick=[lora]"], 4.0e-4, 0.1, 1e-8, None, 5),
    (["objective=classify", "task=rte", "trick=[lora]", "optim.lr=1e-3", "budget.max_epochs=2"],
     1e-3, 0.1, 1e-8, None, 2),
    (["objective=esimcse"], 3.0e-5, 0.0, 1e-8, 800, 1),
    (["objective=angle_latest"], 2.0e-5, 0.0, 1e-8, 800, 1),
    (["objective=classify", "task=cola", "optim=pretrain"], 2.0e-3, 0.06, 1e-6, None, 3),
]


@pytest.mark.parametrize("overrides,lr,warmup,eps,steps,epochs", PRESETS)
def test_optimizer_and_budget_have_one_home_with_presets(overrides, lr, warmup, eps, steps, epochs):
    cfg = compose(overrides)
    assert (cfg.optim.lr, cfg.optim.warmup, cfg.optim.eps) == (lr, warmup, eps)
    assert (cfg.budget.max_steps, cfg.budget.max_epochs) == (steps, epochs)


def test_a_family_sets_its_adam_betas_for_pretraining_only():
    assert list(compose(["model=roberta"]).optim.betas) == [0.9, 0.98]
    assert list(compose(["model=roberta", "objective=classify", "task=sst2"]).optim.betas) == [0.9, 0.999]


@pytest.mark.parametrize("old", sorted(__import__("nlpx.config", fromlist=["RENAMED"]).RENAMED))
def test_an_old_key_names_its_new_home(old):
    from nlpx.config import RENAMED

    with pytest.raises(UserError) as e:
        compose(["objective=classify", "task=sst2", f"{old}=3"])
    assert str(e.value) == (f"{old}: this setting is now {RENAMED[old]} (one home per setting); "
                            f"give {RENAMED[old]}=3")


@pytest.mark.parametrize("override,message", [
    ("optim.lr=abc", "optim.lr=abc: Value 'abc' of type 'str' could not be converted to Float"),
    ("budget.max_steps=1.5", "budget.max_steps=1.5: Value '1.5' of type 'float' could not be converted to Integer"),
])
def test_the_typed_schemas_reject_a_wrong_type_in_one_line(override, message):
    with pytest.raises(UserError) as e:
        compose([override])
    assert str(e.value) == message


def test_a_run_saved_before_optim_and_budget_resumes_with_its_settings():
    from omegaconf import OmegaConf

    from nlpx.recipes.pretrain import upgraded

    old = OmegaConf.create({
        "model": {"size": "mini", "optimizer": {"lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 0.01}},
        "trainer": {"name": "cpu", "max_steps": 50, "max_time": None, "max_tokens": 900, "warmup": 0.1}})
    new = upgraded(old)
    assert OmegaConf.to_container(new) == {
        "model": {"size": "mini"}, "trainer": {"name": "cpu"},
        "optim": {"lr": 1e-3, "warmup": 0.1, "weight_decay": 0.01, "betas": [0.9, 0.98], "eps": 1e-6},
        "budget": {"max_steps": 50, "max_time": None, "max_tokens": 900, "max_epochs": None}}
    assert upgraded(new) is new  # a current config is left as it is


@pytest.mark.parametrize("override,unread,command,message", [
    ("trainer.val_check_interval=5", "FINETUNING_UNREAD", "fine-tuning",
     "trainer.val_check_interval=5: not read by fine-tuning: fine-tuning evaluates dev after every epoch "
     "(budget.max_epochs sets how many)"),
    ("trainer.checkpoint_every_n_steps=5", "FINETUNING_UNREAD", "nlpx eval glue",
     "trainer.checkpoint_every_n_steps=5: not read by nlpx eval glue: checkpoints are pretraining's "
     "(a run that fine-tunes keeps none)"),
    ("+trainer.limit_val_batches=2", "EMBEDDING_UNREAD", "embedding training",
     "+trainer.limit_val_batches=2: not read by embedding training: embedding training evaluates on every "
     "validation example"),
    ("data.batch_size=8", "EMBEDDING_UNREAD", "embedding training",
     "data.batch_size=8: not read by embedding training: embedding training batches objective.batch_size "
     "sentences (or pairs, triples)"),
])
def test_a_key_the_command_does_not_read_is_an_error(override, unread, command, message):
    import nlpx.config
    from nlpx.config import refuse_unread

    table = getattr(nlpx.config, unread)
    with pytest.raises(UserError) as e:
        refuse_unread(["model.pooling=mean", override], table, command)
    assert str(e.value) == message
    refuse_unread(["trainer.log_every_n_steps=1", "trainer.val_check_intervals=3"], table, command)  # read / other keys


def test_defaults_carry_the_papers_hyperparameters():
    """A researcher copies alpha and dup_rate from the papers: R-Drop's KL is summed over the batch
    as its official code, ESimCSE draws the repetition count as the paper."""
    assert compose(["objective=classify", "trick=[rdrop]"]).trick.rdrop.reduction == "sum"
    assert compose(["objective=esimcse"]).objective.dup_sampling == "paper"
