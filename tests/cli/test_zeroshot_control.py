"""The positive control of zero-shot prompting: a tiny `mlm_nsp` model pretrained on the synthetic
corpus, whose documents each have one topic with content words of its own, classifies held-out
documents by topic far above chance with both zero-shot modes, and the same prompts on the same
architecture untrained stay near chance. Without this, a near-chance zero-shot number on real data
(experiments/results/chinese) could be a broken pipeline rather than a model that learned too little.

The task: 100 documents of two sentences from a generator seed the corpus does not use, 4 topics;
a topic's label word is its most frequent noun. NSP: "[CLS] document [SEP] the <word> . [SEP]";
MLM: "document the [MASK] ." with the word's tokens at the [MASK]s.

Cost: the pretraining (one layer, 1,500 steps of 32 x 64 tokens, about two minutes of one core) is
what learning the topics takes. When a model starts to tell them apart varies with the seed (a
phase change, as in ELECTRA's slow start): measured, both modes at 1.00 after 900 steps with seed 0
but at chance after 900 with seed 1, and at 1.00 after 1,500 steps with seeds 1 and 2 (validation
NSP accuracy 0.87 and 0.82); 600 steps (MLM 0.51, NSP 0.28 with seed 0) are not enough.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from scipy.stats import binomtest

from nlpx.config import compose
from nlpx.data.synthetic import SyntheticLanguage
from nlpx.eval.clue_tasks import ClueTask
from nlpx.eval.glue_reader import Example
from nlpx.eval.zeroshot import load_head, score
from nlpx.recipes.train import train

TOPICS = 4
HELD_OUT_SEED = 999  # the corpus is generator_seed 1234: no held-out document is in it


def topic_task() -> tuple[ClueTask, list[Example]]:
    language = SyntheticLanguage(TOPICS)
    examples = []
    for i in range(100):
        rng = random.Random(f"{HELD_OUT_SEED}:{i}")  # as SyntheticLanguage.document: topic, then sentences
        topic = rng.randrange(TOPICS)
        text = " ".join(language.sentence(rng, topic) for _ in range(2))
        examples.append(Example(f"topics-test-{i}", text, None, topic, i))
    words = [language.topics[t].nouns[0] for t in range(TOPICS)]
    spec = ClueTask("fewclue", "topics", ("topics",), tuple(f"topic{t}" for t in range(TOPICS)),
                    {"kind": "single", "text_a": "text"}, {"test": ["test.json"]},
                    prompts={"words": words, "nsp": "the {word} .", "mlm": "{text_a} the {mask} ."})
    return spec, examples


def pretrain(runs: Path, cache_dir: Path) -> Path:
    overrides = ["model=bert", "model.size=tiny", "model.num_hidden_layers=1", "objective=mlm_nsp", "data=synthetic",
                 f"data.num_topics={TOPICS}", "data.num_docs=800", "data.vocab_size=600", "data.seq_len=64",
                 "data.batch_size=32", "budget.max_steps=1500", "trainer.val_check_interval=1500",
                 "trainer.limit_val_batches=4", "logger=none", f"data.cache_dir={cache_dir}", f"runs_dir={runs}"]
    summary = train(compose(overrides), overrides)
    assert summary["final"]["val/nsp_acc"] > 0.7  # the NSP head learned the topics (measured 0.82-0.87)
    return Path(summary["run_dir"]) / "hf"


def accuracy(spec, examples, model, tokenizer, mode: str) -> float:
    scored = score(spec, examples, model, tokenizer, mode, max_length=64, batch_size=64)
    return sum(p == e.label for p, e in zip(scored.predictions, examples)) / len(examples)


@pytest.mark.slow  # one test, not one per mode: the pretraining is the cost, and xdist could split a pair
def test_a_pretrained_model_classifies_topics_zero_shot_and_an_untrained_one_does_not(tmp_path, cache_dir):
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForPreTraining

    pretrained = pretrain(tmp_path, cache_dir)
    spec, examples = topic_task()
    majority = max(sum(e.label == t for e in examples) for t in range(TOPICS)) / len(examples)
    for mode, auto in (("nsp", AutoModelForPreTraining), ("mlm", AutoModelForMaskedLM)):  # as load_head loads
        model, tokenizer = load_head(pretrained, mode)
        trained = accuracy(spec, examples, model, tokenizer, mode)
        # measured 1.00 in both modes; chance is 0.25 (majority class 0.29): 0.6 of 100 has p < 1e-12
        assert trained >= 0.6, (mode, trained)
        hits = round(trained * len(examples))
        assert binomtest(hits, len(examples), 1 / TOPICS, alternative="greater").pvalue < 1e-9

        torch.manual_seed(0)
        untrained = auto.from_config(AutoConfig.from_pretrained(pretrained)).eval()
        baseline = accuracy(spec, examples, untrained, tokenizer, mode)
        assert baseline <= majority + 0.1, (mode, baseline)  # the prompts alone give nothing away
