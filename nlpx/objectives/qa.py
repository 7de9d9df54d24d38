"""Extractive question answering (objective=qa): the answer as a start and an end pointer over the passage.

The model is the checkpoint's family with transformers' own question-answering head
(*ForQuestionAnswering: a linear layer giving each token a start and an end score). The loss is
transformers' too: the mean of the cross-entropies of the start and the end position over the
window's tokens. A window without its answer points both at position 0 ([CLS]).

Decoding (per window, as transformers' run_qa.py): the task.n_best highest start and end scores
among the passage's tokens, every pair with first <= last and at most task.max_answer_length
tokens, scored start + end; the n best pairs are kept, and per question the best pair over its
windows is the answer (nlpx.finetune.qa_data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.data.encode import MODEL_INPUTS
from nlpx.errors import UserError
from nlpx.tricks.consistency import reduce_divergence


def pointer_divergence(p: torch.Tensor, q: torch.Tensor, labels, reduction: str) -> torch.Tensor:
    """R-Drop for QA: 1/2 (KL(p||q) + KL(q||p)) of the start distributions (softmax over positions)
    plus the same of the end distributions, per window; summed (reduction=sum) or averaged (mean)
    over the windows; token: averaged over the start and end predictions (half of mean)."""
    lp, lq = F.log_softmax(p.float(), 1), F.log_softmax(q.float(), 1)  # [B, T, 2]: over positions
    per_pointer = 0.5 * ((lp.exp() * (lp - lq)).sum(1) + (lq.exp() * (lq - lp)).sum(1))  # [B, 2]
    return reduce_divergence(per_pointer, torch.ones_like(per_pointer, dtype=torch.bool), reduction)


def best_spans(scores: torch.Tensor, allowed: torch.Tensor, *, n_best: int,
               max_answer_length: int) -> list[list[tuple[float, int, int]]]:
    """Per row of scores [B, T, 2] (start, end), the n best (score, first, last) over the allowed
    positions [B, T] (run_qa.py's search: the n highest starts x the n highest ends, first <= last
    < first + max_answer_length, score start + end)."""
    k = min(n_best, scores.shape[1])
    none = torch.tensor(-torch.inf)
    start = scores[..., 0].float().where(allowed, none).topk(k, dim=1)
    end = scores[..., 1].float().where(allowed, none).topk(k, dim=1)
    first, last = start.indices[:, :, None], end.indices[:, None, :]
    pair = start.values[:, :, None] + end.values[:, None, :]
    pair = pair.where((first <= last) & (last < first + max_answer_length), none).flatten(1)
    best = pair.topk(min(n_best, pair.shape[1]), dim=1)
    out = []
    for b in range(len(scores)):
        out.append([(float(v), int(start.indices[b, i // k]), int(end.indices[b, i % k]))
                    for v, i in zip(best.values[b].tolist(), best.indices[b].tolist()) if v > -torch.inf])
    return out


class QAModel(nn.Module):
    """A *ForQuestionAnswering model whose output is one `.logits` [B, T, 2] (start, end), what the
    fine-tuning step and its tricks read."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @property
    def config(self):
        return self.model.config

    @property
    def base_model_prefix(self) -> str:  # where trick=llrd finds the numbered layers
        return f"model.{self.model.base_model_prefix}"

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        from transformers.modeling_outputs import TokenClassifierOutput

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        out = self.model(**inputs)
        return TokenClassifierOutput(logits=torch.stack([out.start_logits, out.end_logits], -1))

    def save_pretrained(self, folder, **kwargs):
        self.model.save_pretrained(folder, **kwargs)


class QuestionAnswering(nn.Module):
    needs_nsp = False

    def __init__(self, cfg, spec):
        super().__init__()
        self.cfg, self.spec = cfg, spec

    @classmethod
    def for_task(cls, cfg, data) -> QuestionAnswering:
        if not getattr(data.spec, "question_answering", False):
            raise UserError(f"objective=qa: task={data.spec.name} is not a question-answering task (valid: "
                            "task=cmrc2018, qa/squad)")
        return cls(cfg, data.spec)

    def build_model(self, path, spec, *, new_head: bool = False):
        from transformers import AutoModelForQuestionAnswering

        from nlpx.data.tokenizer import load_tokenizer
        from nlpx.finetune.model import load_with_head

        tokenizer = load_tokenizer(path, key="model.pretrained")
        return QAModel(load_with_head(AutoModelForQuestionAnswering, path, tokenizer, "question-answering")), tokenizer

    def collate(self, encoded, pad_id: int, *, left: bool = False):
        from nlpx.finetune.qa_data import QABatches

        return QABatches(encoded, pad_id, left=left)

    def trick_info(self) -> dict:
        return {"num_labels": 2, "token_level": True, "divergence": pointer_divergence}

    def param_groups(self) -> list:
        return []

    def logits(self, model, batch) -> torch.Tensor:
        return model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits

    def loss(self, logits, labels):
        start, end = logits.float().unbind(-1)
        return 0.5 * (F.cross_entropy(start, labels[:, 0]) + F.cross_entropy(end, labels[:, 1]))

    def forward(self, model, batch) -> dict:
        logits = self.logits(model, batch)
        return {"loss": self.loss(logits, batch["labels"]), "_logits": logits}

    def predictions(self, logits, batch) -> list[list[tuple[float, int, int]]]:
        """Per window, its n best spans (score, first, last) in the window's own token positions."""
        spans = best_spans(logits.detach().float().cpu(), batch["context"].cpu(), n_best=self.spec.n_best,
                           max_answer_length=self.spec.max_answer_length)
        shifts = batch["shift"].tolist()
        return [[(s, i - shift, j - shift) for s, i, j in row] for row, shift in zip(spans, shifts)]
