"""model.attention_pattern: which keys each query may attend, as an attention mask (CONCEPTS.md,
"Sparse attention").

  full          every key: the family's own attention
  local         a sliding window: key j for query i where |i − j| ≤ model.window (keys on each
                side, so a window of at least the sequence length is full attention)
  dilated       every model.dilation-th key out to model.window of them on each side:
                |i − j| ≤ window · dilation and dilation divides i − j
  global_local  local, plus the first model.global_tokens positions ([CLS] with the default 1)
                attend to every position and every position attends to them (Longformer's
                global + sliding window)

Masks save no compute and no memory: every query still scores every key, and the keys outside
its pattern get a logit of −∞, so their attention weight is exactly 0. They are for studying what
a pattern does to a model (its quality, its length extrapolation), not for speed: model=longformer
and model=bigbird compute only their patterns.

Applied by a forward pre-hook on the family's base model (transformers' classes take no pattern):
the padding mask [B, T] the model is called with becomes the 4D mask [B, 1, T, T] of pattern and
padding together, which transformers' mask builders pass through as it is (bool for SDPA, additive
for eager attention). Each query also keeps itself, so that a padding query whose window holds no
real key has a key to attend (its output is padding's and never read); a real query's window always
holds it. The config records the pattern (`nlpx_attention_pattern`, ...): nlpx puts the hook back
wherever it loads the model (attention_scale.restore), and log_n then counts each query's keys
within its pattern.
"""

from __future__ import annotations

import functools

from nlpx.model_options import PATTERNS

# transformers' model types whose mask builders take a prepared 4D mask as it is (DeBERTa builds
# its own from the padding mask; GPT-2's is causal)
MODEL_TYPES = ("bert", "roberta", "albert", "electra", "roformer")


@functools.lru_cache(maxsize=16)  # every forward of every batch of a length asks again
def allowed_keys(length: int, kind: str, window: int, dilation: int = 1, global_tokens: int = 0):
    """[T, T] bool: True where query i (row) may attend key j (column). Shared between calls:
    not to be modified in place."""
    import torch

    if kind not in PATTERNS:
        raise ValueError(f"attention pattern '{kind}' (valid: {', '.join(PATTERNS)})")
    if kind == "full":
        return torch.ones(length, length, dtype=torch.bool)
    offset = torch.arange(length)[:, None] - torch.arange(length)[None, :]
    distance = offset.abs()
    if kind == "dilated":
        return (distance <= window * dilation) & (offset % dilation == 0)
    allowed = distance <= window
    if kind == "global_local":
        allowed[:global_tokens, :] = True
        allowed[:, :global_tokens] = True
    return allowed


def apply(base_model, kind: str, window: int, dilation: int, global_tokens: int) -> None:
    """Hook the base model (BertModel, ...) so that every call attends within the pattern."""
    if kind == "full" or hasattr(base_model, "_nlpx_pattern"):
        return
    base_model._nlpx_pattern = (kind, int(window), int(dilation), int(global_tokens))
    base_model.register_forward_pre_hook(_patterned, with_kwargs=True)


def _patterned(module, args, kwargs):
    import torch

    ids = kwargs.get("input_ids", args[0] if args else None)
    embeds = kwargs.get("inputs_embeds")
    batch, length = (ids.shape if ids is not None else embeds.shape[:2])
    device = (ids if ids is not None else embeds).device
    padding = kwargs.get("attention_mask")
    if padding is not None and padding.dim() != 2:
        raise ValueError("model.attention_pattern: the model was called with a prepared attention mask; "
                         "it needs the [batch, length] padding mask")
    keys = torch.ones(batch, length, dtype=torch.bool, device=device) if padding is None else padding.bool()
    allowed = allowed_keys(length, *module._nlpx_pattern).to(device)
    mask = (allowed[None] & keys[:, None, :]) | torch.eye(length, dtype=torch.bool, device=device)[None]
    mask = mask[:, None]  # [B, 1, T, T]
    if module.config._attn_implementation != "sdpa":  # eager adds the mask to the logits
        dtype = module.dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    return args, {**kwargs, "attention_mask": mask}
