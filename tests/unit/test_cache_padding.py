"""A tokenizer whose tokenizer.json pads and truncates (sentence-transformers exports do, to 128)
must not put padding into the corpus nor cut its sentences."""

import numpy as np
from omegaconf import OmegaConf

from nlpx.data.cache import prepare
from nlpx.data.corpora import TextCorpus
from nlpx.data.tokenizer import train_tokenizer


def test_padding_and_truncation_of_the_tokenizer_do_not_reach_the_corpus(tmp_path):
    long = " ".join(f"w{i % 50}" for i in range(300)) + "."
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("\n\n".join(f"short doc {i} here. {long}" for i in range(6)))
    tok = train_tokenizer([f"w{i} short doc here ." for i in range(50)] * 4, kind="wordpiece", vocab_size=200,
                          lowercase=True)
    tok.backend_tokenizer.enable_padding(length=16, pad_id=tok.pad_token_id, pad_token="[PAD]")
    tok.backend_tokenizer.enable_truncation(max_length=16)
    corpus = TextCorpus(OmegaConf.create({"paths": [str(tmp_path / "src")], "doc_split": "blank_line",
                                         "sentences": "punct", "text_field": "text"}))
    p = prepare(corpus, cache_dir=tmp_path / "cache", val_fraction=0.34, tokenizer_spec={"t": 1},
                make_tokenizer=lambda s: tok)
    tokens = np.concatenate([p.train.tokens, p.val.tokens])
    assert tok.pad_token_id not in tokens
    lengths = np.diff(np.concatenate([p.train.sent_offsets, p.val.sent_offsets[1:] + p.train.sent_offsets[-1]]))
    assert lengths.max() == len(tok(long, add_special_tokens=False, padding=False, truncation=False)["input_ids"]) > 300
