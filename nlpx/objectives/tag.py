"""Token tagging (objective=tag): NER with a softmax, CRF or GlobalPointer head on a pretrained encoder.

The model is the checkpoint's encoder (transformers' AutoModel), dropout at the encoder's hidden
dropout rate, and the head named by objective.head (its class in objective.heads):
  softmax         a linear layer to BIO tags on each word's first sub-token, cross-entropy averaged
                  over those tokens (other sub-tokens are ignored): transformers' *ForTokenClassification
  crf             the same emissions, gathered to one per word, and a linear-chain CRF: the negative
                  log-likelihood averaged over sentences; Viterbi decoding
  global_pointer  span scores per entity type (nlpx.objectives.global_pointer) over the words' first
                  sub-tokens; nested entities are kept
Predictions are entity spans (type, first word, last word) per sentence, whatever the head.

A batch (nlpx.finetune.tagging_data) carries `word_index` ([B, T]: the word whose first sub-token
is at t, else -1) and `labels` in the head's form: tag ids at first sub-tokens (-100 elsewhere), or
span labels [B, types, T, T] (1 entity, 0 not, -100 no span).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.errors import UserError
from nlpx.objectives.crf import CRF
from nlpx.eval.ner_reader import bio_tags, tags_to_spans
from nlpx.objectives.global_pointer import IGNORE, GlobalPointer, bernoulli_divergence, decode, span_loss
from nlpx.tricks.consistency import reduce_divergence

from nlpx.data.encode import MODEL_INPUTS


def token_divergence(p: torch.Tensor, q: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    """R-Drop for tagging: per labelled token, 1/2 (KL(p||q) + KL(q||p)) of the tag softmax, summed
    over the tokens of an example, then summed (reduction=sum) or averaged (mean) over the batch;
    token: averaged over the batch's labelled tokens."""
    lp, lq = F.log_softmax(p.float(), -1), F.log_softmax(q.float(), -1)
    per_token = 0.5 * ((lp.exp() * (lp - lq)).sum(-1) + (lq.exp() * (lq - lp)).sum(-1))
    return reduce_divergence(per_token, labels != IGNORE, reduction)


def _word_spans(tag_ids: list[int], words: list[int], tags: tuple[str, ...], types: tuple[str, ...]) -> list:
    """Tag ids of the kept words (in order) -> (type id, first word, last word) by the CoNLL rule."""
    index = {t: i for i, t in enumerate(types)}
    return [(index[kind], words[a], words[b]) for kind, a, b in tags_to_spans([tags[i] for i in tag_ids])]


class TaggingHead(nn.Module):
    reads: tuple[str, ...] = ()  # objective.* keys only this head reads (the others' are refused)
    bio = True  # labels are BIO tag ids per word (else span labels)

    def __init__(self, cfg, hidden: int, types: tuple[str, ...]):
        super().__init__()
        self.types = types
        self.tags = bio_tags(types)

    def divergence(self, p, q, labels, reduction: str):
        return token_divergence(p, q, labels, reduction)

    def param_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """Parameters trained at a learning rate of their own: [(params, lr)]."""
        return []


class SoftmaxHead(TaggingHead):
    def __init__(self, cfg, hidden, types):
        super().__init__(cfg, hidden, types)
        self.classifier = nn.Linear(hidden, len(self.tags))

    def forward(self, hidden):
        return self.classifier(hidden)

    def loss(self, logits, labels):
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)

    def predict(self, logits, word_index) -> list[list[tuple[int, int, int]]]:
        out = []
        for row_logits, row_words in zip(logits, word_index):
            at = row_words >= 0
            out.append(_word_spans(row_logits[at].argmax(-1).tolist(), row_words[at].tolist(), self.tags, self.types))
        return out


