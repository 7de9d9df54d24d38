"""RoBERTa (model=roberta): BERT's architecture without segment embeddings, byte-level BPE.

RoBERTa counts positions from pad_id + 1 (its position ids are pad_id + 1 + k for the k-th
non-padding token), so the position table has max_position_embeddings + pad_id + 1 rows (514 for
512 tokens and <pad> = 1, as in roberta-base). model.max_position_embeddings is the number of
tokens in a sequence, as in every family.
"""

from __future__ import annotations

from nlpx.models.family import NO_TYPES_KEYS, Family


class RobertaFamily(Family):
    name = "roberta"
    uses_token_types = False
    model_type = "roberta"
    config_class = "RobertaConfig"
    config_keys = NO_TYPES_KEYS
    mlm_class = "RobertaForMaskedLM"
    base_class = "RobertaModel"
    embedding_width_key = None

    def config_fields(self, pad_token_id: int) -> dict:
        fields = super().config_fields(pad_token_id)
        fields["type_vocab_size"] = 1  # one all-zero segment row, as roberta-base
        fields["max_position_embeddings"] = int(self.cfg.max_position_embeddings) + pad_token_id + 1
        return fields

    @staticmethod
    def position_offset(config) -> int:
        return config.pad_token_id + 1

    def mlm_head(self, model):
        return model.lm_head
