"""Zero-shot prompting (nlpx.eval.prompts, nlpx.eval.zeroshot) on a hand-built model whose NSP and
MLM heads give outputs computed here by hand: the inputs, the scores and the predictions."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from nlpx.data.tokenizer import wordpiece_tokenizer
from nlpx.errors import UserError
from nlpx.eval import prompts as P
from nlpx.eval.clue_tasks import ClueTask
from nlpx.eval.glue_reader import Example
from nlpx.eval.zeroshot import score

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"这次买的东西很好差是一条体育财经新闻。，？他她指其中我们可能不", "中国"]
IDS = {t: i for i, t in enumerate(VOCAB)}
BOOST = IDS["好"]  # the NSP stub's "is next" logit counts this token in sentence B


@pytest.fixture(scope="module")
def tok():
    return wordpiece_tokenizer(IDS, lowercase=True)


def ids(text: str) -> list[int]:
    return [IDS[c] for c in text]


def task(kind: str, labels, prompts: dict, **input_keys) -> ClueTask:
    return ClueTask("fewclue", "t", ("t",), labels, {"kind": kind, **input_keys}, {}, prompts=prompts)


SENTIMENT = task("single", ("Negative", "Positive"), {"words": ["差", "好"], "nsp": "东西很{word}。",
                                                       "mlm": "{text_a}东西很{mask}。"}, text_a="sentence")
NEWS = task("single", ("103", "104"), {"words": ["体育", "财经"], "nsp": "这是一条{word}新闻。",
                                        "mlm": "{text_a}这是一条{mask}新闻。"}, text_a="sentence")
NLI = task("pair", ("entailment", "neutral", "contradiction"),
           {"words": ["是的", "可能", "不是"], "nsp": "{word}，{text_b}", "mlm": "{text_a}？{mask}，{text_b}"},
           text_a="sentence1", text_b="sentence2")


class Stub(torch.nn.Module):
    """NSP: logits [count of BOOST in segment B, 0]. MLM: logits[i, v] = bias[v] + 2 if v is the
    token before position i, so a candidate's score depends on the input."""

    def __init__(self, vocab: int):
        super().__init__()
        self.bias = torch.arange(vocab, dtype=torch.float) / 10

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        b, n = input_ids.shape
        count = ((input_ids == BOOST) & (token_type_ids == 1)).sum(1).float() if token_type_ids is not None else 0
        nsp = torch.stack([count, torch.zeros(b)], 1) if token_type_ids is not None else None
        logits = self.bias.expand(b, n, -1).clone()
        logits[:, 1:] += 2.0 * torch.nn.functional.one_hot(input_ids[:, :-1], len(self.bias)).float()
        return SimpleNamespace(seq_relationship_logits=nsp, logits=logits)


def mlm_by_hand(sequence: list[int], at: int, token: int) -> float:
    """log p(token at position `at`) under the stub."""
    logits = [v / 10 + (2.0 if v == sequence[at - 1] else 0.0) for v in range(len(VOCAB))]
    return logits[token] - math.log(sum(math.exp(x) for x in logits))


def test_nsp_pairs_and_mlm_inputs_are_the_templates_filled(tok):
    e = Example("g", "我们", "他可能", 0, 0)
    assert P.nsp_pairs(NLI, P.prompts_of(NLI, ""), e) == [("我们", "是的，他可能"), ("我们", "可能，他可能"),
                                                           ("我们", "不是，他可能")]
    (m,) = P.mlm_inputs(NLI, P.prompts_of(NLI, ""), e, tok, 64)  # three 2-token words: one input scores them
    assert (m.candidates, m.targets) == ([0, 1, 2], [ids("是的"), ids("可能"), ids("不是")])
    assert m.ids == [IDS["[CLS]"], *ids("我们？"), IDS["[MASK]"], IDS["[MASK]"], *ids("，他可能"), IDS["[SEP]"]]
    assert m.masks == [4, 5]
    # words of other lengths get inputs of their own ("中国" is one entry, but CJK characters are
    # split one per token by BERT's normaliser, so it is 2 tokens of [UNK]: a 1-token word is "好")
    mixed = task("single", ("a", "b"), {"words": ["好", "体育"], "nsp": "{word}", "mlm": "{text_a}{mask}"}, text_a="s")
    inputs = P.mlm_inputs(mixed, P.prompts_of(mixed, ""), Example("g", "我们", None, 0, 0), tok, 16)
    assert [(x.candidates, x.masks) for x in inputs] == [([0], [3]), ([1], [3, 4])]


def test_truncation_cuts_the_text_never_the_prompt(tok):
    e = Example("g", "我们买的东西", None, 0, 0)
    (m,) = P.mlm_inputs(SENTIMENT, P.prompts_of(SENTIMENT, ""), e, tok, 10)
    # 10 = [CLS] + text + 东西很 + [MASK] + 。 + [SEP]: 3 tokens of text are left, from its start
    assert m.ids == [IDS["[CLS]"], *ids("我们买"), *ids("东西很"), IDS["[MASK]"], IDS["。"], IDS["[SEP]"]]
    with pytest.raises(UserError, match="eval.max_length=5: the prompt alone takes 7 tokens"):
        P.mlm_inputs(SENTIMENT, P.prompts_of(SENTIMENT, ""), e, tok, 5)


