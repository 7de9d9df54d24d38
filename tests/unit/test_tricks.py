"""Fine-tuning tricks (nlpx.tricks) one by one, on tiny random models: each against the formula
it documents, recomputed here by hand (AWP, multi-sample dropout, ASL, R-Drop, SiFT, LLRD) and the
composition rules of the stack."""

from __future__ import annotations

import copy
import math
import random
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class
import torch.nn.functional as F
from omegaconf import OmegaConf
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
from nlpx.tricks.asl import (
    ASL,
    AdaptiveGamma,
    asymmetric_loss,
    probability_gap,
    targets_of,
)
from nlpx.tricks.awp import AWP
from nlpx.tricks.base import Step, TaskInfo
from nlpx.tricks.consistency import rdrop_kl, sift_symmetric_kl
from nlpx.tricks.llrd import LLRD
from nlpx.tricks.multi_dropout import HEADS as MSD_HEADS
from nlpx.tricks.multi_dropout import MultiDropout
from nlpx.tricks.rdrop import RDrop
from nlpx.tricks.sift import SiFT
from nlpx.tricks.stack import TrickStack, selected

CONF = Path(__file__).resolve().parents[2] / "conf" / "trick"
VOCAB, PAD = 100, 0
SIZE = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 37, "max_position_embeddings": 64, "num_labels": 2}
CONFIGS = {
    "bert": lambda **kw: BertConfig(**{**SIZE, **kw}),
    "roberta": lambda **kw: RobertaConfig(**{**SIZE, "pad_token_id": 1, **kw}),
    "deberta-v2": lambda **kw: DebertaV2Config(**{**SIZE, **kw}),
    "electra": lambda **kw: ElectraConfig(**{**SIZE, "embedding_size": 32, **kw}),
    "albert": lambda **kw: AlbertConfig(**{**SIZE, "embedding_size": 16, **kw}),
    "roformer": lambda **kw: RoFormerConfig(**{**SIZE, "embedding_size": 32, **kw}),
    "gpt2": lambda **kw: GPT2Config(**{"vocab_size": VOCAB, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_inner": 37,
                                       "n_positions": 64, "num_labels": 2, "pad_token_id": PAD,
                                       "bos_token_id": 2, "eos_token_id": 2, **kw}),
}
FAMILIES = list(CONFIGS)
SIFT_FAMILIES = [f for f in FAMILIES if f != "gpt2"]


def build(family: str, seed: int = 0, **config):
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(CONFIGS[family](**config))


def cfg_of(name: str, **overrides):
    """conf/trick/<name>.yaml (the defaults a run gets) with some keys changed."""
    return OmegaConf.merge(OmegaConf.load(CONF / f"{name}.yaml"), OmegaConf.create(overrides))


def make_batch(labels=(0, 1, 1), length: int = 7) -> dict:
    """Ids from 2 (no pad, no RoBERTa padding id); the last row ends in two padding tokens."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(2, VOCAB, (len(labels), length), generator=gen)
    mask = torch.ones_like(ids)
    ids[-1, -2:], mask[-1, -2:] = PAD, 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(labels)}


def inputs_of(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask")}


def make_step(model, batch, loss_fn=F.cross_entropy, *, epoch: int = 0, global_step: int = 0) -> Step:
    return Step(model, batch, loss_fn, lambda loss: loss.backward(), epoch=epoch, global_step=global_step)


def last_non_pad(ids: torch.Tensor) -> torch.Tensor:
    """GPT-2's pooled position: the rightmost token that is not padding."""
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    return torch.where(ids != PAD, positions, -1).amax(-1)


# == AWP ============================================================================================
def attack_box(w0, g, adv_lr: float, adv_eps: float):
    """The documented perturbation: w0 + adv_lr * g/(||g||+1e-6) * (||w0||+1e-6), clamped to
    [w0 - eps|w0|, w0 + eps|w0|]; also the unclamped target, to see which elements the box held."""
    target = w0 + adv_lr * g / (g.norm() + 1e-6) * (w0.norm() + 1e-6)
    return torch.clamp(target, w0 - adv_eps * w0.abs(), w0 + adv_eps * w0.abs()), target


def weight_matrices(model, pattern: str = "weight") -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and re.search(pattern, n)}


@pytest.mark.parametrize("adv_lr", [1.0, 1e-4])
def test_awp_adds_the_gradient_at_the_perturbed_weights_and_restores_them(adv_lr):
    model = build("bert", num_hidden_layers=2).eval()  # dropout off: both passes deterministic
    reference = copy.deepcopy(model)
    batch = make_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    awp = AWP(cfg_of("awp", adv_lr=adv_lr, adv_start=0), TaskInfo("bert", 2))
    step = make_step(model, batch)
    step.backward(step.loss(step.forward()))
    clean = {n: p.grad.clone() for n, p in model.named_parameters()}

    awp.after_backward(step)

    assert (step.forwards, step.backwards, awp.attacks) == (2, 2, 1)
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]), f"{n} not restored bit-exactly"
    # by hand on a copy: perturb the attacked matrices along their own clean gradient, in the box
    attacked = weight_matrices(model)
    clamped = free = 0
    with torch.no_grad():
        for n, p in reference.named_parameters():
            if n in attacked:
                perturbed, target = attack_box(before[n], clean[n], adv_lr, 1e-3)
                p.copy_(perturbed)
                held = (perturbed != target)
                clamped, free = clamped + int(held.sum()), free + int((~held).sum())
    adv_loss = F.cross_entropy(reference(**inputs_of(batch)).logits, batch["labels"])
    names, params = zip(*reference.named_parameters())
    adv_grads = dict(zip(names, torch.autograd.grad(adv_loss, params)))
    assert step.parts["awp_loss"] == pytest.approx(float(adv_loss.detach()), rel=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, clean[n] + adv_grads[n], rtol=1e-5, atol=1e-8, msg=n)
    # the attack changes the gradient: the adversarial half is not the clean gradient again
    assert any(not torch.allclose(adv_grads[n], clean[n], rtol=1e-4, atol=1e-7) for n in attacked)
    assert awp.perturbation > 0
    if adv_lr < 1:  # a small step: the box holds some elements and leaves others where the step put them
        assert clamped > 0 and free > 0