def gather_words(values: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, ...] values at the positions `at` ([B, T] bool), moved to the front in order:
    ([B, W, ...], prefix mask [B, W]) with W the most positions of a row (at least 1)."""
    order = torch.argsort((~at).to(torch.int8), dim=1, stable=True)
    width = max(int(at.sum(1).max()), 1)
    order = order[:, :width]
    index = order.view(order.shape + (1,) * (values.dim() - 2)).expand(order.shape + values.shape[2:])
    return values.gather(1, index), at.gather(1, order)


class CRFHead(SoftmaxHead):
    reads = ("transition_lr",)

    def __init__(self, cfg, hidden, types):
        super().__init__(cfg, hidden, types)
        self.crf = CRF(len(self.tags))
        self.transition_lr = cfg.transition_lr

    def loss(self, logits, labels):
        emissions, mask = gather_words(logits, labels != IGNORE)
        tags, _ = gather_words(labels, labels != IGNORE)
        tags = torch.where(mask, tags, torch.zeros_like(tags))
        keep = mask[:, 0]  # a sentence with no kept word (all of it cut) has nothing to score
        if not bool(keep.any()):
            return logits.sum() * 0.0
        return -self.crf.log_likelihood(emissions[keep], tags[keep], mask[keep]).mean()

    def predict(self, logits, word_index):
        emissions, mask = gather_words(logits, word_index >= 0)
        words, _ = gather_words(word_index, word_index >= 0)
        mask[:, 0] = True  # an empty sentence decodes one (ignored) tag
        out = []
        for path, row_mask, row_words in zip(self.crf.decode(emissions, mask), mask, words):
            n = int(row_mask.sum()) if bool((row_words >= 0).any()) else 0
            out.append(_word_spans(path[:n], row_words[:n].tolist(), self.tags, self.types))
        return out

    def param_groups(self):
        return [] if self.transition_lr is None else [(list(self.crf.parameters()), float(self.transition_lr))]


class GlobalPointerHead(TaggingHead):
    reads = ("head_size",)
    bio = False

    def __init__(self, cfg, hidden, types):
        super().__init__(cfg, hidden, types)
        self.pointer = GlobalPointer(hidden, len(types), int(cfg.head_size))

    def forward(self, hidden):
        return self.pointer(hidden)

    def loss(self, logits, labels):
        return span_loss(logits, labels)

    def divergence(self, p, q, labels, reduction):
        return bernoulli_divergence(p, q, labels, reduction)

    def predict(self, logits, word_index):
        starts = word_index >= 0
        valid = (starts[:, None, :, None] & starts[:, None, None, :]).expand_as(logits)
        valid = valid & torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).triu()
        words = word_index.tolist()
        return [[(a, words[b][i], words[b][j]) for a, i, j in spans] for b, spans in enumerate(decode(logits, valid))]


class TokenTagger(nn.Module):
    """Encoder + dropout + head; forward returns an output with `.logits`, as a transformers model."""

    base_model_prefix = "encoder"  # where trick=llrd finds the numbered layers

    def __init__(self, encoder, head: TaggingHead, dropout: float):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.dropout = nn.Dropout(dropout)

    @property
    def config(self):
        return self.encoder.config

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        from transformers.modeling_outputs import TokenClassifierOutput

        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        return TokenClassifierOutput(logits=self.head(self.dropout(hidden)))

    def save_pretrained(self, folder, **kwargs):
        """The encoder as a transformers checkpoint, the head beside it (tagging_head.pt, tags.json)."""
        import json
        from pathlib import Path

        kwargs.pop("state_dict", None)
        self.encoder.save_pretrained(folder, **kwargs)
        torch.save(self.head.state_dict(), Path(folder) / "tagging_head.pt")
        (Path(folder) / "tagging_head.json").write_text(json.dumps(
            {"head": type(self.head).__name__, "types": list(self.head.types), "tags": list(self.head.tags)}))


class TokenTagging(nn.Module):
    """objective=tag: builds the tagger for a task's entity types and computes its loss and spans."""

    needs_nsp = False

    def __init__(self, cfg, types: tuple[str, ...]):
        super().__init__()
        from hydra.utils import get_class

        self.cfg, self.types = cfg, tuple(types)
        if str(cfg.head) not in cfg.heads:
            raise UserError(f"objective.head={cfg.head}: unknown (valid: {', '.join(cfg.heads)})")
        self.head_class = get_class(str(cfg.heads[str(cfg.head)]))
        self.head: TaggingHead | None = None

    @classmethod
    def for_task(cls, cfg, data) -> TokenTagging:
        if not getattr(data.spec, "tagging", False):
            raise UserError(f"objective=tag: task={data.spec.name} is not a tagging task (valid: task=conll2003, "
                            "cluener, ner/conll, ner/span_json)")
        return cls(cfg, data.spec.types)

    @staticmethod
    def unread_keys(cfg) -> dict[str, str]:
        """objective.* keys of the heads not chosen: giving one is an error."""
        from hydra.utils import get_class

        mine = set(get_class(str(cfg.heads[str(cfg.head)])).reads) if str(cfg.head) in cfg.heads else set()
        return {f"objective.{k}": f"a setting of another objective.head than {cfg.head}"
                for name in cfg.heads for k in get_class(str(cfg.heads[name])).reads if k not in mine}

    @property
    def bio(self) -> bool:
        return self.head_class.bio

    @property
    def num_outputs(self) -> int:
        return len(self.types) if not self.bio else len(bio_tags(self.types))

    def build_model(self, path, spec, *, new_head: bool = False):
        """(TokenTagger, tokenizer): the checkpoint's encoder with a new head of this objective's kind."""
        from transformers import AutoModel

        from nlpx.data.tokenizer import load_tokenizer
        from nlpx.models.attention_scale import restore
        from nlpx.pretrained import checkpoint_config

        config = checkpoint_config(path)
        tokenizer = load_tokenizer(path, key="model.pretrained")
        try:  # the pooler is not used by a tagger (transformers' *ForTokenClassification leave it out)
            encoder = AutoModel.from_pretrained(str(path), local_files_only=True, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_pretrained(str(path), local_files_only=True)
        restore(encoder)
        hidden = int(config.hidden_size)
        self.head = self.head_class(self.cfg, hidden, self.types)
        _init_like_transformers(self.head, float(getattr(config, "initializer_range", 0.02)))
        dropout = getattr(config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(config, "hidden_dropout_prob", 0.1)
        return TokenTagger(encoder, self.head, float(dropout)).train(), tokenizer

    def logits(self, model, batch) -> torch.Tensor:
        return model(**{k: batch[k] for k in MODEL_INPUTS if k in batch}).logits

    def loss(self, logits, labels):
        return self.head.loss(logits, labels)

    def divergence(self, p, q, labels, reduction: str):
        return self.head.divergence(p, q, labels, reduction)

    def forward(self, model, batch) -> dict:
        logits = self.logits(model, batch)
        return {"loss": self.loss(logits, batch["labels"]), "_logits": logits}

    def predictions(self, logits, batch) -> list:
        """Entity spans (type id, first word, last word) per sentence of the batch."""
        return self.head.predict(logits.detach().float().cpu(), batch["word_index"].cpu())

    def param_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        return self.head.param_groups()

    def collate(self, encoded, pad_id: int, *, left: bool = False):
        from nlpx.finetune.tagging_data import TaggedBatches

        return TaggedBatches(encoded, pad_id, left=left, spans=not self.bio, num_types=len(self.types))

    def trick_info(self) -> dict:
        """What the tricks are told about the task (nlpx.tricks.base.TaskInfo, less the model type)."""
        return {"num_labels": self.num_outputs, "token_level": True, "divergence": self.divergence}


def _init_like_transformers(module: nn.Module, std: float) -> None:
    """Linear layers as transformers initialises a new head: normal(0, initializer_range), zero bias."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
