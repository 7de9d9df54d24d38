"""BERT (model=bert): transformers' BERT classes built from cfg.model, or a local checkpoint."""

from __future__ import annotations

from nlpx.models.family import Family


class BertFamily(Family):
    name = "bert"
    model_type = "bert"
    config_class = "BertConfig"
    mlm_class = "BertForMaskedLM"
    pair_class = "BertForPreTraining"  # MLM + NSP heads
    base_class = "BertModel"
    embedding_width_key = None

    # The objective reaches the parts it needs through these, so it never computes more than the
    # loss uses (the MLM head runs on the selected positions only).
    def mlm_head(self, model):
        return model.cls.predictions

    def pair_head(self, model):
        return getattr(model.cls, "seq_relationship", None)