def test_awp_two_attack_steps_by_hand():
    """adv_steps=2: the second step follows the first adversarial loss's gradient from the moved
    weights, inside the box around the weights saved before the first step; only the last
    adversarial loss is backpropagated."""
    adv_lr, eps = 3e-4, 1e-3
    model = build("bert").eval()
    reference = copy.deepcopy(model)
    batch = make_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    awp = AWP(cfg_of("awp", adv_lr=adv_lr, adv_eps=eps, adv_start=0, adv_steps=2), TaskInfo("bert", 2))
    step = make_step(model, batch)
    step.backward(step.loss(step.forward()))
    clean = {n: p.grad.clone() for n, p in model.named_parameters()}
    awp.after_backward(step)
    assert (step.forwards, step.backwards) == (3, 3)
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n])

    attacked = weight_matrices(model)
    params = dict(reference.named_parameters())

    def loss_and_grads():
        loss = F.cross_entropy(reference(**inputs_of(batch)).logits, batch["labels"])
        return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    grads = clean
    for _ in range(2):
        with torch.no_grad():
            for n in attacked:
                w, g, w0 = params[n], grads[n], before[n]
                target = w + adv_lr * g / (g.norm() + 1e-6) * (w.norm() + 1e-6)
                w.copy_(torch.clamp(target, w0 - eps * w0.abs(), w0 + eps * w0.abs()))
        grads = loss_and_grads()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, clean[n] + grads[n], rtol=1e-5, atol=1e-8, msg=n)


@pytest.mark.parametrize("pattern", ["weight", r"attention\.self"])
def test_awp_attacks_exactly_the_trainable_matrices_matching_the_filter(pattern):
    model = build("bert").eval()
    model.bert.embeddings.token_type_embeddings.weight.requires_grad_(False)  # frozen: never attacked
    awp = AWP(cfg_of("awp", adv_start=0, params=pattern), TaskInfo("bert", 2))
    expected = weight_matrices(model, pattern)
    assert expected and {n for n, _ in awp.attacked(model)} == expected
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in expected)
    assert "bert.embeddings.token_type_embeddings.weight" not in expected

    batch = make_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step = make_step(model, batch)
    step.backward(step.loss(step.forward()))
    still, broken = sorted(expected)[:2]  # tensors whose gradient is exactly 0, or not finite, are not moved
    dict(model.named_parameters())[still].grad.zero_()
    dict(model.named_parameters())[broken].grad[0, 0] = float("nan")
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args: seen.append({n: p.detach().clone() for n, p in module.named_parameters()}))
    awp.after_backward(step)
    handle.remove()
    assert len(seen) == 1  # the adversarial pass
    moved = {n for n, w in seen[0].items() if not torch.equal(w, before[n])}
    assert moved == expected - {still, broken}


@pytest.mark.parametrize("unit, adv_start, epoch, global_step, active", [
    ("epoch", 1, 0, 50, False), ("epoch", 1, 1, 0, True), ("step", 2, 5, 1, False), ("step", 2, 0, 2, True)])
def test_awp_waits_for_adv_start(unit, adv_start, epoch, global_step, active):
    model = build("bert").eval()
    awp = AWP(cfg_of("awp", adv_start=adv_start, adv_start_unit=unit), TaskInfo("bert", 2))
    step = make_step(model, make_batch(), epoch=epoch, global_step=global_step)
    step.backward(step.loss(step.forward()))
    clean = [p.grad.clone() for p in model.parameters()]
    awp.after_backward(step)
    same = all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), clean))
    assert same is not active
    assert (step.forwards, step.backwards, awp.attacks) == ((2, 2, 1) if active else (1, 1, 0))
    assert ("awp_loss" in step.parts) is active


def test_awp_rejects_unknown_unit_and_no_steps():
    with pytest.raises(UserError):
        AWP(cfg_of("awp", adv_start_unit="batch"), TaskInfo("bert", 2))
    with pytest.raises(UserError):
        AWP(cfg_of("awp", adv_steps=0), TaskInfo("bert", 2))


# == multi-sample dropout ===========================================================================
RATES = [0.1, 0.3, 0.5]


def output_layer(model, family):
    return model.get_submodule(MSD_HEADS[family][0])


