"""XLNet's permutation LM targets, orders and masks (nlpx/data/permutation.py): the mask rule
written out, and the attention constraint checked through a real XLNetLMHeadModel's gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpx.data.permutation import cls_last, perm_mask, plm_collate, plm_ranks, plm_targets


def test_the_mask_rule_written_out():
    # positions: CLS, a(target, rank 1), b, c(target, rank 0), SEP, pad
    ranks = torch.tensor([[-1, 1, -1, 0, -1, -1]])
    padding = torch.tensor([[False, False, False, False, False, True]])
    m = perm_mask(ranks, padding)[0]
    sees = {i: [j for j in range(6) if m[i, j] == 0] for i in range(5)}
    assert sees[1] == [0, 2, 3, 4]      # target a: the context and c (earlier), not itself
    assert sees[3] == [0, 2, 4]         # target c (first): the context only
    assert sees[0] == sees[2] == sees[4] == [0, 2, 4]  # context: no target, no padding


def test_cls_last_is_xlnets_layout():
    # [CLS] a b [SEP] c [SEP] -> a b [SEP] c [SEP] [CLS], segments 0 0 0 1 1 2
    framed = {"input_ids": np.array([2, 10, 11, 3, 12, 3]), "token_type_ids": np.array([0, 0, 0, 0, 1, 1]),
              "word_start": np.array([True, True, False, True, True, True])}
    out = cls_last(framed)
    assert out["input_ids"].tolist() == [10, 11, 3, 12, 3, 2]
    assert out["token_type_ids"].tolist() == [0, 0, 0, 1, 1, 2]
    assert out["word_start"].tolist() == [True, False, True, True, True, True]
    assert cls_last({"input_ids": np.array([2, 10, 3])})["token_type_ids"].tolist() == [0, 0, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targets_meet_the_goal_and_skip_special_tokens(seed):
    rng = np.random.default_rng(seed)
    special = np.zeros(62, bool)
    special[[0, 30, 61]] = True
    targets = plm_targets(special, None, k=6, max_span=5, rng=rng)
    assert targets.sum() == round(59 / 6) and not targets[special].any()
    again = plm_targets(special, None, k=6, max_span=5, rng=np.random.default_rng(seed))
    assert np.array_equal(targets, again)
    ranks = plm_ranks(targets, np.random.default_rng(seed))
    assert sorted(ranks[targets].tolist()) == list(range(int(targets.sum()))) and (ranks[~targets] == -1).all()


def test_a_target_depends_on_exactly_its_predecessors_in_the_order():
    from transformers import XLNetConfig, XLNetLMHeadModel

    torch.manual_seed(0)
    model = XLNetLMHeadModel(XLNetConfig(vocab_size=50, d_model=16, n_layer=3, n_head=2, d_inner=32,
                                         dropout=0.0, mem_len=None)).eval()
    ids = [2, 10, 11, 12, 13, 14, 15, 16, 17, 3]
    ranks = [-1, -1, 2, -1, 0, -1, 1, -1, -1, -1]   # targets at 2, 4, 6 in the order 4, 6, 2
    batch = plm_collate([{"input_ids": ids, "token_type_ids": [0] * 10, "ranks": ranks},
                         {"input_ids": ids[:6], "token_type_ids": [0] * 6, "ranks": [-1] * 5 + [0]}], 0)
    # rows in rank order; the short example's row pads with -100
    assert batch["labels"][0].tolist() == [ids[4], ids[6], ids[2]] and batch["labels"][1].tolist() == [ids[5], -100, -100]
    embeds = model.transformer.word_embedding(batch["input_ids"]).detach().requires_grad_(True)
    # with and without attention_mask: perm_mask alone must also keep the padding out
    for mask in (batch["attention_mask"], None):
        out = model(inputs_embeds=embeds, attention_mask=mask, perm_mask=batch["perm_mask"],
                    target_mapping=batch["target_mapping"])
        order = {4: [], 6: [4], 2: [4, 6]}  # each target's earlier targets
        for row, pos in enumerate([4, 6, 2]):
            grad, = torch.autograd.grad(out.logits[0, row].sum(), embeds, retain_graph=True)
            touched = {j for j in range(10) if grad[0, j].abs().sum() > 0}
            context = {j for j in range(10) if ranks[j] == -1}
            assert touched == context | set(order[pos]), (pos, touched)
        # the padded example's one target (position 5): its context 0..4, not itself, no padding
        grad, = torch.autograd.grad(out.logits[1, 0].sum(), embeds, retain_graph=True)
        assert {j for j in range(10) if grad[1, j].abs().sum() > 0} == {0, 1, 2, 3, 4}


class Script:
    """A generator whose draws are written out, so plm_targets' spans can be computed by hand."""

    def __init__(self, grams, lefts):
        self.grams, self.lefts = list(grams), list(lefts)

    def choice(self, a, p=None, size=None, replace=True):
        assert size is None, "no top-up expected"
        return self.grams.pop(0)

    def integers(self, n):
        left = self.lefts.pop(0)
        assert 0 <= left < n
        return left


