"""From cfg.data (+ cfg.model for the tokenizer) to a cached, tokenized train/val corpus."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class

from nlpx.errors import UserError

from nlpx.data.cache import PreparedCorpus, file_digest, prepare
from nlpx.data.tokenizer import load_tokenizer, sample_sentences, train_tokenizer, vocab_file
from nlpx.pretrained import resolve_pretrained


def tokenizer_source(cfg) -> tuple[dict, object]:
    """(cache spec, make_tokenizer): an explicit tokenizer, the checkpoint's own, or a trained one."""
    explicit = cfg.data.tokenizer
    pretrained = resolve_pretrained(cfg.model.pretrained)
    if explicit or pretrained is not None:
        folder = explicit or pretrained
        key = "data.tokenizer" if explicit else "model.pretrained"
        lowercase = bool(cfg.model.lowercase)
        tok = load_tokenizer(folder, key=key, lowercase=lowercase)
        vocab = vocab_file(folder)
        if vocab is not None:  # BERT's tokenizer over a bare vocabulary: its casing is the run's
            spec = {"load": str(folder), "digest": file_digest(vocab), "lowercase": lowercase}
        else:
            tok_file = _tokenizer_file(folder)
            spec = {"load": str(folder), "digest": file_digest(tok_file) if tok_file else None}
        return spec, lambda sentences: tok
    kind, vocab, lower = cfg.model.tokenizer_kind, int(cfg.data.vocab_size), bool(cfg.model.lowercase)
    sample = cfg.data.get("tokenizer_sample_bytes")
    # "trainer": 2 since WordPiece training became deterministic: entries of the old one differ
    spec = {"train": kind, "vocab_size": vocab, "lowercase": lower, "trainer": 2}
    if sample is not None:
        spec["sample_bytes"] = int(sample)
    return spec, lambda sentences: train_tokenizer(
        sentences if sample is None else sample_sentences(sentences, int(sample)), kind=kind, vocab_size=vocab,
        lowercase=lower)


def _tokenizer_file(folder):
    f = Path(str(folder)) / "tokenizer.json"
    return f if f.is_file() else None


def prepare_corpus(cfg) -> PreparedCorpus:
    from nlpx.data.formats import check_objective_settings

    check_objective_settings(cfg.objective)  # a typo fails now, not after the corpus is built
    corpus_class = get_class(cfg.data._target_)
    if getattr(corpus_class, "kind", None) != "sentences":  # a fine-tuning or pair/triple data option
        raise UserError(f"data={cfg.data.name}: not a corpus of documents; objective={cfg.objective.name} "
                        "pretrains on data=synthetic or data=text")
    corpus = corpus_class(cfg.data)
    spec, make_tokenizer = tokenizer_source(cfg)
    return prepare(corpus, cache_dir=cfg.data.cache_dir, val_fraction=float(cfg.data.val_fraction),
                   tokenizer_spec=spec, make_tokenizer=make_tokenizer,
                   workers=cfg.data.get("tokenize_workers"), word_segmenter=cfg.data.get("word_segmenter"))