@pytest.mark.parametrize("family", FAMILIES)
def test_multi_dropout_is_the_plain_head_in_eval(family):
    plain = build(family).eval()
    trick = MultiDropout(cfg_of("multi_dropout", rates=RATES), TaskInfo(family, 2))
    wrapped = trick.prepare_model(copy.deepcopy(plain)).eval()
    assert list(wrapped.state_dict()) == list(plain.state_dict())  # same modules, same names
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(wrapped(**inputs_of(batch)).logits, plain(**inputs_of(batch)).logits)
    assert trick.sampler.samples is None
    # the family's own last dropout is off (not applied twice)
    last = {"bert": "dropout", "albert": "dropout", "deberta-v2": "dropout", "roberta": "classifier.dropout",
            "electra": "classifier.dropout", "roformer": "classifier.dropout"}.get(family)
    if last is not None:
        assert plain.get_submodule(last).p > 0 and wrapped.get_submodule(last).p == 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("reduce", ["mean_loss", "mean_logits"])
def test_multi_dropout_training_loss_by_hand(family, reduce):
    trick = MultiDropout(cfg_of("multi_dropout", rates=RATES, reduce=reduce), TaskInfo(family, 2))
    model = trick.prepare_model(build(family)).train()
    head = output_layer(model, family)
    with torch.no_grad():  # logits well away from 0, so that the mean of losses and the loss of the mean differ
        head.weight.mul_(20.0)
    seen = {}

    def grab(module, args):  # the head's input and the RNG state its K masks are drawn from
        seen["x"], seen["rng"] = args[0].detach().clone(), torch.get_rng_state()

    head.register_forward_pre_hook(grab)
    batch = make_batch()
    torch.manual_seed(3)
    step = make_step(model, batch, TrickStack([trick]).loss_fn(F.cross_entropy))
    logits = step.forward()
    loss = step.loss(logits)

    torch.set_rng_state(seen["rng"])  # replay the K masks
    with torch.no_grad():
        samples = [head.forward(F.dropout(seen["x"], r, training=True)) for r in RATES]
    assert all(torch.equal(a, b) for a, b in zip(samples, trick.sampler.samples))
    if family == "gpt2":  # per-token scores: the model keeps the last non-padding token's row
        assert samples[0].ndim == 3
        samples = [s[torch.arange(len(s)), last_non_pad(batch["input_ids"])] for s in samples]
    mean_loss = torch.stack([F.cross_entropy(s, batch["labels"]) for s in samples]).mean()
    mean_logits = F.cross_entropy(torch.stack(samples).mean(0), batch["labels"])
    torch.testing.assert_close(logits.detach(), torch.stack(samples).mean(0), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(loss.detach(), mean_loss if reduce == "mean_loss" else mean_logits,
                               rtol=1e-6, atol=1e-7)
    assert not torch.isclose(mean_loss, mean_logits, rtol=1e-3, atol=0)  # the two reductions differ here
    loss.backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_multi_dropout_exports_the_plain_family_model(family):
    plain = build(family)
    trick = MultiDropout(cfg_of("multi_dropout", rates=RATES), TaskInfo(family, 2))
    wrapped = trick.prepare_model(copy.deepcopy(plain)).train()
    batch = make_batch()
    wrapped(**inputs_of(batch))  # a training forward: the head holds its samples
    exported = trick.export_model(wrapped).eval()
    assert type(exported) is type(plain)
    assert list(exported.state_dict()) == list(plain.state_dict())
    assert [(n, type(m)) for n, m in exported.named_modules()] == [(n, type(m)) for n, m in plain.named_modules()]

    def dropouts(model):
        return [(n, type(m), m.p) for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]

    assert dropouts(exported) == dropouts(plain)
    fresh = AutoModelForSequenceClassification.from_config(plain.config).eval()
    fresh.load_state_dict(exported.state_dict())  # strict: the plain class takes it as it is
    with torch.no_grad():
        assert torch.equal(fresh(**inputs_of(batch)).logits, plain.eval()(**inputs_of(batch)).logits)


def test_multi_dropout_rejects_bad_rates_and_reduce():
    with pytest.raises(UserError):
        MultiDropout(cfg_of("multi_dropout", rates=[0.1, 1.0]), TaskInfo("bert", 2))
    with pytest.raises(UserError):
        MultiDropout(cfg_of("multi_dropout", reduce="median"), TaskInfo("bert", 2))


# == ASL ============================================================================================
def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_asl_without_focusing_or_shift_is_binary_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, generator=gen) * 3
    targets = (torch.rand(4, 5, generator=gen) > 0.6).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1).mean()
    asl = asymmetric_loss(logits, targets, gamma_pos=0, gamma_neg=0, clip=0)
    torch.testing.assert_close(asl, bce, rtol=1e-6, atol=1e-6)


