"""BERT (model=bert): transformers' BERT classes built from cfg.model, or a local checkpoint."""

from __future__ import annotations

from nlpx.models.pretrained import resolve_pretrained

# Keys of cfg.model that are transformers.BertConfig fields.
CONFIG_KEYS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
               "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps")


class BertFamily:
    name = "bert"

    def __init__(self, cfg):
        self.cfg = cfg
        self.pretrained = resolve_pretrained(cfg.pretrained)

    def hf_config(self, vocab_size: int, pad_token_id: int):
        from transformers import BertConfig

        if self.pretrained is not None:
            return BertConfig.from_pretrained(str(self.pretrained))
        fields = {k: self.cfg[k] for k in CONFIG_KEYS}
        return BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id,
                          attn_implementation=self.cfg.attn_implementation, **fields)

    @staticmethod
    def pretraining_class(nsp: bool):
        """BertForPreTraining (MLM + NSP heads) or BertForMaskedLM (MLM head only)."""
        from transformers import BertForMaskedLM, BertForPreTraining

        return BertForPreTraining if nsp else BertForMaskedLM

    def pretraining_model(self, tokenizer, *, nsp: bool):
        cls = self.pretraining_class(nsp)
        if self.pretrained is None:
            return cls(self.hf_config(len(tokenizer), tokenizer.pad_token_id))
        model = cls.from_pretrained(str(self.pretrained), attn_implementation=self.cfg.attn_implementation)
        return model.train()  # from_pretrained returns eval mode; dropout must be on to train

    # The objective reaches the parts it needs through these, so it never computes more than the
    # loss uses (the MLM head runs on the selected positions only).
    @staticmethod
    def encoder(model):
        return model.bert

    @staticmethod
    def mlm_head(model):
        return model.cls.predictions

    @staticmethod
    def nsp_head(model):
        return model.cls.seq_relationship
