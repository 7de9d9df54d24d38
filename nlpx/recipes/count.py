"""Parameter counts for `nlpx config`, from a model built on the meta device (no memory, no data).

family.build applies what every family adds to its transformers class (ALBERT's partial sharing,
a frozen sinusoidal table), and shared parameters count once (model.parameters() deduplicates).
"""

from __future__ import annotations


def count_parameters(cfg) -> tuple[int, str]:
    import torch
    from hydra.utils import get_class

    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.objectives.base import PretrainObjective

    family = get_class(cfg.model._target_)(cfg.model)
    objective_cls = get_class(cfg.objective._target_)
    pretraining = issubclass(objective_cls, PretrainObjective)
    note = ""
    if family.pretrained is not None:
        config = family.hf_config(0, 0)
    elif cfg.data.get("tokenizer"):
        tok = load_tokenizer(cfg.data.tokenizer)
        config = family.hf_config(len(tok), tok.pad_token_id)
    else:
        vocab = int(cfg.data.get("vocab_size", 0) or 30522)
        config = family.hf_config(vocab, 0)
        note = f" (with a vocabulary of {vocab}; a trained tokenizer may be smaller)"
    with torch.device("meta"):
        model = family.build(config, objective_cls.needs_nsp,
                             objective_cls.model_class(family) if pretraining else None)
        heads = []
        if pretraining:  # what an objective adds itself (SBO, a pair head, RTD's generator) counts too
            objective = objective_cls(cfg.objective, family)
            objective.attach(model)
            heads = list(objective.parameters())
        reference = family.reference(config.vocab_size, config.pad_token_id or 0)
    if reference is not None:
        name, ref_model = reference
        note += f" ({name}: {sum(p.numel() for p in ref_model.parameters()):,})"
    if not pretraining:
        note += " (the pretraining model; fine-tuning replaces its head with the task's)"
    params = list({id(p): p for p in [*model.parameters(), *heads]}.values())  # es: a shared table once
    in_model = {id(p) for p in model.parameters()}
    own = sum(p.numel() for p in heads if id(p) not in in_model)
    if own:
        note += f" ({own:,} of them in objective={cfg.objective.name}'s own modules)"
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    if frozen:
        note += f" ({frozen:,} of them frozen: fixed position tables)"
    return sum(p.numel() for p in params), note