def test_asl_by_hand_on_two_examples():
    x = [[1.0, -3.0], [0.5, 2.0]]
    y = [[1, 0], [0, 1]]
    gp, gn, m = 1.0, 2.0, 0.1
    total = 0.0
    for row_x, row_y in zip(x, y):
        for xi, yi in zip(row_x, row_y):
            p = 1 / (1 + math.exp(-xi))
            if yi:
                total += (1 - p) ** gp * math.log(p)
            else:
                pm = max(p - m, 0.0)  # x = -3: p = 0.047 < m, the negative is discarded (term 0)
                total += pm ** gn * math.log(1 - pm)
    expected = -total / 2  # summed over labels, mean over the 2 examples
    got = asymmetric_loss(torch.tensor(x), torch.tensor(y), gamma_pos=gp, gamma_neg=gn, clip=m)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_asl_focusing_weight_carries_no_gradient_by_default():
    x0 = torch.tensor([[1.0, -1.0, 0.3], [-0.5, 2.0, 0.8]])
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    gp, gn, m = 1.0, 4.0, 0.05

    def grad(focus_grad: bool):
        x = x0.clone().requires_grad_(True)
        asymmetric_loss(x, y, gamma_pos=gp, gamma_neg=gn, clip=m, focus_grad=focus_grad).backward()
        return x.grad

    def by_hand(detach_weights: bool):
        x = x0.clone().requires_grad_(True)
        p = torch.sigmoid(x)
        pm = (p - m).clamp(min=0)
        w_pos, w_neg = (1 - p) ** gp, pm ** gn
        if detach_weights:
            w_pos, w_neg = w_pos.detach(), w_neg.detach()
        loss = -(y * w_pos * torch.log(p) + (1 - y) * w_neg * torch.log(1 - pm)).sum(-1).mean()
        loss.backward()
        return x.grad

    torch.testing.assert_close(grad(False), by_hand(True))
    torch.testing.assert_close(grad(True), by_hand(False))
    assert not torch.allclose(grad(False), grad(True))


def imbalanced(p_pos: float, p_neg: float, batch: int = 4, labels: int = 5):
    """One positive label per example (label 0), the other labels negative."""
    targets = torch.zeros(batch, labels)
    targets[:, 0] = 1
    logits = torch.where(targets > 0, torch.tensor(logit(p_pos)), torch.tensor(logit(p_neg)))
    return logits, targets


def test_probability_gap_is_negatives_true_probability_minus_positives():
    logits, targets = imbalanced(0.2, 0.1)
    assert probability_gap(logits, targets) == pytest.approx(0.9 - 0.2, abs=1e-6)
    assert probability_gap(logits[:, 1:], targets[:, 1:]) is None  # no positive in the batch


@pytest.mark.parametrize("p_pos, p_neg, direction", [(0.2, 0.1, 1), (0.95, 0.2, -1)])
def test_adaptive_gamma_moves_by_the_gap_minus_target(p_pos, p_neg, direction):
    logits, targets = imbalanced(p_pos, p_neg)
    gap = (1 - p_neg) - p_pos  # 0.7 (above target 0.1): rises; -0.15 (below): falls
    adaptive = AdaptiveGamma(4.0, step_size=0.01, target=0.1, mode="batch", momentum=0.9)
    new = adaptive.update(probability_gap(logits, targets))
    assert new == pytest.approx(4.0 + 0.01 * (gap - 0.1), abs=1e-7)
    assert (new - 4.0) * direction > 0
    assert adaptive.update(None) == new  # a batch without both kinds of labels changes nothing


def test_adaptive_gamma_never_goes_below_zero():
    logits, targets = imbalanced(0.99, 0.5)  # gap 0.5 - 0.99 = -0.49
    adaptive = AdaptiveGamma(0.001, step_size=0.01, target=0.1, mode="batch", momentum=0.9)
    assert adaptive.update(probability_gap(logits, targets)) == 0.0
    assert adaptive.update(probability_gap(logits, targets)) == 0.0


def test_adaptive_gamma_running_mode_uses_the_exponential_mean():
    adaptive = AdaptiveGamma(4.0, step_size=0.1, target=0.1, mode="running", momentum=0.9)
    adaptive.update(0.7)
    assert adaptive.gamma_neg == pytest.approx(4.0 + 0.1 * (0.7 - 0.1))
    adaptive.update(0.3)
    mean = 0.9 * 0.7 + 0.1 * 0.3
    assert adaptive.gap == pytest.approx(mean)
    assert adaptive.gamma_neg == pytest.approx(4.0 + 0.1 * (0.7 - 0.1) + 0.1 * (mean - 0.1))
    with pytest.raises(UserError):
        AdaptiveGamma(4.0, step_size=0.1, target=0.1, mode="ema", momentum=0.9)


def test_asl_trick_updates_gamma_once_per_batch_and_uses_it():
    cfg = cfg_of("asl", adaptive={"step_size": 0.01, "target": 0.1})
    trick = ASL(cfg, TaskInfo("bert", 5, multilabel=True))
    logits, targets = imbalanced(0.2, 0.1)
    before = trick.task_loss(logits[:, 1:], targets[:, 1:])  # the negatives' part
    step = make_step(None, {"labels": targets})
    trick.on_batch_end(step, logits)
    assert trick.gamma_neg == pytest.approx(4.0 + 0.01 * (0.7 - 0.1), abs=1e-7)
    assert trick.metrics()["gap"] == pytest.approx(0.7, abs=1e-6)
    after = trick.task_loss(logits, targets)
    expected = asymmetric_loss(logits, targets, gamma_pos=1.0, gamma_neg=trick.gamma_neg, clip=0.05)
    torch.testing.assert_close(after, expected)
    assert float(trick.task_loss(logits[:, 1:], targets[:, 1:])) < float(before)  # gamma- up: negatives weigh less


def test_asl_problem_only_for_regression():
    assert ASL(cfg_of("asl"), TaskInfo("bert", 1)).problem()
    assert ASL(cfg_of("asl"), TaskInfo("bert", 1, multilabel=True)).problem() is None
    assert ASL(cfg_of("asl"), TaskInfo("bert", 3)).problem() is None


