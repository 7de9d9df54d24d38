"""What every pretraining objective shares: the family check, its own heads, their export.

An objective is an nn.Module attached to the LightningModule, so heads it owns (a pair head for
a family whose HF class has none, SpanBERT's SBO head) are trained, checkpointed and resumed with
the model. They are exported next to the HF model as nlpx_heads.safetensors: the encoder stays
a plain transformers model that `AutoModel` and `nlpx eval glue` load as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from nlpx.errors import UserError

HEADS_FILE = "nlpx_heads.safetensors"


class PretrainObjective(nn.Module):
    name = "?"
    decoder = False  # True: needs a decoder-only family (clm); False: an encoder family
    needs_nsp = False  # a 2-way sentence-pair head on the pooled vector (NSP, SOP)
    masked = True  # the data layer corrupts the inputs (False: plain token streams, for clm)

    def __init__(self, cfg, family):
        super().__init__()
        self.cfg = cfg
        self.family = family

    @classmethod
    def check_family(cls, family, objective_name: str) -> None:
        """A pair that makes no sense (clm on an encoder, nsp on gpt2) is a user error, early."""
        if cls.decoder and not family.decoder:
            raise UserError(f"objective={objective_name} needs a decoder-only model (model=gpt2); "
                            f"model={family.name} is an encoder: use objective=mlm or another masked objective")
        if family.decoder and not cls.decoder:
            raise UserError(f"objective={objective_name} needs a bidirectional encoder; model={family.name} "
                            "is decoder-only: use objective=clm")

    def attach(self, model) -> None:
        """Create the heads this objective owns for `model` (after the model exists)."""

    def export_heads(self, target: Path) -> None:
        """Save the objective's own parameters next to the HF export (nothing when it has none)."""
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        if not state:
            return
        save_file(state, str(Path(target) / HEADS_FILE))
        (Path(target) / "nlpx_heads.json").write_text(json.dumps(
            {"objective": self.name, "file": HEADS_FILE, "tensors": {k: list(v.shape) for k, v in state.items()},
             "note": "heads nlpx adds on top of the HF model; the HF model itself loads without them"},
            indent=2) + "\n")
