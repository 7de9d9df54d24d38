"""GAU-α (model=gau): an encoder of gated attention units, nlpx's own transformers classes
(nlpx/models/gau_modeling.py has the formulas).

One GAU layer replaces attention + FFN with about half a Transformer layer's parameters, so the
size presets have twice as many layers (conf/model/gau.yaml). Positions are rotary only; the
attention is GAU-α's softmax with the log_n scale by default (model.attention_scale=sqrt_d for the
plain 1/√s) or FLASH's relu² (model.gau_attention=relu2). No pooler, no HF pair or RTD head: the
objectives add their own.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import Family
from nlpx.models.gau_modeling import MODEL_TYPE

_MODELING = "nlpx.models.gau_modeling."
GAU_KEYS = ("num_hidden_layers", "hidden_size", "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
            "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps")


class GauFamily(Family):
    name = "gau"
    positions = ("rotary",)
    model_type = MODEL_TYPE
    config_class = _MODELING + "GauConfig"
    mlm_class = _MODELING + "GauForMaskedLM"
    base_class = _MODELING + "GauModel"
    config_keys = GAU_KEYS
    scales_attention_itself = True

    def __init__(self, cfg):
        super().__init__(cfg)
        # keys every family's file has that a GAU layer has no use for: giving them is an error
        if cfg.get("num_attention_heads") not in (None, 1):
            raise UserError(f"model.num_attention_heads={cfg.num_attention_heads}: not read by model=gau "
                            "(one attention head, model.qk_dim wide)")
        if cfg.get("intermediate_size") is not None:
            raise UserError(f"model.intermediate_size={cfg.intermediate_size}: not read by model=gau "
                            "(its U, V width is model.expansion × model.hidden_size)")
        if cfg.get("attn_implementation") != "eager":
            raise UserError(f"model.attn_implementation={cfg.get('attn_implementation')}: model=gau computes "
                            "its own attention (valid: eager)")

    def config_fields(self, pad_token_id: int) -> dict:
        hidden = int(self.cfg.hidden_size)
        return {**super().config_fields(pad_token_id), "intermediate_size": int(self.cfg.expansion * hidden),
                "qk_dim": int(self.cfg.qk_dim), "embedding_size": int(self.cfg.embedding_size),
                "gau_attention": str(self.cfg.gau_attention)}

    def reference(self, vocab_size: int, pad_token_id: int):
        """BERT (MLM) of the same width with half as many layers, the Transformer a size preset
        means, for `nlpx config` to show next to GAU's count; None for a checkpoint."""
        if self.pretrained is not None:
            return None
        from transformers import BertConfig, BertForMaskedLM

        hidden = int(self.cfg.hidden_size)
        layers = max(1, int(self.cfg.num_hidden_layers) // 2)
        config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, hidden_size=hidden,
                            num_hidden_layers=layers, num_attention_heads=max(2, hidden // 64),
                            intermediate_size=4 * hidden, max_position_embeddings=int(self.cfg.max_position_embeddings))
        return f"BERT with {layers} layers of {hidden}", BertForMaskedLM(config)

    def mlm_head(self, model):
        return model.cls