def test_asl_single_label_targets_are_one_vs_rest():
    logits = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]])
    labels = torch.tensor([2, 0])
    one_hot = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.equal(targets_of(labels, 3, multilabel=False), one_hot)
    assert torch.equal(targets_of(one_hot, 3, multilabel=True), one_hot)
    trick = ASL(cfg_of("asl", gamma_pos=0, gamma_neg=0, clip=0, adaptive={"enabled": False}), TaskInfo("bert", 3))
    bce = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none").sum(-1).mean()
    torch.testing.assert_close(trick.task_loss(logits, labels), bce, rtol=1e-6, atol=1e-6)


# == R-Drop =========================================================================================
def test_rdrop_kl_by_hand():
    p_logits = [[1.0, 0.0, -1.0], [0.2, 0.4, 2.0]]
    q_logits = [[0.5, 0.5, 0.0], [1.0, -1.0, 0.0]]

    def softmax(row):
        z = sum(math.exp(v) for v in row)
        return [math.exp(v) / z for v in row]

    per = []
    for a, b in zip(p_logits, q_logits):
        p, q = softmax(a), softmax(b)
        kl_pq = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
        kl_qp = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
        per.append(0.5 * (kl_pq + kl_qp))
    p_t, q_t = torch.tensor(p_logits), torch.tensor(q_logits)
    # the paper's code sums over the batch (the default); mean divides by the batch size 2
    assert float(rdrop_kl(p_t, q_t, TaskInfo("bert", 3))) == pytest.approx(sum(per), rel=1e-5)
    assert float(rdrop_kl(p_t, q_t, TaskInfo("bert", 3), "mean")) == pytest.approx(sum(per) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="valid: sum, mean"):
        rdrop_kl(p_t, q_t, TaskInfo("bert", 3), "batchmean")


def test_rdrop_kl_multilabel_is_per_label_bernoulli():
    a, b = torch.tensor([[0.3, -1.2]]), torch.tensor([[-0.4, 0.9]])
    total = 0.0
    for x, z in zip(a[0].tolist(), b[0].tolist()):
        p, q = 1 / (1 + math.exp(-x)), 1 / (1 + math.exp(-z))
        total += 0.5 * (p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
                        + q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p)))
    assert float(rdrop_kl(a, b, TaskInfo("bert", 2, multilabel=True))) == pytest.approx(total, rel=1e-5)


def test_rdrop_kl_regression_is_squared_difference():
    a, b = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [2.5]])
    assert float(rdrop_kl(a, b, TaskInfo("bert", 1))) == pytest.approx(1 + 0.25)
    assert float(rdrop_kl(a, b, TaskInfo("bert", 1), "mean")) == pytest.approx((1 + 0.25) / 2)


def test_rdrop_without_dropout_is_the_task_loss():
    model = build("bert").eval()
    trick = RDrop(cfg_of("rdrop"), TaskInfo("bert", 2))
    step = make_step(model, make_batch())
    logits = step.forward()
    loss = step.loss(logits)
    total = trick.extend_loss(step, loss, logits)
    assert trick.last_kl == 0.0 and step.forwards == 2
    assert torch.equal(total, loss)


def test_rdrop_with_dropout_by_hand():
    model = build("bert").train()
    trick = RDrop(cfg_of("rdrop", alpha=0.5), TaskInfo("bert", 2))
    batch = make_batch()
    torch.manual_seed(5)
    step = make_step(model, batch)
    logits = step.forward()
    total = trick.extend_loss(step, step.loss(logits), logits)
    torch.manual_seed(5)  # the same two dropout masks again
    with torch.no_grad():
        first, second = (model(**inputs_of(batch)).logits for _ in range(2))
    labels = batch["labels"]
    lp, lq = F.log_softmax(first, -1), F.log_softmax(second, -1)
    kl = 0.5 * ((lp.exp() * (lp - lq)).sum(-1) + (lq.exp() * (lq - lp)).sum(-1)).sum()  # over the batch
    expected = 0.5 * (F.cross_entropy(first, labels) + F.cross_entropy(second, labels)) + 0.5 * kl
    assert float(kl) > 0
    torch.testing.assert_close(total.detach(), expected, rtol=1e-5, atol=1e-7)


# == SiFT ===========================================================================================
def deberta_symmetric_kl(logits, target):
    """DeBERTa's sift.symmetric_kl, as its code writes it (per example; the caller takes the mean)."""
    logit_stu = logits.view(-1, logits.size(-1)).float()
    logit_tea = target.view(-1, target.size(-1)).float()
    logprob_stu = F.log_softmax(logit_stu, -1)
    logprob_tea = F.log_softmax(logit_tea, -1)
    prob_tea = logprob_tea.exp().detach()
    prob_stu = logprob_stu.exp().detach()
    floss = (prob_tea * (-logprob_stu)).sum(-1)
    bloss = (prob_stu * (-logprob_tea)).sum(-1)
    return floss + bloss


