"""Encoding a corpus for the cache: a document's sentences encoded as one text (joined by spaces,
or by the separator token) and cut back give exactly the tokens, word starts and lengths of
encoding each sentence alone, for WordPiece and byte-level BPE; tokenizers where that does not
hold encode sentence by sentence; worker processes write the same cache as one process."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from nlpx.data import cache
from nlpx.data.cache import _Encoder, plain_backend, prepare
from nlpx.data.corpora import TextCorpus
from nlpx.data.sources import count_documents, read_documents, split_sentences
from nlpx.data.tokenizer import train_tokenizer

# accents (stripped by a lowercasing WordPiece), a multi-byte character, a soft hyphen and a
# control character (dropped by BERT's normalizer), punctuation, runs of spaces, digits
DOCS = [
    ["Café au lait, naïve Über-straße.", "It costs 42\u00a0€ (roughly)!", "\u00ad", "Tab\there... ok?"],
    ["Ünïcode ünïcode é", "x\x07y z", "\u00ad\u00ad soft", "two\nlines", "end"],
    ["a"],
    ["Zoë's 3rd try; it's 2:30 p.m.", "Ça va?", "«Quoted» text — dash."],
]


def trained(kind):
    sentences = [s for d in DOCS for s in d] * 20 + [f"word{i} and café {i}." for i in range(200)]
    return train_tokenizer(sentences, kind=kind, vocab_size=300, lowercase=kind == "wordpiece")


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_joined_documents_cut_back_equal_sentences_encoded_alone(kind):
    tok = trained(kind)
    encoder = _Encoder(plain_backend(tok), False, tok.sep_token)
    assert encoder.join
    alone, joined = encoder._alone(DOCS), encoder._joined(DOCS)
    for a, j, doc in zip(alone, joined, DOCS):
        for x, y in zip(a, j):
            np.testing.assert_array_equal(x, y)
        assert len(j[2]) == len(doc)
    # the soft hyphen alone has no WordPiece token: a sentence of length 0, dropped when written
    lengths = [int(n) for n in joined[0][2]]
    assert (lengths[2] == 0) == (kind == "wordpiece") and all(n > 0 for i, n in enumerate(lengths) if i != 2)
    ids, starts, lengths = encoder(DOCS)
    assert ids.size == starts.size == int(lengths.sum())
    assert ids.tolist() == [t for d in alone for t in d[0].tolist()]
    assert np.array_equal(starts, np.concatenate([d[1] for d in alone]))


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_documents_joined_by_spaces_cut_back_equal_sentences_encoded_alone_where_exact(kind):
    tok = trained(kind)
    encoder = _Encoder(plain_backend(tok), False, tok.sep_token)
    # WordPiece splits at whitespace; byte-level BPE keeps the space in the next word's token
    assert encoder.space is (kind == "wordpiece")
    if kind == "bpe":
        return
    alone, spaced = encoder._alone(DOCS), encoder._spaced(DOCS)
    # a sentence that has no token, or whose first character the normalizer drops, cannot be
    # cut at its first token: such a document goes on to the separator
    assert [part is None for part in spaced] == [True, True, False, False]
    for a, j in zip(alone[2:], spaced[2:]):
        for x, y in zip(a, j):
            np.testing.assert_array_equal(x, y)
    wide = [["Plain words here.", "And more, with punctuation!", "End"]] * 3
    assert all(p is not None for p in encoder._spaced(wide))


def test_a_document_with_the_separator_in_a_sentence_is_encoded_sentence_by_sentence():
    tok = trained("bpe")
    encoder = _Encoder(plain_backend(tok), False, tok.sep_token)
    docs = [[f"first {tok.sep_token} inside", "next"], ["plain", "doc"]]
    assert encoder._joined(docs)[0] is None and encoder._joined(docs)[1] is not None
    ids, starts, lengths = encoder(docs)
    expected = [e.ids for e in encoder.backend.encode_batch([s for d in docs for s in d], add_special_tokens=False)]
    assert lengths.tolist() == [len(e) for e in expected]
    assert ids.tolist() == [t for e in expected for t in e]


@pytest.mark.parametrize("scheme, exact", [("first", False), ("always", True)])
def test_a_metaspace_tokenizer_joins_only_where_that_is_exact(scheme, exact):
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme=scheme)
    tok.train_from_iterator([s for d in DOCS for s in d] * 10,
                            trainers.UnigramTrainer(vocab_size=80, unk_token="<unk>", special_tokens=["<unk>", "[SEP]"],
                                                    show_progress=False))
    # "first" prefixes "▁" to the first word of a text only: a sentence after the separator
    # would lose it, so the document is encoded sentence by sentence
    assert _Encoder(tok, False, "[SEP]").join is exact
    assert not _Encoder(tok, True, "[SEP]").join  # no joining where word starts come from the text
    assert not _Encoder(tok, False, None).join


def write_jsonl(path, n_docs):
    with open(path, "w") as f:
        for d in range(n_docs):
            f.write(json.dumps({"text": f"Doc {d} opens here. It says w{d % 7} then café {d}.\nA new line, "
                                        f"number {d}!"}) + "\n")
            if d % 9 == 0:
                f.write(json.dumps({"text": "  \n "}) + "\n")  # blank text: no document
    return path


def text_corpus(path):
    return TextCorpus(OmegaConf.create({"paths": [str(path)], "doc_split": "blank_line", "sentences": "punct",
                                        "text_field": "text"}))


def test_worker_processes_write_the_same_cache_as_one_process(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "c.jsonl", 300)
    tok = trained("wordpiece")
    monkeypatch.setattr(cache, "_ENCODE_BATCH", 1000)  # characters: two dozen batches, 2 here, the rest in the workers
    monkeypatch.setattr(cache, "_LOCAL_BATCHES", 2)
    pools = []

    class Spy(cache.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cache, "ProcessPoolExecutor", Spy)
    built = {}
    for workers in (1, 2):
        p = prepare(text_corpus(src), cache_dir=tmp_path / f"cache{workers}", val_fraction=0.1,
                    tokenizer_spec={"t": 1}, make_tokenizer=lambda s: tok, workers=workers)
        built[workers] = p
    assert [args[0] for args in pools] == [2]  # the second build, and only it, started two workers
    for split in ("train", "val"):
        a, b = getattr(built[1], split), getattr(built[2], split)
        for field in ("tokens", "sent_offsets", "doc_sents", "word_starts"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert built[1].meta["documents"] == 300 and built[1].meta["val_docs"] == 30
    # and equal to encoding every sentence alone, in document order
    docs = list(read_documents([src], sentences="punct", text_field="text"))
    per_sentence = tok.backend_tokenizer.encode_batch([s for d in docs for s in d], add_special_tokens=False)
    total = sum(len(e) for e in per_sentence)
    assert built[2].train.tokens.size + built[2].val.tokens.size == total


def test_documents_are_counted_without_splitting_sentences(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", 40)
    txt = tmp_path / "c.txt"
    txt.write_text("One. Two.\n\n\n  \nThree\nfour.\n\nfive\n")
    for f in (src, txt):
        assert count_documents([f]) == sum(1 for _ in read_documents([f], sentences="punct", text_field="text"))
    assert count_documents([src]) == 40 and count_documents([txt]) == 3


def test_the_writer_drops_empty_sentences_and_documents_left_without_any(tmp_path):
    from nlpx.data.cache import _SplitWriter

    w = _SplitWriter(tmp_path / "split")
    # four documents: [2 tokens, 0, 1], [0], [], [3]; then one more call: [0, 0], [1, 1]
    w.add(np.array([1, 2, 3, 4, 5, 6], dtype=np.int32), np.ones(6, dtype=bool), np.array([2, 0, 1, 0, 3]),
          np.array([3, 1, 0, 1]))
    w.add(np.array([7, 8], dtype=np.int32), np.array([True, False]), np.array([0, 0, 1, 1]), np.array([2, 2]))
    assert w.close() == (3, 8)  # documents, tokens
    folder = tmp_path / "split"
    assert np.load(folder / "sent_offsets.npy").tolist() == [0, 2, 3, 6, 7, 8]
    assert np.load(folder / "doc_sents.npy").tolist() == [0, 2, 3, 5]
    assert np.fromfile(folder / "tokens.bin", dtype=np.int32).tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert np.fromfile(folder / "word_starts.bin", dtype=np.bool_).tolist() == [True] * 7 + [False]


@pytest.mark.parametrize("sentences", ["punct", "lines"])
def test_documents_read_as_lines_and_split_later_equal_documents_read_split(tmp_path, sentences):
    jsonl = write_jsonl(tmp_path / "c.jsonl", 20)
    txt = tmp_path / "c.txt"
    txt.write_text("One. Two!\n  wrapped\nline.\n\n\n  \nThree\nfour? yes\n\nfive\n")
    for doc_split in ("blank_line", "file"):
        read = dict(doc_split=doc_split, sentences=sentences, text_field="text")
        split = list(read_documents([jsonl, txt], **read))
        lines = list(read_documents([jsonl, txt], **read, split=False))
        assert [split_sentences(d, sentences) for d in lines] == split and len(split) > 2