def test_target_spans_are_whole_words_drawn_as_xlnets_sampler_draws_them():
    # [CLS] w1 .. w9 [SEP], every word two tokens: word starts at 1, 3, ..., 17; 18 tokens, K=6: goal 3
    special = np.zeros(20, bool)
    special[[0, 19]] = True
    starts = np.zeros(20, bool)
    starts[[0, *range(1, 19, 2), 19]] = True
    # a 2-gram from offset 3 of its 12-token window: words 3-4 and 5-6, overshooting the goal by a piece
    t = plm_targets(special, starts, k=6, max_span=5, rng=Script([2], [3]))
    assert np.flatnonzero(t).tolist() == [3, 4, 5, 6]
    # a 1-gram at offset 0 (the [CLS] is skipped to the next word start), then the next window starts
    # at 3 + (6 - 0) = 9 and offset 5 lands inside a word: the span moves on to the word start 15
    t = plm_targets(special, starts, k=6, max_span=5, rng=Script([1, 1], [0, 5]))
    assert np.flatnonzero(t).tolist() == [1, 2, 15, 16]
    # the n-gram length is cut to what the goal still needs: 5 drawn, 3 left -> one 3-word span
    t = plm_targets(special, np.ones(20, bool), k=6, max_span=5, rng=Script([5], [2]))
    assert np.flatnonzero(t).tolist() == [2, 3, 4]


class Framed:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return 4

    def get(self, idx, rng):
        ids = np.array([2, *range(10, 10 + self.n), 3])
        return {"input_ids": ids, "token_type_ids": np.zeros(ids.size, np.int64), "word_start": np.ones(ids.size, bool)}


class Tok:
    all_special_ids = [0, 1, 2, 3, 4]


@pytest.mark.parametrize("k", [3, 6])
def test_permuted_examples_read_k_and_repeat_exactly_where_they_should(k):
    from nlpx.data.permutation import PermutedExamples

    def ranks(static, epoch, idx=1, seed=0):
        ds = PermutedExamples(Framed(60), Tok(), k=k, max_span=1, seed=seed, stream=0, static=static)
        return ds[(epoch, idx)]["ranks"]

    first = ranks(False, 0)
    assert (first >= 0).sum() == 60 // k  # 1-grams: exactly the goal
    assert np.array_equal(first, ranks(False, 0))  # the same key, the same order
    assert not np.array_equal(first, ranks(False, 1))  # dynamic: a new order each epoch
    assert np.array_equal(ranks(True, 0), ranks(True, 5))  # static: one per example
    assert not np.array_equal(first, ranks(False, 0, seed=1)) and not np.array_equal(first, ranks(False, 0, idx=2))


def test_permuted_examples_are_in_xlnets_layout_with_special_tokens_in_the_context():
    from nlpx.data.permutation import PermutedExamples

    ex = PermutedExamples(Framed(3), Tok(), k=2, max_span=1, seed=0, stream=0, static=False)[(0, 0)]
    assert ex["input_ids"].tolist() == [10, 11, 12, 3, 2] and ex["token_type_ids"].tolist() == [0, 0, 0, 0, 2]
    assert (ex["ranks"][-2:] == -1).all() and (ex["ranks"] >= 0).sum() == 2  # round(3 / 2)


def test_the_objectives_loss_is_xlnets_own_on_the_same_batch():
    from omegaconf import OmegaConf
    from transformers import XLNetConfig, XLNetLMHeadModel

    from nlpx.models.xlnet import XlnetFamily
    from nlpx.objectives.plm import PermutationLM

    torch.manual_seed(0)
    model = XLNetLMHeadModel(XLNetConfig(vocab_size=50, d_model=16, n_layer=2, n_head=2, d_inner=32, dropout=0.0,
                                         mem_len=None)).eval()
    batch = plm_collate([{"input_ids": [10, 11, 12, 13, 3, 2], "token_type_ids": [0, 0, 0, 0, 0, 2],
                          "ranks": [1, -1, 0, -1, -1, -1]},
                         {"input_ids": [14, 15, 3, 2], "token_type_ids": [0, 0, 0, 2], "ranks": [-1, 0, -1, -1]}], 0)
    family = XlnetFamily(OmegaConf.create({"pretrained": None, "position_embedding": "relative"}))
    ours = PermutationLM(OmegaConf.create({}), family)(model, batch)
    hf = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
               attention_mask=batch["attention_mask"], perm_mask=batch["perm_mask"],
               target_mapping=batch["target_mapping"], labels=batch["labels"])
    assert ours["_plm_count"] == 3
    torch.testing.assert_close(ours["loss"], hf.loss, rtol=1e-6, atol=1e-6)
    rows = batch["labels"] != -100
    assert ours["plm_acc"] == (hf.logits[rows].argmax(-1) == batch["labels"][rows]).float().mean()
