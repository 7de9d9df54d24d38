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
    permutation = False  # True: XLNet's permutation LM (the one objective a permutation-only family takes)
    monitor = "mlm_loss"  # the validation metric (lower is better) that picks checkpoints/best.ckpt
    common_eval = False  # also scored on the common masked-LM evaluation set (nlpx.data.common_eval)
    # set by the training module before each step: True when this optimizer step's metrics are
    # logged, so costly diagnostics (RTD's per-source gradients) are computed only then
    log_due = False

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
        if family.permutation_only and not cls.permutation:
            raise UserError(f"objective={objective_name}: model={family.name} pretrains with its permutation LM "
                            "(objective=plm)")

    @classmethod
    def model_class(cls, family):
        """The transformers class the run trains (and exports to hf/)."""
        return family.pretraining_class(cls.needs_nsp)

    @classmethod
    def examples(cls, instances, tokenizer, cfg, *, seed: int, stream: int, train: bool):
        """The dataset a step reads: `instances` masked by the shared masking code, one generator per
        example from (seed, epoch, index, stream); validation (train=False) keeps one fixed mask."""
        from nlpx.data.dataset import MaskedExamples
        from nlpx.data.formats import masking_config

        return MaskedExamples(instances, tokenizer, masking_config(cfg), seed=seed, stream=stream,
                              static=not train or cfg.masking.mode == "static")

    @classmethod
    def collator(cls, tokenizer):
        from nlpx.data.dataset import Collator

        return Collator(tokenizer.pad_token_id)

    def attach(self, model) -> None:
        """Create the heads this objective owns for `model` (after the model exists)."""

    def common_metrics(self, model, batches) -> dict[str, float]:
        """Metrics on the common evaluation set's batches (objectives with common_eval = True)."""
        raise NotImplementedError(f"objective {self.name} has no common evaluation")

    def export_state(self, model) -> dict | None:
        """The state dict to export for `model` when it differs from model.state_dict()."""
        return None

    def describe(self, model) -> dict:
        """Entries of the run's summary.json about this objective's own parts."""
        return {}

    def export_heads(self, target: Path, tokenizer=None) -> None:
        """Save the objective's own parameters next to the HF export (nothing when it has none)."""
        self.save_heads(target, self.state_dict())

    def save_heads(self, target: Path, state: dict, note: str = "heads nlpx adds on top of the HF model; "
                   "the HF model itself loads without them") -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        if not state:
            return
        save_file(state, str(Path(target) / HEADS_FILE))
        (Path(target) / "nlpx_heads.json").write_text(json.dumps(
            {"objective": self.name, "file": HEADS_FILE, "tensors": {k: list(v.shape) for k, v in state.items()},
             "note": note}, indent=2) + "\n")
