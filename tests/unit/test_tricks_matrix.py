"""Every fine-tuning trick, alone and all compatible ones together, on every model family: two real
optimizer steps through FinetuneModule and a Lightning Trainer (tiny random models, in-memory
batches), and the combinations that cannot apply refused on a strict build."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader
from transformers import (
    AlbertConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    DebertaV2Config,
    ElectraConfig,
    GPT2Config,
    RobertaConfig,
    RoFormerConfig,
)

from nlpx.errors import UserError
from nlpx.finetune.module import FinetuneModule
from nlpx.objectives.classify import SequenceClassification
from nlpx.tricks.base import TaskInfo
from nlpx.tricks.stack import TrickStack

CONF = Path(__file__).resolve().parents[2] / "conf" / "trick"
VOCAB, PAD, LABELS, STEPS = 100, 0, 2, 2
SIZE = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 37, "max_position_embeddings": 64}
CONFIGS = {
    "bert": lambda n: BertConfig(**SIZE, num_labels=n),
    "roberta": lambda n: RobertaConfig(**SIZE, num_labels=n, pad_token_id=1),
    "deberta-v2": lambda n: DebertaV2Config(**SIZE, num_labels=n),
    "electra": lambda n: ElectraConfig(**SIZE, num_labels=n, embedding_size=32),
    "albert": lambda n: AlbertConfig(**SIZE, num_labels=n, embedding_size=16),
    "roformer": lambda n: RoFormerConfig(**SIZE, num_labels=n, embedding_size=32),
    "gpt2": lambda n: GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_inner=37, n_positions=64,
                                 num_labels=n, pad_token_id=PAD, bos_token_id=2, eos_token_id=2),
}
FAMILIES = list(CONFIGS)

ALL = ["llrd", "multi_dropout", "lora", "asl", "rdrop", "sift", "awp"]

# passes per optimizer step (forward, backward) each trick adds to the plain (1, 1)
EXTRA_PASSES = {"rdrop": (1, 0), "sift": (2, 1), "awp": (1, 1)}

RUN = OmegaConf.create({
    "seed": 0,
    "task": {"name": "toy", "select": "last"},
    "optim": {"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "warmup": 0.0},
    "trainer": {"accumulate_grad_batches": 1, "gradient_clip_val": 1.0},
})


def trick_cfg(names: list[str]):
    cfg = {name: OmegaConf.load(CONF / f"{name}.yaml") for name in names}
    if "awp" in cfg:  # attack from the first step (the default waits for epoch 1)
        cfg["awp"].adv_start, cfg["awp"].adv_start_unit = 0, "step"
    return OmegaConf.create(cfg)


def batches(n: int = STEPS, size: int = 4, length: int = 8) -> list[dict]:
    gen = torch.Generator().manual_seed(7)
    out = []
    for _ in range(n):
        ids = torch.randint(2, VOCAB, (size, length), generator=gen)
        mask = torch.ones_like(ids)
        ids[-1, -3:], mask[-1, -3:] = PAD, 0  # one padded row
        out.append({"input_ids": ids, "attention_mask": mask,
                    "labels": torch.arange(size) % LABELS})
    return out


class Losses(L.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(float(trainer.callback_metrics["train/loss"]))


def fit(family: str, names: list[str]):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(CONFIGS[family](LABELS))
    stack = TrickStack.build(trick_cfg(names), TaskInfo(family, LABELS), strict=True)
    assert stack.names == [n for n in ALL if n in names]
    model = stack.prepare_model(model).train()
    params = dict(model.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    module = FinetuneModule(RUN, model, SequenceClassification(RUN, LABELS), None,
                            total_steps=STEPS, steps_per_epoch=STEPS, tricks=stack)
    losses = Losses()
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[losses])
    trainer.fit(module, train_dataloaders=DataLoader(batches(), batch_size=None))
    assert trainer.global_step == STEPS
    assert len(losses.values) == STEPS and all(math.isfinite(v) for v in losses.values), losses.values
    assert all(math.isfinite(v) for v in stack.metrics().values()), stack.metrics()
    forwards = 1 + sum(EXTRA_PASSES.get(n, (0, 0))[0] for n in names)
    backwards = 1 + sum(EXTRA_PASSES.get(n, (0, 0))[1] for n in names)
    assert module.pass_totals == [STEPS * forwards, STEPS * backwards, STEPS]
    for n, p in params.items():
        changed = not torch.equal(p.detach(), before[n])
        assert changed is p.requires_grad, f"{n}: {'frozen but moved' if changed else 'trainable but unchanged'}"
    return stack, module


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ALL)
def test_each_trick_alone_trains(family, name):
    if name == "sift" and family == "gpt2":
        pytest.skip("sift does not apply to gpt2 (refused: test_invalid_combinations_refused_on_strict_build)")
    stack, _ = fit(family, [name])
    if name == "awp":
        assert stack.get("awp").attacks == STEPS
    if name == "asl":  # adaptive gamma- moved once per batch
        assert stack.get("asl").gamma_neg != 4.0


@pytest.mark.parametrize("family", FAMILIES)
def test_all_compatible_tricks_together_train(family):
    names = [n for n in ALL if not (n == "sift" and family == "gpt2")]
    stack, _ = fit(family, names)
    assert stack.get("awp").attacks == STEPS


@pytest.mark.parametrize("family", FAMILIES)
def test_invalid_combinations_refused_on_strict_build(family):
    with pytest.raises(UserError, match="asl"):
        TrickStack.build(trick_cfg(["asl"]), TaskInfo(family, 1), strict=True)  # regression
    if family == "gpt2":
        with pytest.raises(UserError, match="sift"):
            TrickStack.build(trick_cfg(["sift"]), TaskInfo(family, LABELS), strict=True)
        with pytest.raises(UserError, match="sift"):
            TrickStack.build(trick_cfg(ALL), TaskInfo(family, LABELS), strict=True)
    else:
        assert TrickStack.build(trick_cfg(["sift"]), TaskInfo(family, LABELS), strict=True).names == ["sift"]
