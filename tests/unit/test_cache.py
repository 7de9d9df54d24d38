"""Tokenizers and the corpus cache: keyed by what affects it, reused, atomic, split by document."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from nlpx.data.cache import prepare
from nlpx.data.corpora import TextCorpus
from nlpx.data.tokenizer import load_tokenizer, train_tokenizer
from nlpx.errors import UserError

SENTENCES = ["the cat sat on the mat .", "a dog ran in the park !", "unbelievable things happen ."] * 20


@pytest.mark.parametrize("kind,pair_seps", [("wordpiece", 2), ("bpe", 3)])  # RoBERTa: A </s></s> B
def test_trained_tokenizers_round_trip(kind, pair_seps, tmp_path):
    tok = train_tokenizer(iter(SENTENCES), kind=kind, vocab_size=300, lowercase=True)
    assert tok.is_fast and tok.mask_token and tok.cls_token and tok.sep_token and tok.pad_token
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("the cat sat").input_ids == tok("the cat sat").input_ids
    ids = again("the cat", "a dog").input_ids
    assert ids[0] == again.cls_token_id and ids.count(again.sep_token_id) == pair_seps


def test_loading_a_missing_tokenizer_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="data.tokenizer=.*not a folder"):
        load_tokenizer(tmp_path / "nope")


def corpus(folder, n_docs=12):
    folder.mkdir(exist_ok=True)
    text = "\n\n".join(f"document {i} starts here. it has words like w{i} and more." for i in range(n_docs))
    (folder / "a.txt").write_text(text)
    return TextCorpus(OmegaConf.create({"paths": [str(folder)], "doc_split": "blank_line",
                                        "sentences": "punct", "text_field": "text"}))


def run_prepare(corpus_, cache, calls, vocab=200):
    def make(sentences):
        calls.append(1)
        return train_tokenizer(sentences, kind="wordpiece", vocab_size=vocab, lowercase=True)

    return prepare(corpus_, cache_dir=cache, val_fraction=0.25,
                   tokenizer_spec={"train": "wordpiece", "vocab_size": vocab}, make_tokenizer=make)


def test_second_prepare_hits_the_cache(tmp_path):
    calls = []
    c = corpus(tmp_path / "src")
    first = run_prepare(c, tmp_path / "cache", calls)
    second = run_prepare(c, tmp_path / "cache", calls)
    assert calls == [1] and first.path == second.path
    assert isinstance(second.train.tokens, np.memmap)
    meta = json.loads((first.path / "meta.json").read_text())
    assert meta["train_docs"] + meta["val_docs"] == 12 and meta["val_docs"] == 3


def test_key_changes_with_sources_and_tokenizer_settings(tmp_path):
    calls = []
    c = corpus(tmp_path / "src")
    a = run_prepare(c, tmp_path / "cache", calls)
    b = run_prepare(c, tmp_path / "cache", calls, vocab=150)
    (tmp_path / "src" / "a.txt").write_text("changed text. and more.\n\nanother doc here.")
    d = run_prepare(corpus(tmp_path / "src", n_docs=5), tmp_path / "cache", calls)
    assert len({a.path, b.path, d.path}) == 3 and len(calls) == 3


def test_split_is_by_document_and_loses_nothing(tmp_path):
    p = run_prepare(corpus(tmp_path / "src"), tmp_path / "cache", [])
    tok = p.tokenizer
    docs = [f"document {i} starts here. it has words like w{i} and more." for i in range(12)]
    expected = sorted(tuple(tok(d, add_special_tokens=False).input_ids) for d in docs)
    got = sorted(tuple(int(t) for t in split.doc(d)) for split in (p.train, p.val)
                 for d in range(split.num_docs))
    assert got == expected


def test_a_failed_build_leaves_no_entry(tmp_path):
    class Broken:
        def documents(self):
            yield ["one sentence here ."]
            raise RuntimeError("disk on fire")

        def fingerprint(self):
            return {"broken": 1}

        def check_empty(self, n):
            pass

    with pytest.raises(RuntimeError):
        run_prepare(Broken(), tmp_path / "cache", [])
    assert list((tmp_path / "cache").iterdir()) == []


def test_an_empty_corpus_is_a_user_error(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "empty.txt").write_text("\n\n  \n")
    c = TextCorpus(OmegaConf.create({"paths": [str(tmp_path / "src")], "doc_split": "blank_line",
                                     "sentences": "punct", "text_field": "text"}))
    with pytest.raises(UserError, match="no text found"):
        run_prepare(c, tmp_path / "cache", [])
