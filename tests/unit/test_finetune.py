"""Fine-tuning pieces: the classification loss, batches, prediction order, LR schedule, subset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nlpx.data.encode import Encoded
from nlpx.finetune.data import Batches
from nlpx.finetune.module import FinetuneModule, in_row_order
from nlpx.finetune.subset import train_subset
from nlpx.objectives.classify import SequenceClassification


def test_cross_entropy_by_hand():
    obj = SequenceClassification(None, num_labels=2)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # -log softmax: log(1 + e^-2) = 0.126928, log(1 + e^-1) = 0.313262
    assert obj.loss(logits, torch.tensor([0, 1])).item() == pytest.approx((0.126928 + 0.313262) / 2, abs=1e-6)
    assert obj.predictions(logits).tolist() == [0, 1]


def test_regression_is_mean_squared_error():
    obj = SequenceClassification(None, num_labels=1)
    logits = torch.tensor([[1.0], [3.0]])
    assert obj.loss(logits, torch.tensor([2.0, 2.5])).item() == pytest.approx(((1 - 2) ** 2 + 0.5 ** 2) / 2)
    assert obj.predictions(logits).tolist() == [1.0, 3.0]


def test_batches_pad_to_the_longest_member_and_keep_rows():
    enc = Encoded([np.array([5, 6, 7]), np.array([5, 8]), np.array([5, 9, 9, 9])],
                  [np.array([0, 0, 1]), np.array([0, 1]), np.array([0, 0, 1, 1])], np.array([1, 0, 1]))
    b = Batches(enc, pad_id=0)([2, 1])
    assert b["input_ids"].tolist() == [[5, 9, 9, 9], [5, 8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert b["token_type_ids"].tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]
    assert b["labels"].tolist() == [1, 0] and b["rows"].tolist() == [2, 1]


def test_batches_without_segment_ids_or_labels():
    b = Batches(Encoded([np.array([1, 2])], None, None), pad_id=1)([0])
    assert set(b) == {"input_ids", "attention_mask", "rows"}


def test_predictions_go_back_to_file_order():
    outputs = [(torch.tensor([2, 0]), torch.tensor([7, 8])), (torch.tensor([1]), torch.tensor([9]))]
    assert in_row_order(outputs, 3).tolist() == [8, 9, 7]
    with pytest.raises(RuntimeError, match="covered 2 of 3"):
        in_row_order([(torch.tensor([2, 0]), torch.tensor([7, 8]))], 3)


def test_subset_is_fixed_by_its_seed_and_sorted():
    a = train_subset(100, 10, seed=0)
    assert len(a) == 10 and list(a) == sorted(a) and len(set(a)) == 10
    assert a.tolist() == train_subset(100, 10, seed=0).tolist()
    assert a.tolist() != train_subset(100, 10, seed=1).tolist()
    assert train_subset(5, None).tolist() == train_subset(5, 9).tolist() == [0, 1, 2, 3, 4]


def test_linear_warmup_then_linear_decay():
    cfg = OmegaConf.create({"seed": 0, "task": {"name": "sst2", "select": "best"},
                            "optim": {"lr": 1.0, "weight_decay": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "warmup": 0.1}})
    module = FinetuneModule(cfg, torch.nn.Linear(2, 2), None, None, total_steps=20, steps_per_epoch=10)
    opt = module.configure_optimizers()
    optimizer, scheduler = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    # ceil(0.1 * 20) = 2 warm-up steps, then down to 0 at step 20
    lrs = []
    for _ in range(21):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.0, 0.5, 1.0, 17 / 18])
    assert lrs[20] == 0.0 and lrs[11] == pytest.approx(9 / 18)
    # weight decay on the weight matrix only, not on the bias
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 1]


@pytest.mark.parametrize("select,scores,kept", [
    ("best", [0.5, 0.7, 0.7, 0.6], 1),   # the first of equal best scores
    ("last", [0.5, 0.7, 0.7, 0.6], 3),
    ("best", [math.nan, 0.1, 0.0], 1),    # a nan score (constant STS-B prediction) never wins
    ("best", [math.nan, math.nan], 0),
])
def test_kept_evaluation(select, scores, kept):
    cfg = OmegaConf.create({"seed": 0, "task": {"name": "sst2", "select": select}})
    module = FinetuneModule(cfg, torch.nn.Linear(1, 1), None, None, total_steps=1, steps_per_epoch=1)
    records = [{"score": s, "step": i} for i, s in enumerate(scores)]
    for r in records:
        if module._keep(r):
            module.kept = r
    assert module.kept is records[kept]
