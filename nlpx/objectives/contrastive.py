"""Sentence-embedding objectives (objective=simcse | esimcse | angle): a pretrained encoder, its
sentence vector (model.pooling), and a contrastive loss over a batch of sentences, triples or
scored pairs. `nlpx train` hands these runs to nlpx.recipes.embed.

  simcse   unsupervised (data=text / synthetic): each sentence encoded twice in one forward pass
           of the doubled batch, so the two views differ only by dropout; InfoNCE at
           objective.temperature. Supervised (data=triples): anchor vs positive, with the batch's
           hard negatives (when the data has them) in the denominator.
  esimcse  unsupervised SimCSE whose positive view repeats some sub-word tokens (dup_rate) and
           whose denominator adds a FIFO queue of momentum-encoder embeddings of the original
           sentences (dropout off); the queue is filled after the step's loss, and the momentum
           copy follows theta_m <- lambda theta_m + (1 - lambda) theta_e after each optimizer step.
  angle    AnglE on scored pairs (data=pairs): see nlpx.embeddings.angle.

objective.mlp=true puts SimCSE's training-time MLP (dense + tanh) over the pooled vector; it is
not part of the exported model (SimCSE's unsupervised setting evaluates without it).
"""

from __future__ import annotations

import torch
from torch import nn

from nlpx.embeddings.contrastive import cosine_matrix, info_nce
from nlpx.errors import UserError


class SentenceEncoder(nn.Module):
    """model -> pooled sentence vector (-> the training-time MLP)."""

    def __init__(self, model, pooling: str, mlp: bool = False, lm=None):
        super().__init__()
        self.model, self.pooling = model, pooling
        self.lm = lm  # the checkpoint with its masked-LM head around `model` (unilm, simbert), else None
        hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh()) if mlp else None

    def forward(self, view: dict, head: bool = True) -> torch.Tensor:
        from nlpx.embeddings.pooling import pool

        out = self.model(input_ids=view["input_ids"], attention_mask=view["attention_mask"])
        vectors = pool(out, view["attention_mask"], self.pooling)
        return self.mlp(vectors) if head and self.mlp is not None else vectors


class EmbeddingObjective(nn.Module):
    needs_nsp = False
    model_head = None  # None: the checkpoint as AutoModel; "masked_lm": with its masked-LM head
    validates = False  # True: validate() reports held-out metrics of its own (with or without STS pairs)

    def __init__(self, cfg, data_kind: str):
        super().__init__()
        self.cfg, self.data_kind = cfg, data_kind

    @classmethod
    def data_kind_for(cls, data_cfg) -> str:
        return "sentences"

    def attach(self, encoder: SentenceEncoder) -> None:
        """Create the objective's own state for `encoder` (ESimCSE's momentum copy and queue)."""

    def after_optimizer_step(self, encoder: SentenceEncoder) -> None:
        """Called once each optimizer step has updated the encoder."""

    def describe(self) -> dict:
        return {}

    def collate_repeat(self, seed: int):
        """(dup_rate, sampling, seed) when the data layer must add a word-repetition view."""
        return None

    def training_rows(self, data, seed: int):
        """The EmbeddingData trained on (the objective may select from or hold out of what was read)."""
        return data

    def collator(self, tokenizer, max_length: int, seed: int):
        """The objective's own collate function, or None for nlpx.embeddings.data.Collator."""
        return None

    def validate(self, encoder) -> dict:
        """Held-out metrics of the objective's own, {name: value}, logged as val/<name>."""
        return {}


