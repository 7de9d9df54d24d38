"""NER data and metrics (nlpx.eval.ner_reader, nlpx.eval.ner_metrics): the two layouts read into
spans, IOB1 converted to IOB2, bad rows refused with file and line, and entity-level scores equal
to hand computation and to seqeval's CoNLL-rule report."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import classification_report

from nlpx.errors import UserError
from nlpx.eval.ner_metrics import entity_scores
from nlpx.eval.ner_reader import flat, iob1_to_iob2, read_conll, read_span_json, spans_to_tags, tags_to_spans
from tests.conftest import data_dir

CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
. . O O

-DOCSTART- -X- O O

in IN I-PP O
Hong NNP I-NP I-LOC
Kong NNP I-NP I-LOC
Macau NNP I-NP B-LOC
"""


def test_iob1_becomes_iob2():
    assert iob1_to_iob2(["I-ORG", "O", "I-MISC", "I-MISC", "B-MISC", "I-PER", "I-LOC"]) == \
        ["B-ORG", "O", "B-MISC", "I-MISC", "B-MISC", "B-PER", "B-LOC"]


def test_conll_columns_read_into_sentences_and_spans(tmp_path):
    path = tmp_path / "eng.train"
    path.write_text(CONLL)
    a, b = read_conll(path)
    assert a.tokens == ("EU", "rejects", "German", "call", "Peter", "Blackburn", ".") and a.line == 3
    assert a.spans == (("ORG", 0, 0), ("MISC", 2, 2), ("PER", 4, 5))
    # IOB1's B-LOC: Macau is an entity of its own right after Hong Kong
    assert b.tokens == ("in", "Hong", "Kong", "Macau") and b.spans == (("LOC", 1, 2), ("LOC", 3, 3)) and b.line == 13
    # read as IOB2 the same file is the same here (an I- after O or another type starts an entity)
    assert [s.spans for s in read_conll(path, scheme="iob2")] == [a.spans, b.spans]


@pytest.mark.parametrize("text, message", [
    ("EU NNP I-NP X-ORG\n", "train.txt:1: tag 'X-ORG' (valid: O, B-TYPE, I-TYPE)"),
    ("EU NNP I-NP O\n\nrejects\n", "train.txt:3: 1 columns, no tag column 3"),
])
def test_a_bad_conll_line_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "train.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_conll(path, tag_column=3)


def test_span_json_reads_character_spans_and_unlabelled_rows(tmp_path):
    path = tmp_path / "dev.json"
    rows = ['{"text": "彭小军认为，台湾\u2028的模式", "label": {"address": {"台湾": [[6, 7]]}, "name": {"彭小军": [[0, 2]]}}}',
            '{"id": 0, "text": "四川敦煌"}']
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    a, b = read_span_json(path)
    assert a.tokens == tuple("彭小军认为，台湾\u2028的模式") and a.spans == (("name", 0, 2), ("address", 6, 7))
    assert spans_to_tags(len(a.tokens), a.spans)[:9] == ["B-name", "I-name", "I-name", "O", "O", "O",
                                                          "B-address", "I-address", "O"]
    assert b.spans is None and b.line == 2
    path.write_text('{"text": "彭小军", "label": {"name": {"彭小": [[0, 2]]}}}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"dev.json:1: name '彭小' at \[0, 2\] is not that text \('彭小军'\)"):
        read_span_json(path)


def test_overlapping_spans_keep_the_longest_for_bio_tags():
    spans = (("book", 15, 34), ("company", 16, 19), ("company", 23, 26), ("name", 40, 41))
    assert flat(spans) == ((("book", 15, 34), ("name", 40, 41)), (("company", 16, 19), ("company", 23, 26)))
    with pytest.raises(ValueError, match="overlapping spans at 16-19"):
        spans_to_tags(50, spans)


def test_entity_scores_equal_hand_computation():
    gold = [[("PER", 0, 1), ("LOC", 3, 3)], [("ORG", 0, 0)]]
    predicted = [[("PER", 0, 1), ("LOC", 3, 4)], [("ORG", 0, 0), ("PER", 2, 2)]]
    s = entity_scores(gold, predicted)
    # 2 of 4 predictions right, 2 of 3 gold found: P 1/2, R 2/3, F1 = 2 (1/2)(2/3) / (7/6) = 4/7
    assert s["micro"] == {"precision": 0.5, "recall": 2 / 3, "f1": pytest.approx(4 / 7, abs=1e-15), "support": 3}
    assert s["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["per_type"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}


def test_entity_scores_of_tags_equal_seqevals_report():
    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]  # ill-formed sequences included
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    predicted = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in gold]
    ours = entity_scores([tags_to_spans(g) for g in gold], [tags_to_spans(p) for p in predicted])
    theirs = classification_report(gold, predicted, output_dict=True, zero_division=0)
    for k, ours_k in (("precision", "precision"), ("recall", "recall"), ("f1-score", "f1"), ("support", "support")):
        assert ours["micro"][ours_k] == pytest.approx(theirs["micro avg"][k], abs=1e-12)
        for kind in ("PER", "LOC", "ORG"):
            assert ours["per_type"][kind][ours_k] == pytest.approx(theirs[kind][k], abs=1e-12)


DATA = data_dir()


@pytest.mark.skipif(DATA is None or not (DATA / "ner").is_dir(), reason="set NLPX_DATA to the shared data folder")
def test_the_real_files_read_with_their_published_sizes():
    from collections import Counter

    counts = {}
    for name in ("eng.train", "eng.testa", "eng.testb"):
        sentences = read_conll(DATA / "ner" / "conll2003" / name)
        counts[name] = (len(sentences), dict(Counter(k for s in sentences for k, _, _ in s.spans)))
    # CoNLL-2003's published sentence and entity counts (Tjong Kim Sang and De Meulder 2003, table 2)
    assert counts == {"eng.train": (14041, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}),
                      "eng.testa": (3250, {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}),
                      "eng.testb": (3453, {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702})}
    sizes = {}
    for name in ("train", "dev", "test"):
        rows = read_span_json(DATA / "ner" / "cluener" / f"{name}.json")
        nested = 0
        for r in rows:
            if r.spans is not None:
                kept, dropped = flat(r.spans)
                nested += len(dropped)
                assert tags_to_spans(spans_to_tags(len(r.tokens), kept)) == kept  # exact round trip
        sizes[name] = (len(rows), sum(r.spans is None for r in rows), nested)
    # test: unlabelled; one train row nests two companies in a book title
    assert sizes == {"train": (10748, 0, 2), "dev": (1343, 0, 0), "test": (1345, 1345, 0)}
