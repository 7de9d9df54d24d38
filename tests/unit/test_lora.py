"""nlpx.tricks.lora on tiny random models of every supported family: what trains, what merges, what saves."""

from __future__ import annotations

import re

import peft
import pytest
import torch
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BigBirdConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    GPT2Config,
    LongformerConfig,
    RobertaConfig,
    RoFormerConfig,
    XLNetConfig,
)

from nlpx.errors import UserError
from nlpx.models.gau_modeling import GauConfig  # (importing nlpx.models registers GAU's Auto classes)
from nlpx.tricks import lora
from nlpx.tricks.lora import (
    HEADS,
    TARGETS,
    apply_lora,
    merged,
    save_adapter,
    trainable_counts,
)

SEED = 0
LABELS = 3
CFG = {"r": 4, "alpha": 8, "dropout": 0.1, "target_modules": None}
SIZE = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 37, "max_position_embeddings": 64, "num_labels": LABELS}
CONFIGS = {
    "bert": lambda: BertConfig(**SIZE),
    "roberta": lambda: RobertaConfig(**SIZE, pad_token_id=1),
    "deberta-v2": lambda: DebertaV2Config(**SIZE),
    "electra": lambda: ElectraConfig(**SIZE, embedding_size=32),
    "albert": lambda: AlbertConfig(**SIZE, embedding_size=16),
    "roformer": lambda: RoFormerConfig(**SIZE, embedding_size=32),
    "gpt2": lambda: GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_inner=37,
                               n_positions=64, num_labels=LABELS, pad_token_id=0),
    "longformer": lambda: LongformerConfig(**SIZE, pad_token_id=1, attention_window=4),
    "big_bird": lambda: BigBirdConfig(**SIZE, block_size=2, num_random_blocks=1),
    "xlnet": lambda: XLNetConfig(vocab_size=100, d_model=32, n_layer=2, n_head=2, d_inner=37, mem_len=None,
                                 num_labels=LABELS),
    "nlpx_gau": lambda: GauConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                                  qk_dim=16, max_position_embeddings=64, num_labels=LABELS),
}
FAMILIES = sorted(CONFIGS)
POOLED = [family for family in FAMILIES if any("pooler" in head for head in HEADS[family])]


def build(family: str):
    torch.manual_seed(SEED)
    return AutoModelForSequenceClassification.from_config(CONFIGS[family]())


def inputs() -> dict:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 100, (2, 9), generator=gen)  # no pad tokens: GPT-2 pools the last token
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@torch.no_grad()
def logits(model) -> torch.Tensor:
    model.eval()
    return model(**inputs()).logits


@torch.no_grad()
def train_like(peft_model, scale: float = 0.5) -> None:
    """What training does to the weights: lora_B leaves zero, the head copies move."""
    gen = torch.Generator().manual_seed(2)
    for _, param in sorted(peft_model.named_parameters()):
        if param.requires_grad:
            param.add_(scale * torch.randn(param.shape, generator=gen))


def lora_peft(family: str):
    return apply_lora(build(family), CFG)


