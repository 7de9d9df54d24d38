"""The classifier to fine-tune: the checkpoint's family with its own sequence-classification head."""

from __future__ import annotations

from pathlib import Path

from nlpx.data.tokenizer import load_tokenizer
from nlpx.errors import UserError
from nlpx.pretrained import resolve_pretrained

# model_type in config.json -> family name; transformers' Auto classes pick each one's own head
FAMILIES = {"bert": "BERT", "roberta": "RoBERTa", "deberta-v2": "DeBERTa-v2/v3", "deberta": "DeBERTa",
            "electra": "ELECTRA", "albert": "ALBERT", "roformer": "RoFormer", "nlpx_gau": "GAU-α",
            "longformer": "Longformer", "big_bird": "BigBird",
            "gpt2": "GPT-2 (classifies from the last non-padding token)",
            "xlnet": "XLNet (classifies from the last token, [CLS]; padded on the left)"}


def checkpoint_path(cfg) -> Path:
    path = resolve_pretrained(cfg.model.get("pretrained"))
    if path is None:
        raise UserError("objective=classify fine-tunes a pretrained model: give model.pretrained=PATH "
                        "(an nlpx run directory or a local HF checkpoint folder)")
    return path


def load_classifier(path: Path, spec, *, new_head: bool = False):
    """(model, tokenizer) for task `spec`; new_head: the checkpoint's own head (MNLI's) is replaced."""
    from transformers import AutoModelForSequenceClassification

    from nlpx.models.attention_scale import restore
    from nlpx.pretrained import checkpoint_config

    config = checkpoint_config(path)
    if config.model_type not in FAMILIES:
        raise UserError(f"model.pretrained={path}: model type '{config.model_type}' is not supported "
                        f"for fine-tuning (supported: {', '.join(FAMILIES.values())})")
    tokenizer = load_tokenizer(path, key="model.pretrained")
    if getattr(spec, "is_choice", False):
        return _multiple_choice(path, tokenizer), tokenizer
    labels = ["score"] if spec.is_regression else list(spec.labels)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(path), local_files_only=True, num_labels=len(labels),
        problem_type="regression" if spec.is_regression else (
            "multi_label_classification" if getattr(spec, "multilabel", False) else "single_label_classification"),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=new_head)
    restore(model)  # nlpx's own attention scale, where the checkpoint was trained with it
    if model.config.pad_token_id is None:  # GPT-2 checkpoints: its classifier finds the last token by it
        model.config.pad_token_id = tokenizer.pad_token_id
    _check_vocabulary(path, model, tokenizer)
    return model.train(), tokenizer


def _check_vocabulary(path: Path, model, tokenizer) -> None:
    if len(tokenizer) > model.config.vocab_size:
        raise UserError(f"model.pretrained={path}: the tokenizer has {len(tokenizer)} tokens but the "
                        f"model only {model.config.vocab_size} embeddings")


def load_with_head(auto_class, path: Path, tokenizer, what: str, hint: str = ""):
    """The checkpoint's family with transformers' head of `auto_class` (nlpx's attention scale
    restored, the vocabulary checked), in training mode; a family without one is a UserError."""
    from nlpx.models.attention_scale import restore
    from nlpx.pretrained import checkpoint_config

    try:
        model = auto_class.from_pretrained(str(path), local_files_only=True)
    except ValueError:
        model_type = checkpoint_config(path).model_type
        family = FAMILIES.get(model_type, model_type)
        raise UserError(f"model.pretrained={path}: {family} has no {what} model in transformers{hint}") from None
    restore(model)
    _check_vocabulary(path, model, tokenizer)
    return model.train()


def _multiple_choice(path: Path, tokenizer):
    """The family's *ForMultipleChoice: one score per candidate from its pooled output, softmax over
    the candidates (ChID)."""
    from transformers import AutoModelForMultipleChoice

    return load_with_head(AutoModelForMultipleChoice, path, tokenizer, "multiple-choice",
                          "; a multiple-choice task (chid) needs another family")
