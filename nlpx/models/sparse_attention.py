"""The hooks that keep transformers' sparse-attention classes doing what nlpx's config says.

Longformer (model=longformer): the model takes its global tokens as a `global_attention_mask`
argument, which nlpx's objectives, `eval sts` and `AutoModel` users do not pass. A pre-hook on
LongformerModel gives the first `nlpx_global_tokens` real positions ([CLS] by default) global
attention whenever the caller gave none (LongformerForSequenceClassification gives [CLS] its own).

BigBird (model=bigbird): transformers' BigBirdModel switches itself to full attention, for good
(set_attention_type changes the module), when a batch has at most (5 + 2·num_random_blocks)·
block_size tokens, with a log warning: a short GLUE batch would silently turn a block-sparse
model into a dense one for the rest of the run. A pre-hook pads every shorter batch with masked
padding to the shortest block-sparse length, (6 + 2·num_random_blocks)·block_size, and a forward
hook cuts the outputs back, so the model stays block-sparse at every length (padding costs
compute on short batches, never changes the real tokens' attention pattern); a model found in
full attention after a forward is an error.
"""

from __future__ import annotations


def apply(model) -> None:
    """Hook a Longformer or block-sparse BigBird model (idempotent); nothing for other models."""
    base = model.base_model
    if getattr(base, "_nlpx_sparse_hooked", False):
        return
    model_type = model.config.model_type
    if model_type == "longformer":
        base.register_forward_pre_hook(_global_tokens, with_kwargs=True)
    elif model_type == "big_bird" and model.config.attention_type == "block_sparse":
        base.register_forward_pre_hook(_pad_to_sparse_length, with_kwargs=True)
        base.register_forward_hook(_cut_to_input_length, with_kwargs=True)
    else:
        return
    base._nlpx_sparse_hooked = True


def sparse_minimum(config) -> int:
    """The shortest input transformers' BigBird runs block-sparse: above (5 + 2r)·b, a multiple of b."""
    return (6 + 2 * config.num_random_blocks) * config.block_size


def _input(args, kwargs, name: str, position: int):
    return kwargs.get(name, args[position] if len(args) > position else None)


def _global_tokens(module, args, kwargs):
    if _input(args, kwargs, "global_attention_mask", 2) is not None:
        return None
    mask = _input(args, kwargs, "attention_mask", 1)
    ids = _input(args, kwargs, "input_ids", 0)
    embeds = kwargs.get("inputs_embeds")
    import torch

    shape = ids.shape if ids is not None else embeds.shape[:2]
    device = ids.device if ids is not None else embeds.device
    glob = torch.zeros(shape, dtype=torch.long, device=device)
    glob[:, : int(getattr(module.config, "nlpx_global_tokens", 1))] = 1
    if mask is not None:
        glob = glob * (mask > 0).long()
    return args, {**kwargs, "global_attention_mask": glob}


def _pad_to_sparse_length(module, args, kwargs):
    import torch
    import torch.nn.functional as F

    names = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")
    values = {n: _input(args, kwargs, n, i) for i, n in enumerate(names)}
    ids, embeds = values["input_ids"], values["inputs_embeds"]
    batch, length = (ids.shape if ids is not None else embeds.shape[:2])
    module._nlpx_length = length
    extra = sparse_minimum(module.config) - length
    if extra <= 0:
        return None
    device = ids.device if ids is not None else embeds.device
    pad_id = module.config.pad_token_id
    if values["attention_mask"] is None:
        values["attention_mask"] = torch.ones(batch, length, dtype=torch.long, device=device)
    values["attention_mask"] = F.pad(values["attention_mask"], (0, extra), value=0)
    if ids is not None:
        values["input_ids"] = F.pad(ids, (0, extra), value=pad_id)
    if embeds is not None:  # the token table's row of the pad token, as input_ids would give
        pad_rows = module.embeddings.word_embeddings(torch.full((batch, extra), pad_id, device=device))
        values["inputs_embeds"] = torch.cat([embeds, pad_rows.to(embeds.dtype)], dim=1)
    if values["token_type_ids"] is not None:
        values["token_type_ids"] = F.pad(values["token_type_ids"], (0, extra), value=0)
    if values["position_ids"] is not None:
        last = values["position_ids"][:, -1:]
        values["position_ids"] = torch.cat([values["position_ids"], last + torch.arange(1, extra + 1, device=device)], 1)
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return (), {**rest, **{k: v for k, v in values.items() if v is not None}}


def _cut_to_input_length(module, args, kwargs, output):
    if module.attention_type != "block_sparse":
        raise RuntimeError("BigBird switched itself to full attention despite nlpx's padding")
    length = module._nlpx_length
    if output.last_hidden_state.shape[1] == length:
        return None
    output.last_hidden_state = output.last_hidden_state[:, :length]
    if output.hidden_states is not None:
        output.hidden_states = tuple(h[:, :length] for h in output.hidden_states)
    return output
