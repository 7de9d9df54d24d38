"""ALBERT (model=albert): factorised embedding and cross-layer parameter sharing.

model.embedding_size E (128): tokens are embedded in E dims and projected to H (V*E + E*H instead
of V*H); the MLM head projects back H -> E before the (tied) decoder.
model.share: all (one layer's parameters used by every layer, ALBERT's default) | attention |
ffn | none. `all` and `none` are transformers' own (num_hidden_groups 1 or num_hidden_layers);
`attention` and `ffn` are nlpx's (see nlpx.models.albert_sharing: why, and what is shared; the
LayerNorms stay per layer). Dropout is off by default, as in ALBERT. With nsp=True the model is
AlbertForPreTraining (MLM + sentence-order-prediction head), else AlbertForMaskedLM.
"""

from __future__ import annotations

from nlpx.errors import UserError
from nlpx.models.family import Family

SHARE = ("all", "attention", "ffn", "none")


class AlbertFamily(Family):
    name = "albert"
    model_type = "albert"
    config_class = "AlbertConfig"
    base_class = "AlbertModel"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.share = str(cfg.get("share") or "all")
        if self.share not in SHARE:
            raise UserError(f"model.share={self.share}: unknown sharing mode for model=albert "
                            f"(valid: {', '.join(SHARE)})")

    def config_fields(self, pad_token_id: int) -> dict:
        fields = super().config_fields(pad_token_id)
        layers = int(fields["num_hidden_layers"])
        fields.update(embedding_size=int(self.cfg.embedding_size), inner_group_num=1,
                      num_hidden_groups=1 if self.share == "all" else layers)
        if self.share in ("attention", "ffn"):
            fields["nlpx_share"] = self.share
        return fields

    def pretraining_class(self, nsp: bool):
        from nlpx.models import albert_sharing

        return albert_sharing.AlbertForPreTraining if nsp else albert_sharing.AlbertForMaskedLM

    def discriminator_class(self):
        from nlpx.models import albert_sharing

        return albert_sharing.AlbertModel

    def mlm_head(self, model):
        return model.predictions

    def pair_head(self, model):
        return getattr(model, "sop_classifier", None)