def _alignment(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Mean cosine of the positive pairs (a diagnostic, no gradient)."""
    return cosine_matrix(z1.detach(), z2.detach()).diagonal().mean()


class SimCSE(EmbeddingObjective):
    @classmethod
    def data_kind_for(cls, data_cfg) -> str:
        from nlpx.embeddings.data import data_kind

        return "triples" if data_kind(data_cfg) == "triples" else "sentences"

    def forward(self, encoder: SentenceEncoder, batch: dict) -> dict:
        tau = float(self.cfg.temperature)
        views = batch["views"]
        if self.data_kind == "sentences":
            view = views[0]
            n = len(view["input_ids"])
            doubled = {k: torch.cat([v, v]) for k, v in view.items()}  # two dropout masks per sentence
            h = encoder(doubled)
            z1, z2 = h[:n], h[n:]
            loss = info_nce(z1, z2, temperature=tau)
        else:
            z1, z2 = encoder(views[0]), encoder(views[1])
            negatives = encoder(views[2]) if len(views) > 2 else None
            loss = info_nce(z1, z2, temperature=tau, negatives=negatives)
        return {"loss": loss, "positive_cos": _alignment(z1, z2)}


class ESimCSE(SimCSE):
    @classmethod
    def data_kind_for(cls, data_cfg) -> str:
        return "sentences"

    def attach(self, encoder: SentenceEncoder) -> None:
        from nlpx.embeddings.augment import SAMPLING
        from nlpx.embeddings.momentum import EmbeddingQueue, MomentumEncoder

        c = self.cfg
        if not 0.0 <= float(c.momentum) < 1.0:
            raise UserError(f"objective.momentum={c.momentum}: give lambda in [0, 1)")
        if int(c.queue_size) < 0:
            raise UserError(f"objective.queue_size={c.queue_size}: give a number of embeddings (0: no queue)")
        if not 0.0 <= float(c.dup_rate) <= 1.0:
            raise UserError(f"objective.dup_rate={c.dup_rate}: give a fraction in [0, 1]")
        if c.dup_sampling not in SAMPLING:
            raise UserError(f"objective.dup_sampling={c.dup_sampling}: unknown (valid: {', '.join(SAMPLING)})")
        self.momentum = MomentumEncoder(encoder, float(c.momentum))
        self.queue = EmbeddingQueue(int(c.queue_size), _width(encoder))  # the MLP keeps the width

    def collate_repeat(self, seed: int):
        return (float(self.cfg.dup_rate), str(self.cfg.dup_sampling), seed)

    def forward(self, encoder: SentenceEncoder, batch: dict) -> dict:
        original, repeated = batch["views"][0], batch["views"][1]
        z1, z2 = encoder(original), encoder(repeated)
        loss = info_nce(z1, z2, temperature=float(self.cfg.temperature), queue=self.queue.items)
        queued = len(self.queue)
        if self.training:  # the queue takes this batch after its loss; validation leaves it alone
            self.momentum.encoder.eval()  # dropout off in the momentum copy
            self.queue.push(self.momentum(original))
        return {"loss": loss, "positive_cos": _alignment(z1, z2), "queue_negatives": float(queued)}

    def after_optimizer_step(self, encoder: SentenceEncoder) -> None:
        self.momentum.update(encoder)

    def describe(self) -> dict:
        c = self.cfg
        return {"esimcse": {"momentum": float(c.momentum), "queue_size": int(c.queue_size),
                            "dup_rate": float(c.dup_rate), "dup_sampling": str(c.dup_sampling)}}


def _width(encoder: SentenceEncoder) -> int:
    config = encoder.model.config
    return int(getattr(config, "hidden_size", None) or config.n_embd)


class AnglE(EmbeddingObjective):
    @classmethod
    def data_kind_for(cls, data_cfg) -> str:
        return "pairs"

    def attach(self, encoder: SentenceEncoder) -> None:
        from nlpx.embeddings.angle import TERMS

        if _width(encoder) % 2:
            raise UserError(f"objective=angle: the sentence vector has {_width(encoder)} dimensions; the angle "
                            "term splits it into equal real and imaginary halves (an even size)")
        for group in ("weights", "taus"):
            for term in TERMS:
                value = self.cfg[group].get(term)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise UserError(f"objective.{group}.{term}={value}: give a number >= 0")
        if not any(float(self.cfg.weights[t]) for t in TERMS):
            raise UserError("objective.weights: every weight is 0; nothing to train")

    def forward(self, encoder: SentenceEncoder, batch: dict) -> dict:
        from nlpx.embeddings.angle import TERMS, angle_objective

        z, w = encoder(batch["views"][0]), encoder(batch["views"][1])
        c = self.cfg
        parts = angle_objective(z, w, batch["scores"], weights={t: float(c.weights[t]) for t in TERMS},
                                taus={t: float(c.taus[t]) for t in TERMS}, positive_min=float(c.positive_min))
        return {**parts, "positive_cos": _alignment(z, w)}

    def describe(self) -> dict:
        from nlpx.embeddings.angle import TERMS

        c = self.cfg
        return {"angle": {"weights": {t: float(c.weights[t]) for t in TERMS},
                          "taus": {t: float(c.taus[t]) for t in TERMS}, "positive_min": float(c.positive_min)}}
