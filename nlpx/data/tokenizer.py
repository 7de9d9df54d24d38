"""Tokenizers: trained on the corpus with the `tokenizers` library, or loaded from a local folder.

Trained tokenizers are wrapped in the matching transformers fast class, so `save_pretrained`
writes a folder that `AutoTokenizer.from_pretrained` reloads and the export is self-contained.
"""

from __future__ import annotations

from pathlib import Path

from nlpx.errors import UserError

KINDS = ("wordpiece", "bpe")


def train_tokenizer(sentences, *, kind: str, vocab_size: int, lowercase: bool):
    """A tokenizer trained on `sentences`: a list of strings, or a function returning a fresh
    iterator over them (WordPiece reads the corpus twice, see below)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if not callable(sentences):
        texts = list(sentences)
        sentences = lambda: iter(texts)  # noqa: E731
    passes = sentences
    if kind == "wordpiece":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
        # The tokenizers trainer gives the "##c" continuation tokens ids in hash-map order, and the
        # ids break ties between merges, so the same corpus gave a different vocabulary in every
        # process (huggingface/tokenizers#1794, unfixed in 0.23). Giving every "##c" its id up
        # front, in sorted order, makes training deterministic; they are then ordinary tokens.
        chars: set[str] = set()
        for text in passes():
            chars.update(normalizer.normalize_str(text))
        continuing = [f"##{c}" for c in sorted(c for c in chars if not c.isspace())]
        trained = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trained.normalizer = normalizer
        trained.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials + continuing,
                                            show_progress=False)
        trained.train_from_iterator(passes(), trainer=trainer)
        return wordpiece_tokenizer(trained.get_vocab(), lowercase=lowercase)
    if kind == "bpe":
        from transformers import RobertaTokenizerFast

        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(passes(), trainer=trainer)
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
        return RobertaTokenizerFast(tokenizer_object=tok)
    raise UserError(f"model.tokenizer_kind={kind}: unknown tokenizer kind (valid: {', '.join(KINDS)})")


def wordpiece_tokenizer(vocab: dict[str, int] | str, *, lowercase: bool):
    """BERT's WordPiece tokenizer over `vocab` (a token -> id mapping, or a vocab.txt path): BERT's
    normaliser, which also puts every CJK character in a word of its own (as BERT's basic tokenizer
    does, so Chinese is one token per character), its pre-tokenizer, `[CLS] A [SEP] B [SEP]`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    wordpiece = (models.WordPiece.from_file(vocab, unk_token="[UNK]") if isinstance(vocab, str)
                 else models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok = Tokenizer(wordpiece)
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase,
                                                handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if tok.token_to_id(t) is None]
    if missing:
        raise UserError(f"data.tokenizer={vocab}: the vocabulary lacks {', '.join(missing)}")
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase)


def vocab_file(path: str | Path) -> Path | None:
    """The WordPiece vocab.txt that `path` names (the file, or a folder holding it and no
    tokenizer.json / tokenizer_config.json), or None."""
    path = Path(path)
    if path.is_file() and path.suffix == ".txt":
        return path
    if path.is_dir() and (path / "vocab.txt").is_file() and not (path / "tokenizer.json").is_file() \
            and not (path / "tokenizer_config.json").is_file():
        return path / "vocab.txt"
    return None


def sample_sentences(sentences, max_bytes: int, seed: int = 0):
    """`sentences` (a function giving an iterator) cut to a seeded sample of about `max_bytes` of
    UTF-8 text, for training a vocabulary on a large corpus: each sentence is kept with probability
    max_bytes / the corpus's bytes, decided by a hash of its position (the same sample in every
    process), and the sample stops at max_bytes. The corpus's bytes are counted by one more pass."""
    total: list[int] = []

    def passes():
        if not total:
            total.append(sum(len(s.encode("utf-8")) for s in sentences()))
        keep = min(1.0, max_bytes / max(total[0], 1))
        threshold, taken = int(keep * (1 << 64)), 0
        for i, text in enumerate(sentences()):
            if keep < 1.0 and _splitmix64(i ^ seed) >= threshold:
                continue
            taken += len(text.encode("utf-8"))
            if taken > max_bytes:
                return
            yield text

    return passes


def _splitmix64(x: int) -> int:
    """A fixed pseudo-random 64-bit value for x (splitmix64's finaliser)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def load_tokenizer(path: str | Path, *, key: str = "data.tokenizer", lowercase: bool = True):
    """A local HF tokenizer folder, or a WordPiece vocabulary (vocab.txt, or a folder with only
    it: Google's BERT vocabularies), which gets BERT's tokenizer (`lowercase`: model.lowercase)."""
    from transformers import AutoTokenizer

    path = Path(path)
    vocab = vocab_file(path)
    if vocab is not None:
        return wordpiece_tokenizer(str(vocab), lowercase=lowercase)
    if not path.is_dir():
        raise UserError(f"{key}={path}: not a folder (give a local HF tokenizer folder, or a WordPiece vocab.txt)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"{key}={path}: cannot load a tokenizer there ({str(e).splitlines()[0]})") from None
    if not tok.is_fast:
        raise UserError(f"{key}={path}: nlpx needs a fast tokenizer (tokenizer.json)")
    if tok.mask_token is None or tok.sep_token is None or tok.cls_token is None:
        raise UserError(f"{key}={path}: the tokenizer lacks a mask, sep or cls token")
    return tok


def special_ids(tok) -> dict[str, int]:
    return {"pad": tok.pad_token_id, "cls": tok.cls_token_id, "sep": tok.sep_token_id,
            "mask": tok.mask_token_id, "unk": tok.unk_token_id}
