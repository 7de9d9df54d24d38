"""BigBird (model=bigbird): block-sparse attention with global, sliding and random blocks, through
transformers' BigBird classes (Zaheer et al. 2020, the ITC form).

Queries and keys are cut into blocks of model.block_size tokens; each query block attends the
first and last blocks (global), its own and the two neighbouring blocks (sliding) and
model.num_random_blocks random blocks (fixed per layer and batch shape; transformers draws them
afresh each training forward and uses fixed ones in eval). transformers falls back to full
attention below (5 + 2·random blocks)·block size tokens (704 with its defaults, 64 and 3):
nlpx's defaults, block 16 and 1 random block, stay block-sparse from 113 tokens, and nlpx pads a
shorter batch rather than let the model switch (nlpx/models/sparse_attention.py). BERT's
embeddings, learned (or sinusoidal) positions, segments, WordPiece and MLM + NSP heads.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import Family, cls_sep_special_ids


class BigBirdFamily(Family):
    name = "bigbird"
    model_type = "big_bird"
    config_class = "BigBirdConfig"
    mlm_class = "BigBirdForMaskedLM"
    pair_class = "BigBirdForPreTraining"  # MLM + NSP heads
    base_class = "BigBirdModel"
    embedding_width_key = None

    def __init__(self, cfg):
        super().__init__(cfg)
        for key, why in (("window", "its window is 3 blocks: model.block_size"),
                         ("dilation", "it has no dilated windows"),
                         ("global_tokens", "its global tokens are the first and last blocks")):
            if cfg.get(key) is not None:
                raise UserError(f"model.{key}={cfg[key]}: not read by model=bigbird ({why})")
        for key, minimum in (("block_size", 1), ("num_random_blocks", 0)):
            value = cfg.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UserError(f"model.{key}={value}: give an integer >= {minimum}")

    def config_fields(self, pad_token_id: int) -> dict:
        return {**super().config_fields(pad_token_id), "attention_type": "block_sparse",
                "block_size": int(self.cfg.block_size), "num_random_blocks": int(self.cfg.num_random_blocks)}

    tokenizer_fields = cls_sep_special_ids

    def mlm_head(self, model):
        return model.cls.predictions

    def pair_head(self, model):
        return getattr(model.cls, "seq_relationship", None)