def test_sift_symmetric_kl_is_debertas():
    gen = torch.Generator().manual_seed(0)
    a0, b0 = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    a1, b1 = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    a2, b2 = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    ours = sift_symmetric_kl(a1, b1, TaskInfo("bert", 3))
    theirs = deberta_symmetric_kl(a2, b2).mean()
    torch.testing.assert_close(ours, theirs)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(a1.grad, a2.grad)
    torch.testing.assert_close(b1.grad, b2.grad)
    # its gradient in the perturbed logits is that of KL(p_clean || p_perturbed)
    a3 = a0.clone().requires_grad_(True)
    lt, ls = F.log_softmax(b0, -1), F.log_softmax(a3, -1)
    (lt.exp() * (lt - ls)).sum(-1).mean().backward()
    torch.testing.assert_close(a1.grad, a3.grad)
    r1, r2 = torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [2.0]])
    assert float(sift_symmetric_kl(r1, r2, TaskInfo("bert", 1))) == pytest.approx((1 + 4) / 2)


@pytest.mark.parametrize("family", SIFT_FAMILIES)
def test_sift_hooks_the_embedding_layernorm(family):
    model = build(family)
    norm = model.base_model.embeddings.LayerNorm
    hooks = len(norm._forward_hooks)
    trick = SiFT(cfg_of("sift"), TaskInfo(family, 2))
    assert trick.problem() is None
    trick.prepare_model(model)
    assert len(norm._forward_hooks) == hooks + 1
    assert list(norm._forward_hooks.values())[-1] == trick._perturb


def test_sift_hooks_the_encoders_layernorm_under_lora():
    """LoRA (peft) wraps the model before SiFT's prepare_model: peft's `base_model` is its tuner,
    the hook still belongs on the transformers encoder's embedding LayerNorm."""
    peft = pytest.importorskip("peft")
    model = build("bert")
    norm = model.bert.embeddings.LayerNorm
    wrapped = peft.get_peft_model(model, peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=2,
                                                         target_modules=["query", "value"]))
    trick = SiFT(cfg_of("sift"), TaskInfo("bert", 2))
    trick.prepare_model(wrapped)
    assert list(norm._forward_hooks.values()) == [trick._perturb]


def test_sift_not_for_gpt2():
    assert SiFT(cfg_of("sift"), TaskInfo("gpt2", 2)).problem()


