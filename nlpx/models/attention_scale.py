"""model.attention_scale: the softmax scale of attention (CONCEPTS.md, "Entropy-invariant attention
scale").

  sqrt_d   the family's own logit scale (1/√d)
  log_n    that scale times log(n) / log(n₀) for each query, n the number of keys it may attend
           (its unmasked keys: padding excluded), n₀ = model.scale_train_length, so that
           softmax(κ·log n / d · QKᵀ) equals the family's own attention at the training length
           and keeps the attention's entropy from growing with n beyond it

log_n is applied by multiplying each query vector by its factor before the attention product,
which multiplies that query's logits by the factor and nothing else: the logits are linear in
the query (RoPE rotates the query, a linear map, so rotating before or after is the same), and
transformers' attention kernels (eager or SDPA) run unchanged. transformers' classes take no
per-query scale, hence two hooks per attention module: one reads the attention mask the module
is called with and counts each query's keys, one scales the query projection's output. The
factor is exactly 1.0 at n = n₀, so a log_n model equals its sqrt_d twin there bit for bit.

The families whose logits are a product with the query alone take it: bert, roberta, albert,
electra, roformer. DeBERTa's position-to-content term has no query vector to scale (it is the
keys' content against the relative positions' query projection), so it is not offered there yet;
gpt2's causal queries each see a different number of keys and it is not among the issue's
families.

The config records `nlpx_attention_scale` and `nlpx_scale_train_length` (config.json of an export):
nlpx puts the hooks back wherever it loads a model (`restore`: pretraining, fine-tuning, sentence
encoding). Plain `transformers` loading the export ignores those keys and computes the standard
scale.
"""

from __future__ import annotations

import math

SCALES = ("sqrt_d", "log_n")

# transformers' model_type -> the class names of its self-attention modules (those log_n hooks)
ATTENTION_CLASSES = {"bert": ("BertSelfAttention",), "roberta": ("RobertaSelfAttention",),
                     "albert": ("AlbertAttention",), "electra": ("ElectraSelfAttention",),
                     "roformer": ("RoFormerSelfAttention",)}


def restore(model) -> None:
    """Hook a model whose config records log_n or an attention pattern (a new one, or one
    transformers loaded from an export: nlpx calls this wherever it builds or loads a model);
    nothing for sqrt_d and full attention."""
    config = model.config
    pattern = getattr(config, "nlpx_attention_pattern", "full")
    if pattern != "full":
        from nlpx.models.attention_pattern import apply as apply_pattern

        apply_pattern(model.base_model, pattern, config.nlpx_window, config.nlpx_dilation, config.nlpx_global_tokens)
    if getattr(config, "nlpx_attention_scale", "sqrt_d") != "log_n":
        return
    classes = ATTENTION_CLASSES.get(config.model_type)
    if classes is None:
        raise ValueError(f"model.attention_scale=log_n: no attention classes known for '{config.model_type}'")
    if not apply(model, classes, int(config.nlpx_scale_train_length)):
        raise RuntimeError(f"no attention module of class {classes} in {type(model).__name__}")


def apply(model, attention_class_names: tuple[str, ...], train_length: int) -> int:
    """Hook every attention module of the model whose class is named in `attention_class_names`;
    returns how many (0 would be a family that names the wrong class: the caller checks)."""
    if train_length < 2:
        raise ValueError(f"scale_train_length must be at least 2 (log of it divides), got {train_length}")
    hooked = 0
    for module in model.modules():
        if type(module).__name__ in attention_class_names and not hasattr(module, "_nlpx_log_n"):
            module._nlpx_log_n = math.log(train_length)
            module.register_forward_pre_hook(_count_keys, with_kwargs=True)
            module.query.register_forward_hook(_scale_queries)
            hooked += 1
    return hooked


def key_counts(attention_mask, batch: int, length: int):
    """[B, Tq or 1] float: each query's number of unmasked keys, read from the mask an attention
    module receives (None: every key; bool: True = attend; float: additive, 0 = attend and the
    dtype's minimum = masked; [B, 1, Tq or 1, Tk] or [B, Tk])."""
    import torch

    if attention_mask is None:
        return torch.full((batch, 1), float(length))
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"model.attention_scale=log_n: cannot read an attention mask of type "
                        f"{type(attention_mask).__name__}")
    allowed = attention_mask if attention_mask.dtype == torch.bool else \
        attention_mask > torch.finfo(attention_mask.dtype).min / 2
    if allowed.dim() == 2:  # [B, Tk]
        allowed = allowed[:, None, None, :]
    return allowed[:, 0].sum(-1).float()  # [B, Tq or 1]


def _count_keys(module, args, kwargs):
    hidden = args[0] if args else kwargs["hidden_states"]
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    n = key_counts(mask, hidden.shape[0], hidden.shape[1]).to(hidden.device)
    # log 1 = 0: a query with one key attends to it whatever the scale
    module.query._nlpx_factor = (n.clamp(min=1).log() / module._nlpx_log_n)[..., None]  # [B, Tq or 1, 1]


def _scale_queries(linear, args, output):
    return output * linear._nlpx_factor.to(output.dtype)
