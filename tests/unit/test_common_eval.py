"""The common evaluation set: one fixed masked set per corpus + tokenizer, the same for every arm
of a comparison, stored in the corpus cache; and the runs that report on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlpx.config import compose
from nlpx.data.common_eval import common_eval_set
from nlpx.data.masking import select_count
from nlpx.data.prepare import prepare_corpus
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import SMALL


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cache = tmp_path_factory.mktemp("common_cache")
    return prepare_corpus(compose([*SMALL, f"data.cache_dir={cache}"]))


def test_fifteen_percent_masked_the_bert_way_and_a_fixed_replaced_set(prepared):
    tok = prepared.tokenizer
    s = common_eval_set(prepared, 32, None)  # every example of the held-out stream
    n = len(s["lengths"])
    special = np.isin(s["original_ids"], sorted(set(tok.all_special_ids)))
    real = np.arange(32)[None, :] < s["lengths"][:, None]
    selected = s["labels"] != -100
    assert n > 10 and s["input_ids"].shape == (n, 32) and not (selected & ~real).any() and not (selected & special).any()
    # exactly BERT's count per example, the originals as labels
    per_example = [select_count(int((real[i] & ~special[i]).sum()), 0.15) for i in range(n)]
    assert selected.sum(1).tolist() == per_example
    assert (s["labels"][selected] == s["original_ids"][selected]).all()
    # outside the selection the input is the original; inside 80/10/10 (about)
    assert (s["input_ids"][~selected] == s["original_ids"][~selected]).all()
    fates = s["input_ids"][selected]
    masked = (fates == tok.mask_token_id).mean()
    kept = (fates == s["original_ids"][selected]).mean()
    assert 0.7 < masked < 0.9 and 0.03 < kept < 0.2
    # the replaced set changes only selected positions, to tokens of the vocabulary, never specials
    changed = s["replaced_ids"] != s["original_ids"]
    assert not (changed & ~selected).any() and changed.sum() > 0.8 * selected.sum()
    assert not np.isin(s["replaced_ids"][selected], sorted(set(tok.all_special_ids))).any()


def test_stored_once_with_the_corpus_and_read_back_unchanged(prepared):
    first = common_eval_set(prepared, 32, 12)
    path = Path(prepared.path) / "common_eval_L32_n12.npz"
    stamp = path.stat().st_mtime_ns
    again = common_eval_set(prepared, 32, 12)
    assert len(first["lengths"]) == 12
    assert path.stat().st_mtime_ns == stamp and all(np.array_equal(first[k], again[k]) for k in first)


def test_a_longer_length_reuses_the_same_documents(prepared):
    def stream(seq_len, n):
        s = common_eval_set(prepared, seq_len, n)
        return np.concatenate([s["original_ids"][i, 1:s["lengths"][i] - 1] for i in range(n)])

    short, long = stream(32, 12), stream(64, 7)  # 12 x 30 and 7 x 62 tokens of the one stream
    assert np.array_equal(short, long[:len(short)])


def common_run(small, *extra):
    overrides = small(*extra, "data.common_eval.seq_len=32", "data.common_eval.max_examples=24")
    summary = train(compose(overrides), overrides)
    rows = [json.loads(x) for x in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    return summary, next(r for r in rows if r["step"] == 0 and ("val/mlm_loss" in r or "val/gen/mlm_loss" in r))


def test_arms_with_other_ratios_and_formats_score_the_same_set(small):
    """At step 0 (the same initial weights) the common loss is equal to the last bit across arms
    whose own validation losses differ: the set does not depend on the arm."""
    runs = [common_run(small, "objective=mlm", *arm) for arm in
            ([], ["objective.masking.ratio=0.4"], ["objective.format=doc_sentences"])]
    firsts = [first for _, first in runs]
    assert len({f["val/common_mlm_loss"] for f in firsts}) == 1 and len({f["val/common_mlm_acc"] for f in firsts}) == 1
    assert len({f["val/mlm_loss"] for f in firsts}) == 3
    assert all({"val/common_mlm_loss", "val/common_mlm_acc"} <= set(s["final"]) for s, _ in runs)


def test_rtd_reports_the_generator_and_the_discriminator_on_the_common_set(small):
    (es, first_es), (gdes, first_gdes) = (common_run(small, "model=deberta", "objective=rtd", f"objective.sharing={m}")
                                          for m in ("es", "gdes"))
    keys = ["val/common_gen_mlm_loss", "val/common_gen_mlm_acc", "val/common_disc_auc", "val/common_disc_acc"]
    # the same replaced set for every sharing mode: at step 0 (E_delta = 0) the numbers agree
    assert [first_es[k] for k in keys] == [first_gdes[k] for k in keys]
    assert 0 <= es["final"]["val/common_disc_auc"] <= 1 and 0 <= es["final"]["val/common_disc_acc"] <= 1


def test_clm_has_no_common_set_and_refuses_its_keys(small):
    summary = train(compose(small("model=gpt2", "objective=clm")), [])
    assert not any("common" in k for k in summary["final"])
    overrides = small("model=gpt2", "objective=clm", "data.common_eval.seq_len=64")
    with pytest.raises(UserError, match="data.common_eval.seq_len=64: not read by nlpx train: objective=clm"):
        train(compose(overrides), overrides)
