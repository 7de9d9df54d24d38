"""Parameter counts for `nlpx config`, from a model built on the meta device (no memory, no data)."""

from __future__ import annotations


def count_parameters(cfg) -> tuple[int, str]:
    import torch
    from hydra.utils import get_class

    from nlpx.data.tokenizer import load_tokenizer

    family = get_class(cfg.model._target_)(cfg.model)
    nsp = get_class(cfg.objective._target_).needs_nsp
    note = ""
    if family.pretrained is not None:
        config = family.hf_config(0, 0)
    elif cfg.data.tokenizer:
        tok = load_tokenizer(cfg.data.tokenizer)
        config = family.hf_config(len(tok), tok.pad_token_id)
    else:
        config = family.hf_config(int(cfg.data.vocab_size), 0)
        note = f" (with a vocabulary of data.vocab_size={cfg.data.vocab_size}; a trained tokenizer may be smaller)"
    with torch.device("meta"):
        model = family.pretraining_class(nsp)(config)
    return sum(p.numel() for p in model.parameters()), note
