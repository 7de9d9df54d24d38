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

The families whose logits are a product with the query alone take it that way: bert, roberta,
albert, electra, roformer. DeBERTa's position-to-content term has no query vector to scale (it is
the keys' content against the relative positions' query projection), so there the whole sum of
its logits is multiplied instead, through the relative-position bias it adds (`_deberta_bias`).
gpt2 is not offered it (its causal queries each see a different number of keys; not among the
families the notes compare).

The config records `nlpx_attention_scale` and `nlpx_scale_train_length` (config.json of an export):
nlpx puts the hooks back wherever it loads a model (`restore`: pretraining, fine-tuning, sentence
encoding). Plain `transformers` loading the export ignores those keys and computes the standard
scale.
"""

from __future__ import annotations

import math

# transformers' model_type -> the class names of its self-attention modules (those log_n hooks)
ATTENTION_CLASSES = {"bert": ("BertSelfAttention",), "roberta": ("RobertaSelfAttention",),
                     "albert": ("AlbertAttention",), "electra": ("ElectraSelfAttention",),
                     "roformer": ("RoFormerSelfAttention",), "deberta-v2": ("DisentangledSelfAttention",)}
_DEBERTA = "DisentangledSelfAttention"


def restore(model) -> None:
    """Hook a model whose config records log_n or an attention pattern, and transformers' sparse
    classes (a new model, or one transformers loaded from an export: nlpx calls this wherever it
    builds or loads a model); nothing for sqrt_d and full attention."""
    from nlpx.models.sparse_attention import apply as apply_sparse

    apply_sparse(model)  # Longformer's global tokens, BigBird kept block-sparse
    config = model.config
    if getattr(model, "nlpx_scales_attention_itself", False):  # GAU computes log_n in its own layers
        return
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
    import types

    hooked = 0
    for module in model.modules():
        if type(module).__name__ in attention_class_names and not hasattr(module, "_nlpx_log_n"):
            module._nlpx_log_n = math.log(train_length)
            module.register_forward_pre_hook(_count_keys, with_kwargs=True)
            if type(module).__name__ == _DEBERTA:
                # a method bound to this module (a deep copy of the model binds it to the copy)
                module.disentangled_attention_bias = types.MethodType(_deberta_bias, module)
            else:
                module.query.register_forward_hook(_scale_queries)
            hooked += 1
    return hooked


def key_counts(attention_mask, batch: int, length: int, multiplicative: bool = False):
    """[B, Tq or 1] float: each query's number of unmasked keys, read from the mask an attention
    module receives (None: every key; bool: True = attend; float: additive, 0 = attend and the
    dtype's minimum = masked, or with `multiplicative` (DeBERTa's) 1 = attend and 0 = masked;
    [B, 1, Tq or 1, Tk] or [B, Tk])."""
    import torch

    if attention_mask is None:
        return torch.full((batch, 1), float(length))
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"model.attention_scale=log_n: cannot read an attention mask of type "
                        f"{type(attention_mask).__name__}")
    if attention_mask.dtype == torch.bool or multiplicative:
        allowed = attention_mask.bool()
    else:
        allowed = attention_mask > torch.finfo(attention_mask.dtype).min / 2
    if allowed.dim() == 2:  # [B, Tk]
        allowed = allowed[:, None, None, :]
    return allowed[:, 0].sum(-1).float()  # [B, Tq or 1]


def _count_keys(module, args, kwargs):
    hidden = args[0] if args else kwargs["hidden_states"]
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    deberta = type(module).__name__ == _DEBERTA
    n = key_counts(mask, hidden.shape[0], hidden.shape[1], multiplicative=deberta).to(hidden.device)
    # log 1 = 0: a query with one key attends to it whatever the scale
    factor = (n.clamp(min=1).log() / module._nlpx_log_n)[..., None]  # [B, Tq or 1, 1]
    (module if deberta else module.query)._nlpx_factor = factor


def _deberta_bias(module, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
    """DeBERTa's logits are (c2c + c2p + p2c) / √(3d); its position-to-content term p2c is the
    keys' content against the relative positions' query projection, with no query vector that a
    factor could scale. So its relative-position bias, which DeBERTa adds to c2c, is replaced by
    f·(c2c + c2p + p2c) − c2c: the sum it adds up to is f times its logits, exactly the same
    where every factor is 1 (then the bias is returned untouched)."""
    import torch
    from transformers.models.deberta_v2.modeling_deberta_v2 import scaled_size_sqrt

    bias = type(module).disentangled_attention_bias(module, query_layer, key_layer, relative_pos, rel_embeddings,
                                                    scale_factor)
    factor = module._nlpx_factor  # [B, Tq or 1, 1]; query_layer is [B·heads, T, d], batch-major
    if bool((factor == 1).all()):
        return bias
    factor = factor.repeat_interleave(module.num_attention_heads, dim=0).to(bias.dtype)
    # the c2c term as DeBERTa's forward computes it
    scale = scaled_size_sqrt(query_layer, scale_factor)
    c2c = torch.bmm(query_layer, key_layer.transpose(-1, -2) / scale.to(dtype=query_layer.dtype))
    return factor * (c2c + bias) - c2c


def _scale_queries(linear, args, output):
    return output * linear._nlpx_factor.to(output.dtype)
