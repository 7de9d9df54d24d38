"""Masked examples keyed by (epoch, index): static masks repeat on a revisit, dynamic ones do not."""

import numpy as np
from transformers import BertTokenizerFast

from nlpx.data.corpus import TokenizedCorpus
from nlpx.data.dataset import TRAIN_STREAM, MaskedExamples
from nlpx.data.instances import PackedInstances
from nlpx.data.masking import MaskingConfig
from nlpx.data.tokenizer import train_tokenizer


def examples(static: bool, seed: int = 0) -> MaskedExamples:
    tok = train_tokenizer(iter(["alpha beta gamma delta epsilon zeta eta theta ."] * 5),
                          kind="wordpiece", vocab_size=100, lowercase=True)
    assert isinstance(tok, BertTokenizerFast)
    rng = np.random.default_rng(0)
    docs = [[list(rng.integers(5, len(tok), size=20)) for _ in range(3)] for _ in range(10)]
    instances = PackedInstances(TokenizedCorpus.from_documents(docs), 32, tok.cls_token_id, tok.sep_token_id)
    return MaskedExamples(instances, tok, MaskingConfig(ratio=0.3), seed=seed, stream=TRAIN_STREAM,
                          static=static)


def labels(ds, epoch, idx):
    return ds[(epoch, idx)]["labels"].tolist()


def test_static_masks_repeat_on_revisit():
    ds = examples(static=True)
    assert all(labels(ds, 0, i) == labels(ds, 3, i) for i in range(len(ds)))


def test_dynamic_masks_change_on_revisit_and_reproduce():
    ds = examples(static=False)
    assert sum(labels(ds, 0, i) != labels(ds, 1, i) for i in range(len(ds))) >= len(ds) - 1
    again = examples(static=False)
    assert all(labels(ds, 2, i) == labels(again, 2, i) for i in range(len(ds)))


def test_the_seed_changes_the_masks():
    a, b = examples(static=True, seed=0), examples(static=True, seed=1)
    assert any(labels(a, 0, i) != labels(b, 0, i) for i in range(len(a)))
