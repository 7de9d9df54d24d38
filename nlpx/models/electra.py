"""ELECTRA (model=electra): the ELECTRA encoder with its MLM (generator) head.

The generator/discriminator pair of replaced-token detection is the RTD objective's (objective=rtd):
there the generator is an ElectraForMaskedLM and the discriminator an ElectraForPreTraining (HF's
RTD head); with other objectives this family is one ELECTRA encoder in its MLM form.
model.embedding_size is ELECTRA's factorised embedding width (= hidden by default, as ELECTRA-base; ELECTRA-small uses 128).
"""

from __future__ import annotations

from nlpx.models.family import Family


class ElectraFamily(Family):
    name = "electra"
    model_type = "electra"
    config_class = "ElectraConfig"
    mlm_class = "ElectraForMaskedLM"
    base_class = "ElectraModel"
    rtd_class = "ElectraForPreTraining"  # encoder + discriminator_predictions

    def config_fields(self, pad_token_id: int) -> dict:
        return {**super().config_fields(pad_token_id), "embedding_size": int(self.cfg.embedding_size)}

    def mlm_head(self, model):
        from torch import nn

        return nn.Sequential(model.generator_predictions, model.generator_lm_head)

    def rtd_head(self, model):
        return getattr(model, "discriminator_predictions", None)
