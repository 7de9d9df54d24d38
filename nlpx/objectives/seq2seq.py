"""UniLM's sequence-to-sequence objective and SimBERT (objective=unilm | simbert), on pairs of
similar sentences with a pretrained bert, roformer or electra checkpoint and its masked-LM head
(CONCEPTS.md, "UniLM seq2seq mask / SimBERT").

Input `[CLS] A [SEP] B [SEP]`, segment 0 for `[CLS] A [SEP]` and 1 for `B [SEP]`:

  mask     a token of segment 0 attends to every token of segment 0; a token of segment 1 attends
           to segment 0 and to the tokens of segment 1 up to itself; padding is attended by none.
           Passed to the encoder as a 4-D additive mask (batch, 1, query, key), which transformers'
           bert, roformer and electra take as given.
  causal   (objective.lm=causal, the default; SimBERT's) the hidden state at position t predicts
           token t+1 through the masked-LM head, for every t+1 in segment 1: B's first token from
           A's last [SEP], ..., B's closing [SEP] from B's last token. Loss: the mean over those
           targets of the batch.
  masked   (objective.lm=masked, UniLM's own) a share objective.mask_ratio of segment 1's tokens
           (at least one a pair) is replaced by [MASK] and predicted at its own position.

Under this mask the hidden states of segment 0 are those of `[CLS] A [SEP]` encoded alone, so the
sentence vector of A (model.pooling over segment 0) is what `nlpx eval sts` computes for A.

  simbert  both directions of each pair (A -> B and B -> A) as the batch's 2n sequences; the loss
           is the causal loss plus objective.contrastive_weight x the in-batch contrastive loss:
           cosine similarities of the 2n sentence vectors times objective.scale (SimBERT's 30),
           the diagonal excluded, each sentence's target its pair's other sentence, cross-entropy
           averaged over the 2n rows (as SimBERT's code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nlpx.errors import UserError
from nlpx.objectives.contrastive import EmbeddingObjective

LM_KINDS = ("causal", "masked")
# transformers' classes that pass a 4-D attention mask through unchanged and have token types
SEQ2SEQ_MODEL_TYPES = ("bert", "roformer", "electra")


def seq2seq_allowed(token_type_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, query, key) bool: may the query attend to the key."""
    seg = token_type_ids.bool()
    n = seg.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=seg.device).tril()
    source_key = ~seg[:, None, :]                               # every query sees segment 0
    target_pair = seg[:, :, None] & seg[:, None, :] & causal    # segment 1 sees itself up to the query
    return (source_key | target_pair) & attention_mask.bool()[:, None, :]


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 1, query, key): 0 where allowed, the dtype's most negative number elsewhere (the form
    transformers' eager and SDPA attention add to the logits)."""
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def masked_lm_head(lm):
    """hidden [..., H] -> vocabulary logits: the masked-LM head of a bert, roformer or electra
    ForMaskedLM, as nlpx's families reach it (nlpx/models/{bert,roformer,electra}.py)."""
    if lm.config.model_type == "electra":
        return lambda h: lm.generator_lm_head(lm.generator_predictions(h))
    return lm.cls.predictions


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled positions (labels -100 are not)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def contrastive_loss(vectors: torch.Tensor, scale: float) -> torch.Tensor:
    """SimBERT's in-batch loss over 2n vectors ordered (a0, b0, a1, b1, ...): row i's target is i ^ 1."""
    z = F.normalize(vectors.float(), dim=-1)
    sims = (z @ z.T) * scale
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sims = sims.masked_fill(eye, -1e12)
    targets = torch.arange(len(z), device=z.device) ^ 1
    return F.cross_entropy(sims, targets)


