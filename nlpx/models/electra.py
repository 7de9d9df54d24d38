"""ELECTRA (model=electra): the ELECTRA encoder with its MLM (generator) head.

The generator/discriminator pair of replaced-token detection is the RTD objective's; this family
is one ELECTRA encoder in its MLM form (ElectraForMaskedLM). model.embedding_size is ELECTRA's
factorised embedding width (= hidden by default, as ELECTRA-base; ELECTRA-small uses 128).
"""

from __future__ import annotations

from nlpx.models.family import Family


class ElectraFamily(Family):
    name = "electra"
    model_type = "electra"
    config_class = "ElectraConfig"
    mlm_class = "ElectraForMaskedLM"
    base_attr = "electra"

    def config_fields(self, pad_token_id: int) -> dict:
        return {**super().config_fields(pad_token_id), "embedding_size": int(self.cfg.embedding_size)}

    def mlm_head(self, model):
        from torch import nn

        return nn.Sequential(model.generator_predictions, model.generator_lm_head)
