"""DeBERTa (model=deberta): transformers' DeBERTa-v2 classes (the v2/v3 backbone).

Disentangled attention: each layer adds to content->content the content->position (c2p) and
position->content (p2c) terms over relative-position embeddings (no position->position term);
relative distances are log-bucketed into model.position_buckets buckets (per side) up to
model.max_relative_positions (-1: max_position_embeddings). The relative embeddings are shared by
all layers (encoder.rel_embeddings, LayerNorm'd: norm_rel_ebd) and projected with each layer's
own key/query projections (share_att_key, as in v2/v3). model.pos_att_type picks the terms.
position_biased_input=false (v2/v3): no absolute position embedding at the input at all.
No segment embeddings (type_vocab_size 0, as the v3 checkpoints).

Enhanced mask decoder (EMD): NOT implemented, on purpose. In the paper absolute positions enter
only just before the MLM softmax; transformers' DebertaV2ForMaskedLM has no EMD, so a model with
one would not be a DebertaV2 checkpoint any more: `AutoModelForMaskedLM.from_pretrained` of the
exported hf/ folder would drop the EMD and predict differently from the model nlpx trained (the
interface promise of every family), and fine-tuning never uses the EMD anyway. Without it the
pretrained MLM sees no absolute positions, exactly like transformers' DeBERTa-v3. If absolute
positions are wanted, model.position_biased_input=true adds a learned absolute table at the input
(DeBERTa-v2's option, reloadable by transformers).
transformers' DeBERTa-v2 has no SDPA path, so attention is eager.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import NO_TYPES_KEYS, Family

ATTENTION_TERMS = ("c2p", "p2c")


class DebertaFamily(Family):
    name = "deberta"
    uses_token_types = False
    positions = ("relative",)
    model_type = "deberta-v2"
    config_class = "DebertaV2Config"
    config_keys = NO_TYPES_KEYS
    mlm_class = "DebertaV2ForMaskedLM"
    base_class = "DebertaV2Model"

    def config_fields(self, pad_token_id: int) -> dict:
        terms = [str(t) for t in self.cfg.pos_att_type]
        bad = [t for t in terms if t not in ATTENTION_TERMS]
        if bad:
            raise UserError(f"model.pos_att_type: unknown term {bad[0]} (valid: a list of "
                            f"{', '.join(ATTENTION_TERMS)}; content->content is always there)")
        fields = super().config_fields(pad_token_id)
        fields["type_vocab_size"] = 0
        return {**fields, "relative_attention": True, "pos_att_type": terms,
                "position_buckets": int(self.cfg.position_buckets),
                "max_relative_positions": int(self.cfg.max_relative_positions),
                "position_biased_input": bool(self.cfg.position_biased_input),
                "share_att_key": True, "norm_rel_ebd": "layer_norm"}

    def mlm_head(self, model):
        if model.legacy:  # transformers' default head: transform + decoder tied to the word embeddings
            return model.cls
        import functools

        return functools.partial(model.lm_predictions, word_embeddings=model.deberta.embeddings.word_embeddings)