def test_nsp_scores_and_predictions_equal_hand_computation(tok):
    examples = [Example("a", "我们买的东西", None, 1, 0), Example("b", "好好好", None, 0, 1)]
    out = score(SENTIMENT, examples, Stub(len(VOCAB)), tok, "nsp", max_length=32, batch_size=3)
    # B = 东西很差。 holds no 好: P(is next) = softmax([0, 0])[0] = 1/2; B = 东西很好。 holds one: e/(e+1).
    # Sentence A's 好 are segment 0: not counted.
    assert out.scores == [[pytest.approx(0.5), pytest.approx(math.e / (math.e + 1))]] * 2
    assert out.predictions == [1, 1]


def test_mlm_scores_and_predictions_equal_hand_computation(tok):
    e = Example("a", "这次", None, 0, 0)
    out = score(NEWS, [e], Stub(len(VOCAB)), tok, "mlm", max_length=32, batch_size=2)
    seq = [IDS["[CLS]"], *ids("这次这是一条"), IDS["[MASK]"], IDS["[MASK]"], *ids("新闻。"), IDS["[SEP]"]]
    # each word's score: the mean of its two tokens' log-probabilities at the two [MASK]s
    expected = [(mlm_by_hand(seq, 7, IDS[w[0]]) + mlm_by_hand(seq, 8, IDS[w[1]])) / 2 for w in ("体育", "财经")]
    assert out.scores == [[pytest.approx(x, abs=1e-5) for x in expected]]
    assert out.predictions == [max(range(2), key=lambda k: expected[k])]


def test_cluewsc_is_multiple_choice_per_text_and_pronoun(tok):
    wsc = task("wsc", ("true", "false"), {"nsp": "其中{span2}指的是{span1}。", "mlm": None}, text="text",
               target="target")
    text = "我们买的东西他很好"
    rows = [Example(f"r{i}", text, None, label, i, {"text": text, "span1": span, "span1_index": text.index(span),
                                                    "span2": "他", "span2_index": 6})
            for i, (span, label) in enumerate([("我们", 1), ("东西", 0)])]
    assert P.nsp_pairs(wsc, P.prompts_of(wsc, ""), rows[0]) == [(text, "其中他指的是我们。")]
    (m,) = P.mlm_inputs(wsc, P.prompts_of(wsc, ""), rows[1], tok, 32)
    assert m.ids == [IDS["[CLS]"], *ids("我们买的东西"), IDS["[MASK]"], IDS["[MASK]"], *ids("很好"), IDS["[SEP]"]]
    out = score(wsc, rows, Stub(len(VOCAB)), tok, "mlm", max_length=32, batch_size=4)
    seq = m.ids
    by_hand = [(mlm_by_hand(seq, 7, IDS[s[0]]) + mlm_by_hand(seq, 8, IDS[s[1]])) / 2 for s in ("我们", "东西")]
    assert [s[0] for s in out.scores] == [pytest.approx(x, abs=1e-5) for x in by_hand]
    best = max(range(2), key=lambda i: by_hand[i])
    assert out.predictions == [0 if i == best else 1 for i in range(2)]  # "true" is class 0
    # a question with one row: that row is "true"
    assert P.wsc_predictions(rows[:1], [-9.0], ("true", "false")) == [0]


def test_chid_scores_each_candidate_in_the_blank(tok):
    chid = task("choice", None, {"nsp": None, "mlm": None}, text="content", candidates="candidates", blank="#idiom#")
    e = Example("c", ("x", "y"), None, 1, 0, {"text": "我们#idiom#新闻", "candidates": ("体育", "财经"),
                                              "blank": "#idiom#"})
    assert P.nsp_pairs(chid, P.prompts_of(chid, ""), e) == [("我们体育", "新闻"), ("我们财经", "新闻")]
    out = score(chid, [e], Stub(len(VOCAB)), tok, "mlm", max_length=32, batch_size=4)
    seq = [IDS["[CLS]"], *ids("我们"), IDS["[MASK]"], IDS["[MASK]"], *ids("新闻"), IDS["[SEP]"]]
    expected = [(mlm_by_hand(seq, 3, IDS[w[0]]) + mlm_by_hand(seq, 4, IDS[w[1]])) / 2 for w in ("体育", "财经")]
    assert out.scores == [[pytest.approx(x, abs=1e-5) for x in expected]]


def test_a_task_without_prompts_is_a_user_error():
    bare = task("single", ("a", "b"), None, text_a="s")
    with pytest.raises(UserError, match="task t has no zero-shot prompts"):
        P.prompts_of(bare, "eval.mode=zeroshot_nsp")


@pytest.mark.parametrize("family", ["bert", "big_bird"])
def test_the_nsp_only_forward_gives_the_full_models_nsp_logits(family):
    from transformers import AutoConfig, AutoModelForPreTraining

    from nlpx.eval.zeroshot import NSPOnly

    config = AutoConfig.for_model(family, vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    model = AutoModelForPreTraining.from_config(config).eval()
    inputs = {"input_ids": torch.randint(5, 50, (3, 12)), "attention_mask": torch.ones(3, 12, dtype=torch.long),
              "token_type_ids": torch.tensor([[0] * 6 + [1] * 6] * 3)}
    inputs["attention_mask"][0, 9:] = 0
    with torch.no_grad():
        assert torch.equal(NSPOnly(model)(**inputs).seq_relationship_logits, model(**inputs).seq_relationship_logits)
