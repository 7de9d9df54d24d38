"""XLNet (model=xlnet): transformers' XLNet classes built from cfg.model, for the permutation LM
(objective=plm, nlpx/data/permutation.py).

Relative positions (no position table, no length limit in the config), two-stream attention in
XLNetLMHeadModel (perm_mask, target_mapping), no memory (mem_len None: nlpx trains on independent
examples, not Transformer-XL segments). XLNet's summary token is last: ``A [SEP] (B [SEP]) [CLS]``
in pretraining (permutation.cls_last) and in the exported tokenizer, which pads on the left so
that XLNetForSequenceClassification's last position is [CLS] in every row of a batch.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import Family


class XlnetFamily(Family):
    name = "xlnet"
    model_type = "xlnet"
    positions = ("relative",)
    config_class = "XLNetConfig"
    mlm_class = "XLNetLMHeadModel"
    base_class = "XLNetModel"
    embedding_width_key = None
    permutation_only = True  # pretrained by objective=plm alone (two-stream attention)

    def __init__(self, cfg):
        super().__init__(cfg)
        for key in ("max_position_embeddings", "window", "dilation", "global_tokens"):
            if cfg.get(key) is not None:
                raise UserError(f"model.{key}={cfg[key]}: not read by model=xlnet (relative positions, full "
                                "attention)")

    def config_fields(self, pad_token_id: int) -> dict:
        c = self.cfg
        if float(c.hidden_dropout_prob) != float(c.attention_probs_dropout_prob):
            raise UserError(f"model=xlnet has one dropout: model.hidden_dropout_prob={c.hidden_dropout_prob} and "
                            f"model.attention_probs_dropout_prob={c.attention_probs_dropout_prob} must be equal")
        if c.attn_implementation != "eager":
            raise UserError(f"model.attn_implementation={c.attn_implementation}: transformers' XLNet has eager "
                            "attention only")
        # XLNetConfig takes unknown keys silently: every field is named here, none passed through
        return {"n_layer": int(c.num_hidden_layers), "d_model": int(c.hidden_size), "n_head": int(c.num_attention_heads),
                "d_inner": int(c.intermediate_size), "ff_activation": str(c.hidden_act), "dropout": float(c.hidden_dropout_prob),
                "initializer_range": float(c.initializer_range), "layer_norm_eps": float(c.layer_norm_eps),
                "mem_len": None, "use_mems_eval": False, "use_mems_train": False}

    def tokenizer_fields(self, config, tokenizer) -> None:
        # XLNet's defaults are ids of its own SentencePiece vocabulary
        config.bos_token_id = tokenizer.cls_token_id
        config.eos_token_id = tokenizer.sep_token_id

    def export_tokenizer(self, tokenizer):
        """XLNet's layout and padding side in a tokenizer of their own. A plain fast tokenizer, not
        the training one's class: BertTokenizerFast puts its own [CLS]-first template back on reload."""
        from tokenizers import Tokenizer, processors
        from transformers import PreTrainedTokenizerFast

        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: the training one is kept
        cls, sep = tokenizer.cls_token, tokenizer.sep_token
        backend.post_processor = processors.TemplateProcessing(
            single=f"$A:0 {sep}:0 {cls}:2", pair=f"$A:0 {sep}:0 $B:1 {sep}:1 {cls}:2",
            special_tokens=[(cls, tokenizer.cls_token_id), (sep, tokenizer.sep_token_id)])
        specials = {k: getattr(tokenizer, k) for k in ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token")}
        return PreTrainedTokenizerFast(tokenizer_object=backend, padding_side="left",
                                       model_input_names=["input_ids", "token_type_ids", "attention_mask"], **specials)

    def position_table(self, model):
        raise UserError("model=xlnet has relative positions: no position table")

    def base(self, model):
        return model.transformer

    def mlm_head(self, model):
        return model.lm_loss

    def embedding_tables(self, model) -> dict:
        return {"word": model.transformer.word_embedding}

    def pooled(self, encoder_output, attention_mask=None):
        """The last non-padding position (XLNet's summary token)."""
        import torch

        hidden = encoder_output.last_hidden_state
        if attention_mask is None:
            return hidden[:, -1]
        last = attention_mask.long().cumsum(-1).argmax(-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
