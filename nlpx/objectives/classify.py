"""Sequence classification / regression (objective=classify): the loss of one fine-tuning task.

The model is the family's own *ForSequenceClassification (its pooler and head); the loss is
computed here rather than by the model so that fine-tuning tricks can change it in one place.
Classes: cross-entropy of the logits; STS-B (one output): mean squared error of the score, as
transformers computes for problem_type="regression"; multi-label tasks: binary cross-entropy per
label, averaged over labels and examples (transformers' multi_label_classification).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.data.encode import MODEL_INPUTS
from nlpx.errors import UserError


class SequenceClassification(nn.Module):
    needs_nsp = False

    def __init__(self, cfg, num_labels: int, *, multilabel: bool = False):
        super().__init__()
        self.cfg = cfg
        self.num_labels = num_labels  # 1 (not multi-label): regression
        self.multilabel = multilabel

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1 and not self.multilabel

    def logits(self, model, batch) -> torch.Tensor:
        return model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.is_regression:
            return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return F.cross_entropy(logits, labels)

    def forward(self, model, batch) -> dict:
        logits = self.logits(model, batch)
        return {"loss": self.loss(logits, batch["labels"]), "_logits": logits}

    @classmethod
    def for_task(cls, cfg, data) -> SequenceClassification:
        if getattr(data.spec, "tagging", False):
            raise UserError(f"task={data.spec.name} is a tagging task: fine-tune it with objective=tag "
                            "(or nlpx eval ner)")
        return cls(cfg, data.num_labels, multilabel=bool(getattr(data.spec, "multilabel", False)))

    def build_model(self, path, spec, *, new_head: bool = False):
        """(model, tokenizer): the checkpoint's family with its own classification head."""
        from nlpx.finetune.model import load_classifier

        return load_classifier(path, spec, new_head=new_head)

    def trick_info(self) -> dict:
        """What the tricks are told about the task (nlpx.tricks.base.TaskInfo, less the model type)."""
        return {"num_labels": self.num_labels, "multilabel": self.multilabel}

    def param_groups(self) -> list:
        return []  # every parameter at optim.lr

    collate = None  # the data module's own batches

    def predictions(self, logits: torch.Tensor, batch=None) -> torch.Tensor:
        """Class ids, scores for regression, per-label probabilities for multi-label."""
        if self.multilabel:
            return torch.sigmoid(logits.float())
        return logits.squeeze(-1).float() if self.is_regression else logits.argmax(-1)
