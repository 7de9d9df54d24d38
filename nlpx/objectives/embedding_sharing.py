"""Embedding sharing between an RTD generator and its discriminator: NES, ES, GDES.

DeBERTaV3 (He et al. 2021, section 3) names the three ways the two models' input embeddings E
relate; nlpx applies the chosen one to every input table the two models both have and train
(Family.embedding_tables): the token embeddings, the learned absolute position table (BERT,
RoBERTa, ELECTRA, ALBERT; DeBERTa only with position_biased_input, as DeBERTa's own code) and
the segment table where the family has one. Never shared: the embedding LayerNorm, a projection
to the hidden size, DeBERTa's relative-position embeddings, a frozen sinusoidal table.

  nes   E_G and E_D separate; the MLM loss updates E_G only, the RTD loss E_D only.
  es    one table: the discriminator uses the generator's nn.Embedding itself, so both losses
        update the same tensor (ELECTRA's sharing; the "tug of war").
  gdes  E_D = sg(E_G) + E_Δ, E_Δ initialised to zero: the discriminator's `weight` becomes a
        torch parametrization of its own parameter E_Δ (`parametrizations.weight.original`)
        over the generator's live E_G, detached. The MLM loss updates E_G; the RTD loss reaches
        E_Δ only. At every step the effective E_D is exactly E_G + E_Δ (the sum is recomputed
        on every access); `materialised_state` writes it as a plain weight for export.

Why nlpx's own: no library implements GDES (the DeBERTa repo sets the weight in a forward hook;
transformers has no RTD at all). torch.nn.utils.parametrize is the tool made for "a weight that
is a function of other tensors", and keeps E_Δ a normal parameter for the optimizer and the
checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

SHARING = ("nes", "es", "gdes")


class StopGradientSum(nn.Module):
    """weight = sg(source.weight) + delta, delta being the parametrized tensor."""

    def __init__(self, source: nn.Embedding):
        super().__init__()
        # not a submodule: the generator owns (and registers, saves, moves) its table
        object.__setattr__(self, "source", source)

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        return self.source.weight.detach() + delta

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return weight - self.source.weight.detach()


def share(mode: str, generator_tables: dict, discriminator_owner, discriminator_tables: dict, *,
          keep: bool = False) -> list[str]:
    """Apply `mode` to every table both models have with the same shape; returns their names
    (none for nes).

    discriminator_owner is the discriminator's embeddings module (whose attributes are replaced
    under es); tables are {"word": nn.Embedding, ...} from Family.embedding_tables. gdes starts
    from E_Δ = 0, or with keep=True (a trained discriminator) from E_Δ = E_D - E_G, so that E_D
    is unchanged.
    """
    shared = []
    if mode == "nes":
        return shared
    for name, d in discriminator_tables.items():
        g = generator_tables.get(name)
        if g is None or g.weight.shape != d.weight.shape:
            continue
        shared.append(name)
        if mode == "es":
            setattr(discriminator_owner, f"{name}_embeddings", g)
        elif mode == "gdes":
            parametrize.register_parametrization(d, "weight", StopGradientSum(g))  # E_Δ = E_D - E_G
            if not keep:
                with torch.no_grad():
                    d.parametrizations.weight.original.zero_()  # E_Δ = 0: E_D starts equal to E_G
    return shared


def delta(table: nn.Embedding) -> torch.Tensor | None:
    """E_Δ of a GDES table, None for a plain one."""
    if parametrize.is_parametrized(table, "weight"):
        return table.parametrizations.weight.original
    return None


def materialised_state(model: nn.Module) -> dict:
    """model.state_dict() with every GDES weight written as the plain `<table>.weight` E_G + E_Δ."""
    state = {}
    for key, value in model.state_dict().items():
        if ".parametrizations.weight.original" in key:
            owner = key.replace(".parametrizations.weight.original", "")
            state[f"{owner}.weight"] = model.get_submodule(owner).weight.detach()
        else:
            state[key] = value
    return state