class UniLM(EmbeddingObjective):
    model_head = "masked_lm"   # nlpx.embeddings.encoder.load_encoder loads the checkpoint with this head
    validates = True           # the generation's perplexity on the held-out pairs
    both_directions = False

    @classmethod
    def data_kind_for(cls, data_cfg) -> str:
        from nlpx.embeddings.data import data_kind

        return "triples" if data_kind(data_cfg) == "triples" else "pairs"

    def __init__(self, cfg, data_kind: str):
        super().__init__(cfg, data_kind)
        if cfg.lm not in LM_KINDS:
            raise UserError(f"objective.lm={cfg.lm}: unknown (valid: {', '.join(LM_KINDS)})")
        if not 0.0 < float(cfg.mask_ratio) <= 1.0:
            raise UserError(f"objective.mask_ratio={cfg.mask_ratio}: give a fraction in (0, 1]")
        if not 0.0 <= float(cfg.heldout) < 0.5:
            raise UserError(f"objective.heldout={cfg.heldout}: give a fraction of the pairs in [0, 0.5)")
        self.heldout_pairs: list[tuple[str, str]] = []

    def attach(self, encoder) -> None:
        config = encoder.lm.config
        if config.model_type not in SEQ2SEQ_MODEL_TYPES or int(getattr(config, "type_vocab_size", 0)) < 2:
            raise UserError(f"objective={self.cfg.name}: {config.model_type} checkpoints are not supported (valid: "
                            f"{', '.join(SEQ2SEQ_MODEL_TYPES)}, with two token types: the seq2seq mask is read "
                            "from the segments)")
        # exported with hf/'s config.json: `nlpx generate similar` decodes next-token models only
        config.nlpx_seq2seq_lm = str(self.cfg.lm)

    def training_rows(self, data, seed: int):
        from nlpx.embeddings.data import EmbeddingData
        from nlpx.embeddings.seq2seq_data import distinct_pairs, similar_pairs, split_heldout

        pairs, repeats = distinct_pairs(similar_pairs(data, self.cfg.min_score))
        train, self.heldout_pairs = split_heldout(pairs, float(self.cfg.heldout), seed)
        if len(train) < int(self.cfg.batch_size):
            raise UserError(f"objective.batch_size={self.cfg.batch_size}: {len(train)} similar pairs to train on "
                            f"({len(pairs)} of the pairs at objective.min_score, "
                            f"{len(self.heldout_pairs)} held out)")
        meta = {**data.meta, "similar_pairs": len(pairs), "repeated_pairs_dropped": repeats, "train_pairs": len(train),
                "heldout_pairs": len(self.heldout_pairs)}
        return EmbeddingData(data.kind, train, data.source, meta)

    def collator(self, tokenizer, max_length: int, seed: int):
        from nlpx.embeddings.seq2seq_data import Seq2SeqCollator

        masked = (float(self.cfg.mask_ratio), seed) if self.cfg.lm == "masked" else None
        # held-out: the loss the model trains on (lm=masked: the same masked positions at every validation)
        self.heldout_collate = lambda rows: Seq2SeqCollator(
            tokenizer, max_length, both_directions=self.both_directions,
            masked=(float(self.cfg.mask_ratio), 0) if masked else None)(rows)
        return Seq2SeqCollator(tokenizer, max_length, both_directions=self.both_directions, masked=masked)

    @torch.no_grad()
    def validate(self, encoder) -> dict:
        """Mean next-token loss of B given A over the held-out pairs (both orders for simbert) and its
        perplexity exp(loss); dropout off."""
        if not self.heldout_pairs:
            return {}
        was_training = encoder.training
        encoder.eval()
        device = next(encoder.parameters()).device
        total, count = 0.0, 0
        size = int(self.cfg.eval_batch_size)
        for i in range(0, len(self.heldout_pairs), size):
            batch = {k: v.to(device) for k, v in self.heldout_collate(self.heldout_pairs[i:i + size]).items()
                     if k != "views"}
            loss, targets, _ = self.sequences(encoder, batch)
            total += float(loss) * int(targets)
            count += int(targets)
        encoder.train(was_training)
        mean = total / count
        return {"seq2seq_loss": mean, "seq2seq_ppl": math.exp(mean)}

    def sequences(self, encoder, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss of the generation, number of targets, the last hidden states). The vocabulary
        projection runs at the labelled positions only (as nlpx's MLM objective)."""
        types, labels = batch["token_type_ids"], batch["labels"]
        dtype = encoder.lm.get_input_embeddings().weight.dtype
        allowed = seq2seq_allowed(types, batch["attention_mask"])
        hidden = encoder.model(input_ids=batch["input_ids"], token_type_ids=types,
                               attention_mask=additive_mask(allowed, dtype)).last_hidden_state
        selected = labels != -100
        logits = masked_lm_head(encoder.lm)(hidden[selected])
        return lm_loss(logits, labels[selected]), selected.sum(), hidden

    def forward(self, encoder, batch: dict) -> dict:
        loss, targets, _ = self.sequences(encoder, batch)
        return {"loss": loss, "lm_loss": loss.detach(), "lm_targets": targets.float()}

    def describe(self) -> dict:
        c = self.cfg
        return {"seq2seq": {"lm": str(c.lm), "mask_ratio": float(c.mask_ratio) if c.lm == "masked" else None,
                            "both_directions": self.both_directions,
                            "min_score": float(c.min_score) if isinstance(c.min_score, (int, float)) else dict(c.min_score),
                            "heldout": float(c.heldout)}}


class SimBERT(UniLM):
    both_directions = True

    def __init__(self, cfg, data_kind: str):
        super().__init__(cfg, data_kind)
        if cfg.lm != "causal":
            raise UserError(f"objective.lm={cfg.lm}: SimBERT generates with the causal seq2seq loss (lm=causal)")
        if float(cfg.scale) <= 0 or float(cfg.contrastive_weight) < 0:
            raise UserError(f"objective.scale={cfg.scale}, objective.contrastive_weight={cfg.contrastive_weight}: "
                            "give a scale > 0 and a weight >= 0")

    def forward(self, encoder, batch: dict) -> dict:
        from nlpx.embeddings.pooling import pool

        lm, targets, hidden = self.sequences(encoder, batch)
        source = batch["attention_mask"] * (1 - batch["token_type_ids"])  # [CLS] A [SEP]: the sentence itself
        vectors = pool({"last_hidden_state": hidden}, source, encoder.pooling)
        similarity = contrastive_loss(vectors, float(self.cfg.scale))
        loss = lm + float(self.cfg.contrastive_weight) * similarity
        z = F.normalize(vectors.detach().float(), dim=-1)
        return {"loss": loss, "lm_loss": lm.detach(), "contrastive_loss": similarity.detach(),
                "lm_targets": targets.float(), "positive_cos": (z[0::2] * z[1::2]).sum(-1).mean()}

    def describe(self) -> dict:
        out = super().describe()
        out["simbert"] = {"scale": float(self.cfg.scale), "contrastive_weight": float(self.cfg.contrastive_weight)}
        return out
