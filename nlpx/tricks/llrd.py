"""Layer-wise learning-rate decay (ELECTRA, Clark et al. 2020; ULMFiT's discriminative LR):
with L numbered layers, layer l (1 = lowest) trains at lr * decay^(L - l), so the top layer
gets the base LR; everything of the backbone outside the numbered layers (embeddings, DeBERTa's
relative-position table, GPT-2's final LayerNorm) gets the lowest, lr * decay^L; the classifier
head and pooler get the base LR. ALBERT's one shared layer group counts as one layer (its L is
the number of groups). Weight decay follows BERT's rule (none on 1-D tensors) inside each group.
"""

from __future__ import annotations

import re

from nlpx.errors import UserError
from nlpx.tricks.base import Trick

# "<prefix>.<...>.layer.3." (BERT-like), "transformer.h.3." (GPT-2), "albert_layer_groups.0.",
# "gau.layers.3." (GAU)
LAYER = re.compile(r"\.(?:layer|layers|h|albert_layer_groups)\.(\d+)\.")


def layer_of(name: str, prefix: str) -> int | None:
    """-1: the classifier head / pooler; 0: the backbone outside the layers; l >= 1: layer l."""
    inner = name.split("base_model.model.", 1)[-1]  # LoRA (peft) prefixes every name
    if not inner.startswith(prefix + ".") or ".pooler." in f".{inner}":
        return -1
    m = LAYER.search(inner)
    return int(m.group(1)) + 1 if m else 0


class LLRD(Trick):
    name = "llrd"
    order = 10

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        if not 0 < float(cfg.decay) <= 1:
            raise UserError(f"trick.llrd.decay={cfg.decay}: must be in (0, 1]")

    def learning_rates(self, model, lr: float) -> dict[str, float]:
        prefix = model.base_model_prefix if hasattr(model, "base_model_prefix") else ""
        if hasattr(model, "peft_config"):
            prefix = model.get_base_model().base_model_prefix
        layers = {n: layer_of(n, prefix) for n, p in model.named_parameters() if p.requires_grad}
        top = max([v for v in layers.values()] + [0])
        decay = float(self.cfg.decay)
        return {n: lr if v < 0 else lr * decay ** (top - v if v > 0 else top) for n, v in layers.items()}

    def param_groups(self, model, lr, weight_decay):
        from nlpx.run.module import decays

        rates = self.learning_rates(model, lr)
        groups: dict[tuple[float, bool], list] = {}
        for n, p in model.named_parameters():
            if n in rates:
                groups.setdefault((rates[n], decays(n, p)), []).append(p)
        return [{"params": ps, "lr": rate, "weight_decay": float(weight_decay) if decays else 0.0}
                for (rate, decays), ps in sorted(groups.items(), key=lambda kv: (-kv[0][0], not kv[0][1]))]
