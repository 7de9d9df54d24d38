"""`nlpx train` on Chinese text: BERT's tokenizer over a bare vocab.txt, Chinese whole-word masking
with jieba's words (`data.word_segmenter=jieba`, part of the corpus cache key), and the export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.recipes.train import train

SENTENCES = ["话说天下大势，分久必合，合久必分。", "周末七国分争，并入于秦。", "及秦灭之后，楚、汉分争，又并入于汉。",
             "贾宝玉初试云雨情，刘姥姥一进荣国府。", "宝玉笑道：“我送妹妹一个妙字。”", "黛玉笑了，众人都笑了。",
             "孙悟空在花果山做了美猴王。", "唐僧师徒四人去西天取经。", "宋江在梁山聚义，众好汉都来了。"]


def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Three short 'books' (blank lines between documents) and a vocabulary of their characters."""
    books = tmp_path / "books"
    books.mkdir()
    for b in range(3):
        docs = ["".join(SENTENCES[(b + d + i) % len(SENTENCES)] for i in range(6)) for d in range(8)]
        (books / f"book{b}.txt").write_text("\n\n".join(docs), encoding="utf-8")
    chars = sorted({c for s in SENTENCES for c in s})
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                     encoding="utf-8")
    return books, vocab


def overrides(tmp_path, cache_dir, books, vocab, *extra):
    return ["model.size=tiny", "data=text", f"data.paths=[{books}]", f"data.tokenizer={vocab}", "data.seq_len=32",
            "data.batch_size=4", f"data.cache_dir={cache_dir}", f"runs_dir={tmp_path / 'runs'}", "logger=none",
            "budget.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=2",
            "trainer.checkpoint_every_n_steps=2", "objective=mlm_nsp", *extra]


def run(o):
    return train(compose(o), o)


def test_chinese_whole_word_masking_trains_and_exports(tmp_path, cache_dir):
    from transformers import AutoTokenizer

    books, vocab = corpus(tmp_path)
    wwm = overrides(tmp_path, cache_dir, books, vocab, "objective.masking.strategy=whole_word",
                    "data.word_segmenter=jieba")
    summary = run(wwm)
    assert summary["steps"] == 2 and "val/mlm_loss" in summary["final"] and "val/nsp_loss" in summary["final"]
    tok = AutoTokenizer.from_pretrained(str(Path(summary["run_dir"]) / "hf"))
    assert tok.convert_ids_to_tokens(tok("刘姥姥", add_special_tokens=False)["input_ids"]) == ["刘", "姥", "姥"]

    # the cache entry records the segmenter, and its word starts are jieba's words, not characters
    entry = Path(summary["data"]["cache"])
    spec = json.loads((entry / "meta.json").read_text())["spec"]
    assert spec["word_segmenter"]["name"] == "jieba" and spec["tokenizer"]["lowercase"] is True
    starts = np.fromfile(entry / "train" / "word_starts.bin", dtype=np.uint8).astype(bool)
    assert 0.3 < starts.mean() < 0.95  # multi-character words continue; punctuation starts its own
    plain = run(overrides(tmp_path / "b", cache_dir, books, vocab, "objective.masking.strategy=whole_word"))
    other = Path(plain["data"]["cache"])
    assert other != entry and "word_segmenter" not in json.loads((other / "meta.json").read_text())["spec"]
    assert np.fromfile(other / "train" / "word_starts.bin", dtype=np.uint8).all()  # BERT: every character
    assert np.array_equal(np.fromfile(other / "train" / "tokens.bin", dtype=np.int32),
                          np.fromfile(entry / "train" / "tokens.bin", dtype=np.int32))


@pytest.mark.parametrize("extra,message", [
    (["data.word_segmenter=jieba"], r"data.word_segmenter=jieba: not read with objective.masking.strategy=token"),
    (["data.word_segmenter=thulac", "objective.masking.strategy=whole_word"],
     r"data.word_segmenter=thulac: unknown \(valid: jieba, or null"),
])
def test_a_segmenter_nothing_reads_or_does_not_know_is_an_error(extra, message, tmp_path, cache_dir):
    books, vocab = corpus(tmp_path)
    with pytest.raises(UserError, match=message):
        run(overrides(tmp_path, cache_dir, books, vocab, *extra))
    assert not (tmp_path / "runs").exists()
