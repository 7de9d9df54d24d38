"""One vector per sentence from a transformers model's outputs: `model.pooling`.

  cls                the model's pooler output where it has one (BERT's tanh dense layer over
                     [CLS], RoBERTa's and ALBERT's the same; SimCSE's "cls"), else the first
                     token's last hidden state (ELECTRA, DeBERTa, RoFormer, GPT-2 have no pooler)
  cls_before_pooler  the first token's last hidden state (SimCSE's "cls_before_pooler")
  mean               the attention-mask-weighted mean of the last hidden states (sentence-
                     transformers' mean pooling: sum(h * mask) / max(sum(mask), 1e-9))
  max                the element-wise max over the non-padding tokens (sentence-transformers' max)

"The first token" is the first non-padding one (position 0 with right padding, as nlpx pads; a
left-padded batch gives the same vectors). Half-precision hidden states are summed in float32
for `mean`, as sentence-transformers does; the result keeps the hidden states' dtype.
"""

from __future__ import annotations

from nlpx.errors import UserError

POOLING = ("cls", "cls_before_pooler", "mean", "max")


def check_pooling(mode) -> str:
    if mode not in POOLING:
        raise UserError(f"model.pooling={mode}: unknown pooling (valid: {', '.join(POOLING)})")
    return str(mode)


def _output(outputs, name: str):
    """A ModelOutput's field (or a dict's entry, or the tuple form's position); None if absent."""
    if isinstance(outputs, (tuple, list)):
        index = {"last_hidden_state": 0, "pooler_output": 1}[name]
        return outputs[index] if len(outputs) > index else None
    if isinstance(outputs, dict):  # ModelOutput is a dict too
        return outputs.get(name)
    return getattr(outputs, name, None)


def pool(model_outputs, attention_mask, mode: str):
    """[batch, hidden] sentence vectors from `model_outputs` (last_hidden_state [batch, seq, hidden],
    pooler_output [batch, hidden] where the model has a pooler) and attention_mask [batch, seq]."""
    import torch

    check_pooling(mode)
    hidden = _output(model_outputs, "last_hidden_state")
    if hidden is None:
        raise ValueError("pool: the model outputs have no last_hidden_state")
    if mode == "cls":
        pooled = _output(model_outputs, "pooler_output")
        if pooled is not None:
            return pooled
        mode = "cls_before_pooler"
    mask = attention_mask.to(hidden.device)
    if mode == "cls_before_pooler":
        first = mask.to(torch.int).argmax(dim=1)  # the first non-padding position
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    if mode == "mean":
        acc = torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype
        weights = mask.unsqueeze(-1).to(acc)
        summed = (hidden.to(acc) * weights).sum(dim=1)
        counts = weights.sum(dim=1).clamp(min=1e-9)
        return (summed / counts).to(hidden.dtype)
    # max: padding positions can never win
    keep = mask.unsqueeze(-1).bool()
    return hidden.masked_fill(~keep, torch.finfo(hidden.dtype).min).max(dim=1).values
