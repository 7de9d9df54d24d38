"""ALBERT attention-only and FFN-only cross-layer sharing, on top of transformers' ALBERT classes.

Why custom: transformers' ALBERT shares whole layers only. Its layers are grouped
(num_hidden_groups), and layer i runs group i * groups / layers: one group = every layer shares
all of its parameters (`all`), one group per layer = nothing shared (`none`). It cannot share the
attention alone or the FFN alone, the paper's other two modes (Lan et al. 2020, Table 4).

So these are built with one group per layer (as `none`), then every layer is given layer 0's
modules for the shared part:
  attention: attention.query, .key, .value and .dense (the output projection)
  ffn:       ffn and ffn_output (H->I and I->H)
The LayerNorms stay per layer (attention.LayerNorm and full_layer_layer_norm): only the
projections named above are shared. config.json records `nlpx_share`, and these classes re-share
in __init__, so from_pretrained through nlpx (and the meta-device parameter count) give the shared
model back.

The classes keep transformers' names so that config.json says `architectures: [AlbertForMaskedLM]`.
save_pretrained writes every layer's copy of the shared tensors (safetensors has no aliasing, and
transformers refuses to save tensors shared in a way its class does not declare), so plain
transformers (AutoModelForMaskedLM) loads the checkpoint as an ordinary unshared ALBERT
(num_hidden_groups = layers) with equal weights: the same outputs, but the copies are separate
parameters from then on.
"""

from __future__ import annotations

import re

import transformers

PARTIAL = ("attention", "ffn")
SHARED_MODULES = {"attention": ("attention.query", "attention.key", "attention.value", "attention.dense"),
                  "ffn": ("ffn", "ffn_output")}


def share_layers(albert, share: str | None) -> None:
    """Give every layer (one group each) layer 0's modules for the shared part."""
    if share not in PARTIAL:
        return
    groups = albert.encoder.albert_layer_groups
    first = groups[0].albert_layers[0]
    for group in groups[1:]:
        layer = group.albert_layers[0]
        for path in SHARED_MODULES[share]:
            parent, _, leaf = path.rpartition(".")
            owner = layer.get_submodule(parent) if parent else layer
            setattr(owner, leaf, first.get_submodule(path))


_LATER_GROUP = re.compile(r"(?:albert\.)?encoder\.albert_layer_groups\.([1-9]\d*)\.")


class _PartialSharing:
    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        share_layers(self.base_model, getattr(config, "nlpx_share", None))

    def save_pretrained(self, save_directory, *args, state_dict=None, **kwargs):
        if state_dict is None and getattr(self.config, "nlpx_share", None) in PARTIAL:
            # every later layer's entries as its own copy; transformers' declared ties (the MLM
            # decoder and the word embeddings) stay aliased and are handled as usual
            state_dict = {k: v.clone() if _LATER_GROUP.match(k) else v for k, v in self.state_dict().items()}
        return super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)


class AlbertForMaskedLM(_PartialSharing, transformers.AlbertForMaskedLM):
    """transformers' AlbertForMaskedLM with attention-only / FFN-only sharing (config.nlpx_share)."""


class AlbertForPreTraining(_PartialSharing, transformers.AlbertForPreTraining):
    """transformers' AlbertForPreTraining (MLM + SOP) with attention-only / FFN-only sharing."""


class AlbertModel(_PartialSharing, transformers.AlbertModel):
    """transformers' bare AlbertModel (an RTD discriminator) with the same sharing modes."""