@pytest.mark.parametrize("family", ["bert", "deberta-v2"])
def test_sift_perturbs_in_normalised_coordinates(family):
    model = build(family).eval()
    norm = model.base_model.embeddings.LayerNorm
    with torch.no_grad():  # a LayerNorm far from unit scale: the perturbation must scale with it
        norm.weight.mul_(7.0)
        norm.bias.add_(3.0)
    clean_h = []
    norm.register_forward_hook(lambda m, i, o: clean_h.append(o.detach().clone()))  # before SiFT's
    trick = SiFT(cfg_of("sift", learning_rate=0.5, weight=2.0), TaskInfo(family, 2))
    model = trick.prepare_model(model)
    perturbed = []
    norm.register_forward_hook(  # after SiFT's: sees what the encoder gets
        lambda m, i, o: perturbed.append((o.detach().clone(), None if trick.delta is None else trick.delta.detach().clone())))
    batch = make_batch()
    step = make_step(model, batch)
    logits = step.forward()
    loss = step.loss(logits)
    total = trick.extend_loss(step, loss, logits)
    assert (step.forwards, step.backwards) == (3, 1)
    assert perturbed[0][1] is None and len(perturbed) == 3
    for h, (hidden, delta) in zip(clean_h[1:], perturbed[1:]):
        assert torch.equal(h, clean_h[0])  # the LayerNorm's own output is the clean one each time
        std = (h.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()  # population std per token
        torch.testing.assert_close((hidden - h) / std, delta, rtol=1e-4, atol=1e-6)
        assert not torch.allclose(hidden - h, delta, rtol=1e-2, atol=1e-6)  # not in raw coordinates
    # the first delta: N(0, init) clamped to +-2 init
    init = 1e-2
    d0, d1 = perturbed[1][1], perturbed[2][1]
    assert d0.abs().max() <= 2 * init and 0.5 * init < d0.std() < 1.5 * init
    # one ascent step, by hand: delta + lr * g / (max|g| over the hidden size + 1e-6)
    trick.delta = d0.clone().requires_grad_(True)
    adv = model(**inputs_of(batch)).logits
    g, = torch.autograd.grad(sift_symmetric_kl(adv, logits.detach(), trick.task), [trick.delta])
    torch.testing.assert_close(d1, d0 + 0.5 * g / (g.abs().amax(-1, keepdim=True) + 1e-6), rtol=1e-5, atol=1e-7)
    trick.delta = d1.clone()
    with torch.no_grad():
        term = sift_symmetric_kl(model(**inputs_of(batch)).logits, logits, trick.task)
    trick.delta = None
    torch.testing.assert_close(total.detach(), (loss + 2.0 * term).detach(), rtol=1e-5, atol=1e-6)
    assert trick.last == pytest.approx(float(term), rel=1e-5)


def test_sift_zero_delta_is_the_clean_forward_and_disarms():
    model = build("bert").eval()
    trick = SiFT(cfg_of("sift"), TaskInfo("bert", 2))
    model = trick.prepare_model(model)
    batch = make_batch()
    with torch.no_grad():
        clean = model(**inputs_of(batch)).logits
        trick.delta = torch.zeros(*batch["input_ids"].shape, 32)
        assert torch.equal(model(**inputs_of(batch)).logits, clean)
        trick.delta = None
    step = make_step(model, batch)
    logits = step.forward()
    trick.extend_loss(step, step.loss(logits), logits)
    assert trick.delta is None
    with torch.no_grad():
        assert torch.equal(model(**inputs_of(batch)).logits, clean)


# == LLRD ===========================================================================================
LLRD_MODELS = {
    "bert": ("bert", {"num_hidden_layers": 3}, r"\.encoder\.layer\.(\d+)\.", 3),
    "roberta": ("roberta", {}, r"\.encoder\.layer\.(\d+)\.", 2),
    "deberta-v2": ("deberta", {"relative_attention": True, "pos_att_type": ["p2c", "c2p"],
                               "norm_rel_ebd": "layer_norm", "position_buckets": 8}, r"\.encoder\.layer\.(\d+)\.", 2),
    "electra": ("electra", {}, r"\.encoder\.layer\.(\d+)\.", 2),
    "albert": ("albert", {"num_hidden_layers": 4, "num_hidden_groups": 2}, r"\.albert_layer_groups\.(\d+)\.", 2),
    "roformer": ("roformer", {}, r"\.encoder\.layer\.(\d+)\.", 2),
    "gpt2": ("transformer", {"n_layer": 3}, r"^transformer\.h\.(\d+)\.", 3),
}


@pytest.mark.parametrize("family", list(LLRD_MODELS))
def test_llrd_learning_rate_of_every_parameter(family):
    prefix, config, layer_re, n_layers = LLRD_MODELS[family]
    model = build(family, **config)
    if family == "roformer":
        assert not model.roformer.encoder.embed_positions.weight.requires_grad  # fixed sinusoids: no group
    lr, decay, wd = 1e-3, 0.7, 0.05
    groups = LLRD(cfg_of("llrd", decay=decay), TaskInfo(family, 2)).param_groups(model, lr, wd)
    where = {}
    for group in groups:
        for p in group["params"]:
            assert id(p) not in where, "a parameter in two groups"
            where[id(p)] = group
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(where) == len(trainable)
    outside = 0
    for name, p in trainable:
        group = where[id(p)]
        m = re.search(layer_re, name)
        if not name.startswith(prefix + ".") or ".pooler." in name:  # classifier head, pooler
            expected = lr
        elif m:
            layer = int(m.group(1)) + 1
            assert 1 <= layer <= n_layers
            expected = lr * decay ** (n_layers - layer)
        else:  # embeddings, DeBERTa's relative positions, GPT-2's final LayerNorm, ...
            expected = lr * decay ** n_layers
            outside += 1
        assert group["lr"] == pytest.approx(expected, rel=1e-12), name
        assert group["weight_decay"] == (0.0 if p.ndim < 2 else wd), name
    assert outside > 0
    if family == "deberta-v2":
        assert where[id(model.deberta.encoder.rel_embeddings.weight)]["lr"] == pytest.approx(lr * decay ** n_layers)
    torch.optim.AdamW(groups, lr=lr)  # the optimizer accepts the groups as they are


def test_llrd_rejects_decay_outside_0_1():
    for bad in (0.0, 1.5):
        with pytest.raises(UserError):
            LLRD(cfg_of("llrd", decay=bad), TaskInfo("bert", 2))


# == the stack ======================================================================================
DOCUMENTED = ["llrd", "multi_dropout", "lora", "asl", "rdrop", "sift", "awp"]


def all_cfgs(names):
    return OmegaConf.create({name: cfg_of(name) for name in names})


def test_order_is_fixed_whatever_the_order_given():
    classes = {name: get_class(cfg_of(name)._target_) for name in DOCUMENTED}
    assert {name: cls.order for name, cls in classes.items()} == {
        "llrd": 10, "multi_dropout": 20, "lora": 30, "asl": 40, "rdrop": 50, "sift": 60, "awp": 70}
    rng = random.Random(0)
    for _ in range(20):
        names = rng.sample(DOCUMENTED, rng.randint(1, len(DOCUMENTED)))
        expected = [n for n in DOCUMENTED if n in names]
        assert selected(all_cfgs(names)) == expected
        assert TrickStack.build(all_cfgs(names), TaskInfo("bert", 2)).names == expected


def test_the_order_is_the_classes_order_attribute(monkeypatch):
    names = ["sift", "awp", "rdrop", "llrd"]
    assert selected(all_cfgs(names)) == ["llrd", "rdrop", "sift", "awp"]
    monkeypatch.setattr(RDrop, "order", 65)  # between SiFT and AWP
    monkeypatch.setattr(LLRD, "order", 99)  # last
    assert selected(all_cfgs(names)) == ["sift", "rdrop", "awp", "llrd"]
    stack = TrickStack.build(all_cfgs(names), TaskInfo("bert", 2))
    assert [type(t) for t in stack.tricks] == [SiFT, RDrop, AWP, LLRD]


def test_each_trick_reads_its_yaml_without_target():
    stack = TrickStack.build(all_cfgs(DOCUMENTED), TaskInfo("bert", 2))
    for trick in stack.tricks:
        expected = OmegaConf.to_container(cfg_of(trick.name))
        assert expected.pop("_target_") == f"{type(trick).__module__}.{type(trick).__name__}"
        assert OmegaConf.to_container(trick.cfg) == expected


def test_unknown_trick_is_a_user_error():
    with pytest.raises(UserError) as e:
        TrickStack.build(OmegaConf.create({"mixup": {}, "awp": cfg_of("awp")}), TaskInfo("bert", 2))
    assert str(e.value) == "trick=mixup: unknown (valid: asl, awp, llrd, lora, multi_dropout, rdrop, sift)"
    with pytest.raises(UserError) as e:
        selected(OmegaConf.create({"asl": {**cfg_of("asl"), "_target_": "nlpx.tricks.asl.AdaptiveGamma"}}))
    assert str(e.value) == ("trick.asl._target_=nlpx.tricks.asl.AdaptiveGamma: not a trick "
                            "(a subclass of nlpx.tricks.base.Trick)")


def test_asl_replaces_the_loss_that_multi_dropout_averages():
    """The stack's loss: ASL's loss of each of multi_dropout's K samples, averaged, whatever order
    trick=[...] names them in."""
    task = TaskInfo("bert", 2)
    stack = TrickStack.build(all_cfgs(["asl", "multi_dropout"]), task)
    model = stack.prepare_model(build("bert")).train()
    batch = make_batch()
    step = make_step(model, batch, stack.loss_fn(F.cross_entropy))
    logits = step.forward()
    asl, msd = stack.tricks[1], stack.tricks[0]
    samples = msd.sampler.samples
    by_hand = torch.stack([asl.task_loss(s, batch["labels"]) for s in samples]).mean()
    torch.testing.assert_close(step.loss(logits), by_hand, rtol=0, atol=0)
    assert not torch.isclose(by_hand, F.cross_entropy(logits, batch["labels"]))
    alone = TrickStack.build(all_cfgs(["asl"]), task)
    assert alone.loss_fn(F.cross_entropy) == alone.tricks[0].task_loss
    assert TrickStack([]).loss_fn(F.cross_entropy) is F.cross_entropy


@pytest.mark.parametrize("name, task", [("asl", TaskInfo("bert", 1)), ("sift", TaskInfo("gpt2", 2))])
def test_strict_build_refuses_what_cannot_apply(name, task):
    names = ["rdrop", name, "awp"]
    with pytest.raises(UserError, match=name):
        TrickStack.build(all_cfgs(names), task, strict=True)
    stack = TrickStack.build(all_cfgs(names), task, strict=False)
    assert stack.names == ["rdrop", "awp"]
    assert list(stack.skipped) == [name]
    why = {"asl": ASL, "sift": SiFT}[name](cfg_of(name), task).problem()
    assert why and stack.skipped[name] == why


def test_extra_passes_run_in_order():
    """R-Drop's term before SiFT's, AWP after the backward: the step's parts in that order."""
    model = build("bert").eval()
    stack = TrickStack.build(all_cfgs(["awp", "sift", "rdrop"]), TaskInfo("bert", 2))
    stack.tricks[-1].cfg.adv_start = 0
    model = stack.prepare_model(model)
    step = make_step(model, make_batch(), stack.loss_fn(F.cross_entropy))
    loss, _ = stack.training_loss(step)
    step.backward(loss)
    stack.after_backward(step)
    assert list(step.parts) == ["task", "rdrop_kl", "sift", "awp_loss"]
    assert (step.forwards, step.backwards) == (1 + 1 + 2 + 1, 1 + 1 + 1)


def test_llrd_finds_the_layers_of_a_tagger_and_of_a_qa_model():
    from omegaconf import OmegaConf
    from transformers import BertConfig, BertForQuestionAnswering, BertModel

    from nlpx.objectives.qa import QAModel
    from nlpx.objectives.tag import CRFHead, TokenTagger

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=32)
    head = CRFHead(OmegaConf.create({"transition_lr": None}), 16, ("PER",))
    tagger = TokenTagger(BertModel(config, add_pooling_layer=False), head, 0.1)
    qa = QAModel(BertForQuestionAnswering(config))
    lr, decay = 1e-3, 0.5
    for model, encoder, heads in ((tagger, "encoder.encoder", ["head.crf.transitions", "head.classifier.weight"]),
                                  (qa, "model.bert.encoder", ["model.qa_outputs.weight"])):
        rates = LLRD(cfg_of("llrd", decay=decay), TaskInfo("bert", 2, token_level=True)).learning_rates(model, lr)
        assert rates[f"{encoder}.layer.2.output.dense.weight"] == lr
        assert rates[f"{encoder}.layer.0.output.dense.weight"] == pytest.approx(lr * decay ** 2)
        embeddings = encoder.rsplit(".", 1)[0] + ".embeddings.word_embeddings.weight"
        assert rates[embeddings] == pytest.approx(lr * decay ** 3)
        assert all(rates[h] == lr for h in heads)


def test_rdrop_warns_that_its_summed_kl_overwhelms_a_token_level_loss(caplog):
    from nlpx.tricks.rdrop import RDrop

    with caplog.at_level("WARNING", logger="nlpx"):
        RDrop(cfg_of("rdrop", reduction="mean"), TaskInfo("bert", 9, token_level=True))
        RDrop(cfg_of("rdrop", reduction="token"), TaskInfo("bert", 9, token_level=True))
        RDrop(cfg_of("rdrop", reduction="sum"), TaskInfo("bert", 2))
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="nlpx"):
        RDrop(cfg_of("rdrop", reduction="sum"), TaskInfo("bert", 9, token_level=True))
    assert "trick.rdrop.reduction=token averages it over tokens" in caplog.text
    with pytest.raises(UserError, match="trick.rdrop.reduction=token: averages the KL over tokens, for token-level"):
        RDrop(cfg_of("rdrop", reduction="token"), TaskInfo("bert", 2))

