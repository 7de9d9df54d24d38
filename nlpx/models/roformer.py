"""RoFormer (model=roformer): BERT with rotary position embeddings (RoPE) in every attention layer.

Positions are rotary only (model.position_embedding=rotary): RoFormer has no absolute table; its
fixed sin/cos table (head_dim wide) is a frozen parameter of transformers' RoFormerEncoder.
transformers' RoFormer has no SDPA path, so attention is eager.
"""

from __future__ import annotations

from nlpx.models.family import Family


class RoformerFamily(Family):
    name = "roformer"
    positions = ("rotary",)
    model_type = "roformer"
    config_class = "RoFormerConfig"
    mlm_class = "RoFormerForMaskedLM"
    base_class = "RoFormerModel"

    def config_fields(self, pad_token_id: int) -> dict:
        return {**super().config_fields(pad_token_id), "embedding_size": int(self.cfg.embedding_size),
                "rotary_value": bool(self.cfg.rotary_value)}

    def mlm_head(self, model):
        return model.cls.predictions
