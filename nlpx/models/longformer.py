"""Longformer (model=longformer): RoBERTa with sliding-window attention plus global tokens, through
transformers' Longformer classes (Beltagy et al. 2020).

Each query attends model.window keys on each side (Longformer's attention_window is the whole
window, 2·model.window, and must be even: it is) and the first model.global_tokens positions
([CLS]) attend and are attended everywhere. transformers' Longformer pads every batch to a
multiple of its window and computes the window band only: memory grows linearly with length
(benchmarks/attention_cost.py). Positions, tokenizer and segments as RoBERTa (it started from
RoBERTa's weights): learned positions from pad_id + 1, byte-level BPE, no token types. The global
tokens are kept in config.json (`nlpx_global_tokens`) and put back by a hook wherever nlpx loads
the model (nlpx/models/sparse_attention.py).
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import cls_sep_special_ids
from nlpx.models.roberta import RobertaFamily


class LongformerFamily(RobertaFamily):
    name = "longformer"
    model_type = "longformer"
    config_class = "LongformerConfig"
    mlm_class = "LongformerForMaskedLM"
    base_class = "LongformerModel"

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.get("dilation") is not None:
            raise UserError(f"model.dilation={cfg.dilation}: not read by model=longformer (transformers' Longformer "
                            "has no dilated windows; model.attention_pattern=dilated is the mask form for bert-like "
                            "families)")
        for key in ("window", "global_tokens"):
            if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or cfg[key] < (1 if key == "window" else 0):
                raise UserError(f"model.{key}={cfg.get(key)}: give an integer >= {1 if key == 'window' else 0}")

    def config_fields(self, pad_token_id: int) -> dict:
        return {**super().config_fields(pad_token_id), "attention_window": 2 * int(self.cfg.window),
                "nlpx_global_tokens": int(self.cfg.global_tokens)}

    tokenizer_fields = cls_sep_special_ids
