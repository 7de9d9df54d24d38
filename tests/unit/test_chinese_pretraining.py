"""Chinese pretraining data: BERT's tokenizer over a bare vocab.txt (one token per character), the
Chinese sentence ends, jieba's words as word starts, and whole-word masking on them (BERT-wwm)."""

from __future__ import annotations

import numpy as np
import pytest

from nlpx.data.cache import word_start_flags
from nlpx.data.masking import IGNORE_INDEX, MaskingConfig, mask_tokens, select_count, word_bounds
from nlpx.data.segmenters import jieba_word_begins
from nlpx.data.sources import split_sentences
from nlpx.data.tokenizer import load_tokenizer, train_tokenizer
from nlpx.errors import UserError

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEXT = "贾宝玉初试云雨情，刘姥姥一进荣国府。"


def write_vocab(folder, tokens):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def vocab(tmp_path):
    chars = sorted(set(TEXT + "红楼梦年"))
    return write_vocab(tmp_path / "zh", [*SPECIALS, *chars, "hello", "20", "##24"])


def test_a_bare_vocabulary_loads_as_berts_tokenizer_one_token_per_character(vocab):
    for path in (vocab, vocab / "vocab.txt"):
        tok = load_tokenizer(path)
        ids = tok("红楼梦Hello 2024年")["input_ids"]
        assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "红", "楼", "梦", "hello", "20", "##24", "年", "[SEP]"]
        assert (tok.mask_token, tok.pad_token_id) == ("[MASK]", 0)
    cased = load_tokenizer(vocab, lowercase=False)
    assert cased.convert_ids_to_tokens(cased("Hello", add_special_tokens=False)["input_ids"]) == ["[UNK]"]


def test_a_vocabulary_without_berts_special_tokens_is_a_user_error(tmp_path):
    folder = write_vocab(tmp_path / "bad", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "红"])
    with pytest.raises(UserError, match=r"data.tokenizer=.*vocab.txt: the vocabulary lacks \[MASK\]"):
        load_tokenizer(folder)


def test_a_trained_vocabulary_also_splits_chinese_characters():
    tok = train_tokenizer([TEXT, "红楼梦红楼梦红楼梦"] * 20, kind="wordpiece", vocab_size=200, lowercase=True)
    assert tok.convert_ids_to_tokens(tok("红楼梦", add_special_tokens=False)["input_ids"]) == ["红", "楼", "梦"]


def test_chinese_sentences_end_at_their_own_punctuation_with_no_space():
    lines = ["话说天下大势，分久必合，合久必分。周末七国分争！", "宝玉道：“你好？”黛玉笑了。没有句号"]
    assert split_sentences(lines, "punct") == ["话说天下大势，分久必合，合久必分。", "周末七国分争！", "宝玉道：“你好？”",
                                               "黛玉笑了。", "没有句号"]


def test_jieba_words_become_word_starts(vocab):
    # jieba: 贾宝玉 / 初试 / 云雨 / 情 / ， / 刘姥姥 / 一进 / 荣国府 / 。
    assert np.flatnonzero(jieba_word_begins(TEXT)).tolist() == [0, 3, 5, 7, 8, 9, 12, 14, 17]
    backend = load_tokenizer(vocab).backend_tokenizer
    e = backend.encode(TEXT, add_special_tokens=False)
    assert len(e) == len(TEXT)  # one token per character
    flags = word_start_flags(e, TEXT, word_begins=jieba_word_begins)
    assert np.flatnonzero(flags).tolist() == [0, 3, 5, 7, 8, 9, 12, 14, 17]
    assert word_start_flags(e).all()  # BERT's own words: every character
    mixed = "2024年"  # "20" "##24" "年": a WordPiece continuation continues its word
    e = backend.encode(mixed, add_special_tokens=False)
    assert word_start_flags(e, mixed, word_begins=jieba_word_begins).tolist() == [True, False, True]


@pytest.mark.parametrize("seed", range(5))
def test_whole_word_masking_never_splits_a_jieba_word(seed, vocab):
    text = TEXT * 8
    backend = load_tokenizer(vocab).backend_tokenizer
    e = backend.encode(text, add_special_tokens=False)
    ids = np.array([2, *e.ids, 3])
    starts = np.array([True, *word_start_flags(e, text, word_begins=jieba_word_begins), True])
    special = np.zeros(ids.size, bool)
    special[[0, -1]] = True
    cfg = MaskingConfig(ratio=0.15, mask=0.8, random=0.1, keep=0.1, strategy="whole_word")
    _, labels = mask_tokens(ids, np.random.default_rng(seed), cfg, mask_id=4, special_mask=special,
                            random_ids=np.arange(5, 30), word_start=starts)
    selected = labels != IGNORE_INDEX
    assert selected.sum() == select_count(int((~special).sum()), 0.15)  # 22 of 144: 15% within rounding
    words = list(zip(*word_bounds(special, starts)))
    for a, b in words:
        assert selected[a:b].all() or not selected[a:b].any(), text[a - 1:b - 1]
    assert any(b - a > 1 and selected[a:b].all() for a, b in words)  # whole multi-character words