def test_tables_cover_the_same_families():
    assert sorted(TARGETS) == sorted(HEADS) == FAMILIES
    assert POOLED == ["albert", "bert", "deberta-v2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_families_match_the_installed_transformers(family, monkeypatch):
    model = build(family)
    assert model.config.model_type == family
    names = {name for name, _ in model.named_modules()}
    for head in HEADS[family]:
        assert head in names
    for target in TARGETS[family]:
        assert sum(name.endswith("." + target) for name in names) >= 1
    # the rule for families not in HEADS agrees with the table (BigBird's classifier reads [CLS]
    # itself and leaves the pooler it builds unused: the rule keeps it, the table does not)
    expected = sorted(HEADS[family] + (["bert.pooler"] if family == "big_bird" else []))
    monkeypatch.delitem(lora.HEADS, family)
    assert sorted(lora._heads(model)) == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_only_lora_and_head_train(family):
    model = lora_peft(family)
    names = [name for name, _ in model.named_parameters()]
    heads = "|".join(re.escape(head) for head in HEADS[family])
    targets = "|".join(re.escape(target) for target in TARGETS[family])
    lora_re = re.compile(rf"\.({targets})\.lora_[AB]\.default\.weight$")
    head_re = re.compile(rf"^base_model\.model\.({heads})\.modules_to_save\.default\.")
    expected = {name for name in names if lora_re.search(name) or head_re.match(name)}
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    assert trainable == expected
    assert any("lora_A" in name for name in trainable) and any("lora_B" in name for name in trainable)
    for head in HEADS[family]:  # every head module (pooler included) has a trained copy
        assert any(name.startswith(f"base_model.model.{head}.modules_to_save.default.")
                   and name.endswith("weight") for name in trainable), head
    # the frozen originals the copies were taken from
    assert not any(".original_module." in name for name in trainable)

    seen, total, train = set(), 0, 0
    for _, param in model.named_parameters(remove_duplicate=False):
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
            train += param.numel() if param.requires_grad else 0
    assert trainable_counts(model) == (train, total)
    assert 0 < train / total < 1


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_equals_unmerged(family):
    model = lora_peft(family)
    cls = type(model.get_base_model())
    train_like(model)
    assert all(param.abs().sum() > 0 for name, param in model.named_parameters() if "lora_B" in name)
    model.double()  # merging reorders the additions: compared in float64, they agree to rounding
    before = logits(model)
    plain = merged(model)
    assert type(plain) is cls
    assert not any(isinstance(module, (peft.tuners.tuners_utils.BaseTunerLayer, peft.utils.other.ModulesToSaveWrapper))
                   for module in plain.modules())
    assert not any("lora" in name or "modules_to_save" in name or "original_module" in name
                   for name, _ in plain.named_parameters())
    after = logits(plain)
    torch.testing.assert_close(after, before, atol=1e-12, rtol=0)
    # the change is real: neither the base nor the head is what it was before training
    assert not torch.allclose(logits(build(family)).double(), after, atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_round_trip_keeps_the_head(family, tmp_path):
    model = lora_peft(family)
    train_like(model)
    expected = logits(model)
    save_adapter(model, tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    loaded = peft.PeftModel.from_pretrained(build(family), tmp_path)
    torch.testing.assert_close(logits(loaded), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", POOLED)
def test_round_trip_loses_an_unsaved_pooler(family, tmp_path, monkeypatch):
    """The pitfall HEADS guards against (peft #310, #1070): with peft's own SEQ_CLS default the pooler
    stays frozen, and a pooler trained anyway is not in the adapter, so the round trip test would fail."""
    monkeypatch.setitem(lora.HEADS, family, [h for h in HEADS[family] if "pooler" not in h])
    model = lora_peft(family)
    assert not any("pooler" in name for name, param in model.named_parameters() if param.requires_grad)
    pooler = [param for name, param in model.named_parameters() if "pooler" in name]
    assert pooler
    for param in pooler:  # what unfreezing the pooler by hand and training it would do
        param.requires_grad_(True)
    train_like(model)
    expected = logits(model)
    save_adapter(model, tmp_path)
    loaded = peft.PeftModel.from_pretrained(build(family), tmp_path)
    assert not torch.allclose(logits(loaded), expected, atol=1e-3)


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_model_saves_and_reloads(family, tmp_path):
    model = lora_peft(family)
    train_like(model)
    plain = merged(model)
    expected = logits(plain)
    plain.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(reloaded) is type(plain)
    torch.testing.assert_close(logits(reloaded), expected, atol=1e-6, rtol=0)


def distilbert():
    torch.manual_seed(SEED)
    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=37, num_labels=LABELS)
    return AutoModelForSequenceClassification.from_config(config)


def test_unknown_target_name():
    with pytest.raises(UserError, match=r"trick\.lora\.target_modules: 'querry'") as err:
        apply_lora(build("bert"), {**CFG, "target_modules": ["query", "querry"]})
    assert "\n" not in str(err.value) and "value" in str(err.value)


def test_target_peft_cannot_adapt():
    with pytest.raises(UserError, match=r"trick\.lora\.target_modules: 'attention' names BertAttention") as err:
        apply_lora(build("bert"), {**CFG, "target_modules": ["attention"]})
    assert "\n" not in str(err.value)


def test_unknown_model_type_needs_targets():
    with pytest.raises(UserError, match=r"trick\.lora\.target_modules.*'distilbert'") as err:
        apply_lora(distilbert(), CFG)
    message = str(err.value)
    assert "\n" not in message and all(family in message for family in FAMILIES)


def test_unknown_model_type_with_targets(tmp_path):
    model = apply_lora(distilbert(), {**CFG, "target_modules": ["q_lin", "v_lin"]})
    trainable = {name.split(".modules_to_save.")[0] for name, param in model.named_parameters()
                 if param.requires_grad and "lora_" not in name}
    assert trainable == {"base_model.model.pre_classifier", "base_model.model.classifier"}
    train_like(model)
    expected = logits(model)
    save_adapter(model, tmp_path)
    loaded = peft.PeftModel.from_pretrained(distilbert(), tmp_path)
    torch.testing.assert_close(logits(loaded), expected, atol=1e-6, rtol=0)


def test_hydra_config_node():
    """The trick's config arrives as an omegaconf node with keys of its own (lr, save_adapter)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"r": 8, "alpha": 8, "dropout": 0.1, "target_modules": ["query", "key"],
                            "lr": 4e-4, "save_adapter": True})
    model = apply_lora(build("bert"), cfg)
    adapted = {name.split(".")[-4] for name, _ in model.named_parameters() if ".lora_A." in name}
    assert adapted == {"query", "key"}
    assert model.peft_config["default"].r == 8
